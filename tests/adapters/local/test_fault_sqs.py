"""Fault tests of `portabind run --emulate` on SQS: handler failures never lose a message.

The runner runs in a thread with its own moto; moto keeps its state per process, so the
session's `moto_server` sees the same queues: the tests send and inspect through it. The
queues come from the runner's provisioning, configured by the component's annotations.
"""

from __future__ import annotations

import json
import random
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from portabind.adapters.local.emulators import free_port, wait_for_port
from portabind.adapters.local.runner import RunOptions, run
from portabind.errors import ComponentError
from portabind.tooling.project import load_project
from tests.helpers import moto_client, sqs_queue_counts

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from portabind.adapters.local.emulators.aws import MotoEmulator
    from portabind.tooling.project import Project

MESSAGES = 1000
SEED = 20261123
#: The most messages the fault test lets wait unhandled (in flight included). moto's SQS scans
#: the whole queue for every message sent or received, so with all 1,000 waiting the
#: emulator, not the listener, is the bottleneck: on two cores ≈30 messages/s, against ≈90
#: with 50 waiting (the listener alone drains a 100-message queue at ≈250/s).
BACKLOG = 50
#: The most the run may take: a bound on the wait, not a speed figure. The listener deletes
#: each message on its own (two requests per message), which on a loaded two-core machine
#: comes to ≈13 messages/s here.
TIME_LIMIT = 180.0
#: Fails the first delivery of the orders the seeded RNG picks (a fifth of them), and every
#: delivery of the order "poison".
FAULTY_APP = f"""\
import random
from collections import Counter

from portabind import App, BindingEvent

app = App()
rng = random.Random({SEED})
failing = {{order for order in range({MESSAGES}) if rng.random() < 0.2}}
attempts: Counter[int | str] = Counter()
successes: Counter[int | str] = Counter()


@app.binding("orders")
def on_order(event: BindingEvent) -> None:
    order = event.json()["id"]
    attempts[order] += 1
    if order == "poison" or (order in failing and attempts[order] == 1):
        raise ValueError(f"delivery {{attempts[order]}} of order {{order}} fails")
    successes[order] += 1
"""


def write_project(directory: Path, queue: str, annotations: dict[str, str]) -> Project:
    """FAULTY_APP and its SQS component `orders` with `portabind.io/` annotations."""
    (directory / "app.py").write_text(FAULTY_APP)
    components = directory / "components"
    components.mkdir()
    lines = "".join(f'    portabind.io/{key}: "{value}"\n' for key, value in annotations.items())
    (components / "orders.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\n"
        f"metadata:\n  name: orders\n  annotations:\n{lines}"
        "spec:\n  type: bindings.aws.sqs\n  version: v1\n  metadata:\n"
        f"    - name: region\n      value: us-east-1\n    - name: queueName\n      value: {queue}\n"
    )
    return load_project(directory)


class Runner:
    """`portabind run --emulate` in a thread, entered once the queues are provisioned;
    leaving stops the run (unless `exit_after` ended it) and checks that it exited with 0."""

    def __init__(self, project: Project, exit_after: int | None = None) -> None:
        self.options = RunOptions(
            emulate=True, sends=[], exit_after=exit_after, dapr_port=free_port(), app_port=None
        )
        self.stop_event = threading.Event()
        self.result: list[int] = []
        self.thread = threading.Thread(
            target=lambda: self.result.append(run(project, self.options, stop=self.stop_event))
        )

    def __enter__(self) -> Runner:
        self.thread.start()
        # The Dapr API starts once the emulator is up and the queues are provisioned.
        wait_for_port(self.options.dapr_port, timeout=60)
        return self

    def wait(self, timeout: float) -> bool:
        """Whether the run ended by itself (`exit_after`) within `timeout` seconds."""
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def __exit__(self, error_type: type[BaseException] | None, *rest: object) -> None:
        self.stop_event.set()
        self.thread.join(60)
        if error_type is None:  # else the test's own failure says more
            assert not self.thread.is_alive()
            assert self.result == [0]


def handler_state(project: Project) -> dict[str, Any]:
    state: dict[str, Any] = project.app.handlers["orders"].function.__globals__
    return state


def test_a_thousand_messages_with_a_fifth_failing_once_are_each_handled_once(
    tmp_path: Path,
    moto_server: MotoEmulator,
    unique_name: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = unique_name("orders")
    # A 2 s visibility timeout brings a failed message back quickly (and is still well above
    # the time a batch takes); maxReceiveCount 3 lets a failed-once message through, and
    # would move one that failed for good.
    annotations = {"visibilityTimeout": "2s", "maxReceiveCount": "3"}
    project = write_project(tmp_path, queue, annotations)
    successes = handler_state(project)["successes"]
    sqs = moto_client(moto_server, "sqs")
    # --exit-after counts deliveries: the seeded fifth of the orders is delivered twice.
    rng = random.Random(SEED)
    deliveries = MESSAGES + sum(rng.random() < 0.2 for _ in range(MESSAGES))
    with Runner(project, exit_after=deliveries) as runner:
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        started = time.monotonic()
        deadline = started + TIME_LIMIT
        for first in range(0, MESSAGES, 10):
            while first - len(successes) >= BACKLOG and time.monotonic() < deadline:
                time.sleep(0.01)
            entries = [
                {"Id": str(order), "MessageBody": json.dumps({"id": order})}
                for order in range(first, first + 10)
            ]
            assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")
        finished = runner.wait(timeout=max(0.0, deadline - time.monotonic()))
        elapsed = time.monotonic() - started
    assert finished, f"{MESSAGES} messages were not all handled within {TIME_LIMIT:g} s"

    state = handler_state(project)
    failing: set[int] = state["failing"]
    assert 150 < len(failing) < 250  # the seeded fifth
    assert state["successes"] == {order: 1 for order in range(MESSAGES)}
    assert state["attempts"] == {order: 2 if order in failing else 1 for order in range(MESSAGES)}
    assert sqs_queue_counts(sqs, queue) == (0, 0)
    assert sqs_queue_counts(sqs, f"{queue}-dlq") == (0, 0)
    out = capsys.readouterr().out
    assert out.count("(left for redelivery)") == len(failing)
    assert f"{deliveries} event(s) handled" in out
    print(  # the throughput, for the record (pytest -s)
        f"{MESSAGES} messages, {len(failing)} failed once: {elapsed:.1f} s, "
        f"{MESSAGES / elapsed:.0f} messages/s"
    )


def test_a_message_that_always_fails_moves_to_the_dead_letter_queue_intact(
    tmp_path: Path, moto_server: MotoEmulator, unique_name: Callable[..., str]
) -> None:
    queue = unique_name("orders")
    dead_letter = unique_name("parked")
    annotations = {
        "visibilityTimeout": "1",
        "maxReceiveCount": "2",
        "onFailure": f"arn:aws:sqs:us-east-1:123456789012:{dead_letter}",
    }
    project = write_project(tmp_path, queue, annotations)
    sqs = moto_client(moto_server, "sqs")
    body = json.dumps({"id": "poison", "note": "ünïcode, kept as sent"})
    with Runner(project):
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        sqs.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageAttributes={"tenant": {"DataType": "String", "StringValue": "acme"}},
        )
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"id": "good"}))
        dlq_url = sqs.get_queue_url(QueueName=dead_letter)["QueueUrl"]
        deadline = time.monotonic() + 30
        parked: list[dict[str, Any]] = []
        while not parked and time.monotonic() < deadline:
            parked = sqs.receive_message(
                QueueUrl=dlq_url, WaitTimeSeconds=1, MessageAttributeNames=["All"]
            ).get("Messages", [])
    assert len(parked) == 1, "the poison message did not reach the dead-letter queue"
    assert parked[0]["Body"] == body
    assert parked[0]["MessageAttributes"]["tenant"]["StringValue"] == "acme"
    state = handler_state(project)
    assert state["attempts"] == {"poison": 2, "good": 1}  # maxReceiveCount deliveries, no more
    assert state["successes"] == {"good": 1}
    assert sqs_queue_counts(sqs, queue) == (0, 0)


def test_a_bad_annotation_stops_the_run_naming_the_component(
    tmp_path: Path, moto_server: MotoEmulator, unique_name: Callable[..., str]
) -> None:
    project = write_project(tmp_path, unique_name("orders"), {"maxReceiveCount": "often"})
    options = RunOptions(
        emulate=True, sends=[], exit_after=None, dapr_port=free_port(), app_port=None
    )
    with pytest.raises(ComponentError) as caught:
        run(project, options)
    assert caught.value.component == "orders"
    assert caught.value.field == "metadata.annotations.portabind.io/maxReceiveCount"
    assert "a whole number from 1 to 1000, got 'often'" in str(caught.value)
