"""`portabind build --target azure` for Service Bus queues and Event Hubs: the azure-functions
library indexes the generated app into a serviceBusTrigger and a batched eventHubTrigger
(with its retry policy), host.json carries the extensions' settings, the connections are app
settings holding Key Vault references or namespaces; the functions, called with the
library's own trigger objects, hand the handler the events the local listeners give, and an
Event Hubs batch stops at its first failure."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from portabind.errors import UserError
from tests.adapters.azure.function_apps import build, recorded_events, run_driver, write_project
from tests.adapters.azure.test_triggers import SECRETS, component

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

HANDLERS = """
@app.binding("jobs")
def jobs(event: BindingEvent) -> None:
    if event.data == b"poison":
        raise ValueError("cannot take this job")
    record(event)


@app.binding("telemetry")
def telemetry(event: BindingEvent) -> None:
    if event.data == b"bad" and not os.path.exists(os.environ["RECORD_PATH"] + ".fixed"):
        raise ValueError("cannot take this reading")
    record(event)
"""


def project_dir(tmp_path: Path, app: str, **overrides: Any) -> Path:
    documents = {
        "jobs": component(
            "jobs",
            "bindings.azure.servicebusqueues",
            connectionString="$SERVICEBUS_CONNECTION",
            queueName="jobs",
            maxConcurrentHandlers="4",
            maxActiveMessages="10",
            handlerTimeoutInSec="120",
        ),
        "telemetry": component(
            "telemetry",
            "bindings.azure.eventhubs",
            {"initialOffset": "earliest", "maxEventBatchSize": "50"},
            connectionString="$EVENTHUBS_CONNECTION",
            eventHub="telemetry",
            consumerGroup="portabind",
            storageAccountName="checkpoints",
            storageContainerName="offsets",
            getAllMessageProperties="true",
            backOffDuration="2s",
        ),
    }
    documents.update(overrides)
    return write_project(tmp_path, app, [SECRETS, *documents.values()])


# Runs in a fresh interpreter with OUT first on sys.path, as the Functions worker does. The
# trigger objects come from the library's own converters, given the data and trigger
# metadata the host sends.
DRIVER = r"""
import os, pathlib, types
from azure.functions import meta
from azure.functions.eventhub import EventHubTriggerConverter
from azure.functions.servicebus import ServiceBusMessageInConverter



def service_bus(body, **fields):
    metadata = {"UserProperties": meta.Datum("{}", "json")}
    for key, value in fields.items():
        kind = "json" if isinstance(value, dict) else "int" if isinstance(value, int) else "string"
        metadata[key] = meta.Datum(json.dumps(value) if kind == "json" else value, kind)
    return ServiceBusMessageInConverter.decode(meta.Datum(body, "bytes"), trigger_metadata=metadata)


message = dict(
    MessageId="m-1", CorrelationId="c-1", Subject="nightly", ContentType="application/json",
    DeliveryCount=1, SequenceNumber=7, LockToken="5f2a0e8c-3b1d-4c57-9b0e-6d8f1a2b3c4d",
    EnqueuedTimeUtc="2026-01-02T03:04:05.1234567Z", ExpiresAtUtc="2026-01-16T03:04:05.123Z",
    LockedUntil="2026-01-02T03:05:05.123Z", ApplicationProperties={"color": "red", "size": 3},
)
result["jobs"]["outcomes"] = [
    outcome("jobs", service_bus(b'{"job": 1}', **message)),
    outcome("jobs", service_bus(b"poison", MessageId="m-2", DeliveryCount=2)),
]

bodies = [b"r1", b"r2", b"bad", b"r4"]
systems = [
    {"SequenceNumber": n, "Offset": n * 100, "PartitionKey": "dev-1",
     "EnqueuedTimeUtc": "2026-01-02T03:04:05.1234567Z", "message-id": f"e-{n}",
     "iothub-connection-device-id": "dev-1"}
    for n in range(len(bodies))
]
trigger = {
    "SystemPropertiesArray": meta.Datum(json.dumps(systems), "json"),
    "PropertiesArray": meta.Datum(json.dumps([{"unit": "C"}] * len(bodies)), "json"),
    "PartitionContext": meta.Datum(json.dumps({"PartitionId": "3"}), "json"),
}
events = lambda: EventHubTriggerConverter.decode(
    meta.Datum(types.SimpleNamespace(bytes=bodies), "collection_bytes"), trigger_metadata=trigger
)
attempts = [outcome("telemetry", events()), outcome("telemetry", events())]
pathlib.Path(os.environ["RECORD_PATH"] + ".fixed").touch()  # the handler is fixed: retry
attempts.append(outcome("telemetry", events()))
result["telemetry"]["outcomes"] = attempts
"""


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, recording_app: Callable[[str], str]
) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    tmp_path = tmp_path_factory.mktemp("built")
    out = tmp_path / "out"
    build(project_dir(tmp_path, recording_app("import os\n" + HANDLERS)), out)
    record = tmp_path / "events.jsonl"
    return out, run_driver(out, DRIVER, record), recorded_events(record)


def settings(out: Path) -> dict[str, str]:
    return {s["name"]: s["value"] for s in json.loads((out / "appsettings.json").read_text())}


def test_service_bus_becomes_a_queue_trigger_on_a_key_vault_connection(built: Any) -> None:
    out, result, events = built
    (binding,) = result["jobs"]["doc"]["bindings"]
    assert binding == {
        "direction": "IN",
        "dataType": "BINARY",
        "type": "serviceBusTrigger",
        "name": "message",
        "connection": "PORTABIND_SECRET_JOBS_CONNECTIONSTRING",
        "queueName": "jobs",
    }
    assert settings(out)["PORTABIND_SECRET_JOBS_CONNECTIONSTRING"].startswith(
        "@Microsoft.KeyVault("
    )
    host = json.loads((out / "host.json").read_text())
    # Dapr's maxConcurrentHandlers, maxActiveMessages (in flight and buffered) and
    # handlerTimeoutInSec (how long a lock is renewed) as the host's settings.
    assert host["extensions"]["serviceBus"] == {
        "maxConcurrentCalls": 4,
        "prefetchCount": 6,
        "maxAutoLockRenewalDuration": "00:02:00",
    }
    (job,) = [e for e in events if e["name"] == "jobs"]
    assert bytes.fromhex(job["data"]) == b'{"job": 1}'
    assert job["metadata"] == {
        "color": "red",
        "size": "3",
        "id": "m-1",
        "correlationID": "c-1",
        "label": "nightly",
        "EnqueuedTimeUtc": "2026-01-02T03:04:05.123000Z",
        "ExpiresAtUtc": "2026-01-16T03:04:05.123000Z",
        "LockedUntil": "2026-01-02T03:05:05.123000Z",
        "LockToken": "5f2a0e8c-3b1d-4c57-9b0e-6d8f1a2b3c4d",
        "SequenceNumber": "7",
        "ContentType": "application/json",
        "DeliveryCount": "1",
    }
    # A failure reaches the host, which abandons the message for redelivery.
    assert result["jobs"]["outcomes"] == ["returned", "ValueError"]


def test_event_hubs_becomes_a_batched_trigger_retried_from_its_first_failure(built: Any) -> None:
    out, result, events = built
    (binding,) = result["telemetry"]["doc"]["bindings"]
    assert binding == {
        "direction": "IN",
        "dataType": "BINARY",
        "type": "eventHubTrigger",
        "name": "events",
        "connection": "PORTABIND_SECRET_TELEMETRY_CONNECTIONSTRING",
        "eventHubName": "telemetry",
        "cardinality": "MANY",
        "consumerGroup": "portabind",
    }
    # Dapr's back-off (backOffDuration), retried until the handler succeeds.
    assert result["telemetry"]["retry"] == {
        "setting_name": "retry_policy",
        "strategy": "fixed_delay",
        "max_retry_count": "-1",
        "delay_interval": "00:00:02",
    }
    host = json.loads((out / "host.json").read_text())
    assert host["extensions"]["eventHubs"] == {
        "maxEventBatchSize": 50,
        "batchCheckpointFrequency": 1,
        "initialOffsetOptions": {"type": "fromStart"},
    }
    # The batch stops at its first failure, which the host retries; a retry hands over only
    # what was not handled yet, in order.
    assert result["telemetry"]["outcomes"] == ["ValueError", "ValueError", "returned"]
    readings = [e for e in events if e["name"] == "telemetry"]
    assert [bytes.fromhex(e["data"]) for e in readings] == [b"r1", b"r2", b"bad", b"r4"]
    assert readings[1]["metadata"] == {
        "unit": "C",
        "x-opt-sequence-number": "1",
        "x-opt-enqueued-time": "2026-01-02T03:04:05Z",
        "x-opt-offset": "100",
        "x-opt-partition-key": "dev-1",
        "message-id": "e-1",
        "iothub-connection-device-id": "dev-1",
        "x-opt-partition-id": "3",
    }


def test_no_secret_value_reaches_the_output(built: Any) -> None:
    out, _, _ = built
    local = json.loads((out / "local.settings.json").read_text())["Values"]
    assert local["PORTABIND_SECRET_JOBS_CONNECTIONSTRING"] == ""
    assert "SharedAccessKey" not in (out / "appsettings.json").read_text()


def test_a_namespace_connects_with_the_app_identity(
    tmp_path: Path, recording_app: Callable[[str], str]
) -> None:
    jobs = component(
        "jobs", "bindings.azure.servicebusqueues", namespaceName="shop", queueName="jobs"
    )
    telemetry = component(
        "telemetry",
        "bindings.azure.eventhubs",
        eventHubNamespace="shop-events.servicebus.windows.net",
        eventHub="telemetry",
        consumerID="portabind",
    )
    out = tmp_path / "out"
    root = project_dir(tmp_path, recording_app(HANDLERS), jobs=jobs, telemetry=telemetry)
    build(root, out)
    found = settings(out)
    assert found["PORTABIND_JOBS_SERVICEBUS__fullyQualifiedNamespace"] == (
        "shop.servicebus.windows.net"
    )
    assert found["PORTABIND_TELEMETRY_EVENTHUBS__fullyQualifiedNamespace"] == (
        "shop-events.servicebus.windows.net"
    )
    app = (out / "function_app.py").read_text()
    assert 'connection="PORTABIND_JOBS_SERVICEBUS"' in app
    assert 'connection="PORTABIND_TELEMETRY_EVENTHUBS"' in app


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {
                "jobs": component(
                    "jobs",
                    "bindings.azure.servicebusqueues",
                    connectionString="Endpoint=sb://shop.servicebus.windows.net/;"
                    "SharedAccessKeyName=root;SharedAccessKey=c2VjcmV0",
                    queueName="jobs",
                )
            },
            r"jobs.*connectionString.*key in the app settings",
        ),
        (
            {
                "telemetry": component(
                    "telemetry",
                    "bindings.azure.eventhubs",
                    connectionString="$EVENTHUBS_CONNECTION",
                    consumerID="portabind",
                )
            },
            r"telemetry.*eventHub.*EntityPath",
        ),
        (
            {
                "jobs2": component(
                    "jobs2",
                    "bindings.azure.servicebusqueues",
                    connectionString="$OTHER",
                    queueName="other",
                    maxConcurrentHandlers="8",
                )
            },
            r"maxConcurrentCalls.*app-wide",
        ),
    ],
)
def test_what_azure_cannot_take_is_a_build_error(
    tmp_path: Path, recording_app: Callable[[str], str], override: dict[str, Any], message: str
) -> None:
    handlers = (
        HANDLERS + '\n\n@app.binding("jobs2")\ndef jobs2(event: BindingEvent) -> None:\n    pass\n'
    )
    app = recording_app(handlers if "jobs2" in override else HANDLERS)
    with pytest.raises(UserError, match=message):
        build(project_dir(tmp_path, app, **override), tmp_path / "out")
