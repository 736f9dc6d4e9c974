"""`portabind run --emulate` with Service Bus and Event Hubs components: the runner starts the
AMQP broker (and Azurite for the checkpoints), creates the queue and the hub the components
name, and messages go in and out through the bindings; a component Azure would refuse is one
message naming file, component and field, and exit 2."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from portabind.adapters.local.emulators import free_port
from portabind.adapters.local.runner import RunOptions, run
from portabind.tooling.project import load_project
from tests.tooling.test_cli import portabind, user_error

if TYPE_CHECKING:
    from pathlib import Path

APP = """\
import json
import os

from portabind import App, BindingEvent

app = App()


def record(event: BindingEvent) -> None:
    with open(os.environ["RECORD_PATH"], "a") as file:
        file.write(json.dumps({"name": event.name, "data": event.text(), **event.metadata}) + "\\n")


@app.binding("orders")
def on_order(event: BindingEvent) -> None:
    record(event)
    app.invoke_binding("readings", "create", data=event.data, metadata={"partitionKey": "p"})


@app.binding("readings")
def on_reading(event: BindingEvent) -> None:
    record(event)
"""


CONNECTION = (
    "Endpoint=sb://real.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=unused"
)
COMPONENTS = {
    "orders": (
        "bindings.azure.servicebusqueues",
        {"connectionString": CONNECTION, "queueName": "orders", "maxDeliveryCount": "3"},
    ),
    "readings": (
        "bindings.azure.eventhubs",
        {
            "connectionString": CONNECTION,
            "eventHub": "readings",
            "consumerID": "$Default",
            "storageAccountName": "real",
            "storageContainerName": "checkpoints",
            "partitionCount": "2",
        },
    ),
}


def components(directory: Path, **changes: str) -> None:
    """The two components, `changes` (`<component>.<field>`, "" to leave one out) applied;
    under --emulate the broker's and Azurite's addresses replace theirs."""
    directory.mkdir()
    for name, (type_, values) in COMPONENTS.items():
        given = {**values, **{k.split(".")[1]: v for k, v in changes.items() if k.startswith(name)}}
        items = "".join(f"    - name: {k}\n      value: {v}\n" for k, v in given.items() if v)
        # Events the handler sends before the consumer owns the partitions: read them too.
        annotations = "  annotations:\n    portabind.io/initialOffset: earliest\n"
        (directory / f"{name}.yaml").write_text(
            f"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
            + (annotations if name == "readings" else "")
            + f"spec:\n  type: {type_}\n  version: v1\n  metadata:\n{items}"
        )


def options(**changes: Any) -> RunOptions:
    values: dict[str, Any] = {
        "emulate": True,
        "sends": [],
        "exit_after": None,
        "dapr_port": free_port(),
        "app_port": None,
    }
    return RunOptions(**{**values, **changes})


def test_messages_go_in_and_out_through_the_emulated_namespace(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    azurite: Any,
) -> None:
    record = tmp_path / "events.jsonl"
    monkeypatch.setenv("RECORD_PATH", str(record))
    (tmp_path / "app.py").write_text(APP)
    components(tmp_path / "components")
    project = load_project(tmp_path)
    sends = [("orders", json.dumps({"id": n}).encode()) for n in (1, 2, 3)]

    assert run(project, options(sends=sends, exit_after=6)) == 0

    events = [json.loads(line) for line in record.read_text().splitlines()]
    orders = [e for e in events if e["name"] == "orders"]
    readings = [e for e in events if e["name"] == "readings"]
    assert sorted(json.loads(e["data"])["id"] for e in orders) == [1, 2, 3]
    assert {e["DeliveryCount"] for e in orders} == {"1"}
    # One partition key: the readings arrive in the order they were sent.
    assert [e["data"] for e in readings] == [e["data"] for e in orders]
    assert {e["x-opt-partition-key"] for e in readings} == {"p"}
    assert [int(e["x-opt-sequence-number"]) for e in readings] == [0, 1, 2]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"orders.queueName": ""}, ("orders.yaml", "'orders'", "'queueName'", "required")),
        (
            {"orders.connectionString": "Endpoint=sb://x/;SharedAccessKey=TOPSECRET"},
            ("orders.yaml", "'orders'", "'connectionString'", "SharedAccessKeyName"),
        ),
        (
            {"readings.eventHub": "no/slashes"},
            ("readings.yaml", "'readings'", "'eventHub'", "event hub name"),
        ),
    ],
)
def test_what_azure_would_refuse_is_one_message_and_exit_2(
    tmp_path: Path,
    changes: dict[str, str],
    expected: tuple[str, ...],
) -> None:
    (tmp_path / "app.py").write_text(APP)
    components(tmp_path / "components", **changes)
    result = portabind("validate", tmp_path, cwd=tmp_path)
    user_error(result, *expected)
    assert "TOPSECRET" not in result.stderr + result.stdout


def test_an_input_without_its_consumer_group_stops_the_run_before_it_starts(
    tmp_path: Path, azurite: Any
) -> None:
    (tmp_path / "app.py").write_text(APP)
    components(tmp_path / "components", **{"readings.consumerID": ""})
    result = portabind("run", tmp_path, "--emulate", "--dapr-port", free_port(), cwd=tmp_path)
    user_error(result, "readings.yaml", "'readings'", "'consumerID'", "consumer group")
