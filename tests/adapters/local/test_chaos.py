"""`kill -9` under load: `portabind run` is killed outright several times while it drains a
queue or topic filled beforehand (SQS on a moto server, the machine's RabbitMQ, Kafka on
Tansu), restarted each time, then left to drain.

The handler appends each id it handled to a file (one `write` per line, so the line is there
even when the process dies right after). From that record: every message is handled at least
once, and a kill repeats at most what the listener had handled but not yet acknowledged —
one message for SQS with a redrive policy (deleted right after its handler) and RabbitMQ
(acked right after its handler), the handled messages of a receive (at most 10) for SQS
without one (deleted together), `kafka.COMMIT_EVERY` records for Kafka (offsets committed
every that many). The duplicates per kill are printed (pytest -s).

Kills land at seeded moments, each after a seeded number of further messages were handled
and once the messages the previous kill left in flight came back and were handled: so no
message is in flight at two kills, and on SQS a redrive policy of two receives must then
leave the dead-letter queue empty (a runner that deleted per batch would also repeat up to
ten handled messages per kill).
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from portabind.adapters.local.emulators import free_port
from portabind.bindings import kafka
from portabind.bindings.aws import _aws
from portabind.bindings.aws import sqs as aws_sqs
from tests.helpers import PORTABIND, moto_client, sqs_queue_counts

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from portabind.adapters.local.emulators.aws import MotoEmulator

SEED = 20261202
KILLS = 4
#: Messages put on the queue before the first run: more than the kills take (at most
#: KILLS * (MOST_BETWEEN_KILLS + 2 * IN_FLIGHT + 1)), so the last kill still lands under load.
MESSAGES = 300
FEWEST_BETWEEN_KILLS, MOST_BETWEEN_KILLS = 15, 40
#: The most messages a listener holds unacknowledged: an SQS receive, RabbitMQ's prefetch
#: (set to this), Kafka's commit interval.
IN_FLIGHT = 10
#: The most any wait for progress may take (a bounded poll, not a timing assertion).
WAIT_SECONDS = 90.0
#: SQS: receives before a message moves to the dead-letter queue. Two: one crash redelivery
#: of a message is allowed, a second one moves it.
MAX_RECEIVE_COUNT = 2
#: SQS: how long a received message stays hidden, so how long a kill's messages take to come
#: back. One listener at a time receives only once it is done with its batch, so a batch
#: that takes longer than this brings no message back twice.
VISIBILITY_TIMEOUT = 2
APP = """\
import os
import time

from portabind import App, BindingEvent

app = App()
record = os.open(os.environ["CHAOS_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)


@app.binding("orders")
def on_order(event: BindingEvent) -> None:
    time.sleep(0.03)  # some work: kills land inside batches, the queue outlasts the kills
    os.write(record, b"%d\\n" % event.json()["id"])
"""


@dataclass
class Broker:
    """What differs per broker: the component's metadata and what a kill may repeat."""

    component_type: str
    metadata: dict[str, str]
    #: Handled messages a kill may hand to the handler again.
    duplicates_per_kill: int
    #: How long after a kill what it left in flight is delivered again.
    redelivery_seconds: float = 0.0


class Runner:
    """`portabind run` as a process of its own, restarted after each kill; each run's output
    goes to a file of its own, whose end a failed wait shows."""

    def __init__(self, project: Path, record: Path) -> None:
        self.project = project
        self.environ = {
            **os.environ,
            "CHAOS_LOG": str(record),
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }
        self.runs = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def output(self) -> Path:
        return self.project / f"run-{self.runs}.log"

    def start(self) -> None:
        self.runs += 1
        command = [
            str(PORTABIND),
            "run",
            str(self.project),
            "--dapr-http-port",
            str(free_port()),
            "--dapr-grpc-port",
            str(free_port()),
        ]
        with self.output.open("wb") as output:
            self.process = subprocess.Popen(
                command, env=self.environ, stdout=output, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        """Stop the run as Ctrl-C would; it must exit on its own."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            assert self.process.wait(60) == 0, self.tail()
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()

    def tail(self) -> str:
        return self.output.read_text(errors="replace")[-3000:]

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not condition():
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"portabind run exited ({self.process.returncode}):\n{self.tail()}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"not {what} within {WAIT_SECONDS:g} s; the run's output:\n{self.tail()}"
                )
            time.sleep(0.01)


def handled(record: Path) -> list[int]:
    """The ids the handler recorded, in order."""
    if not record.exists():
        return []
    return [int(line) for line in record.read_bytes().split()]


def write_project(directory: Path, broker: Broker) -> None:
    (directory / "app.py").write_text(APP)
    (directory / "components").mkdir()
    items = "".join(
        f"    - name: {key}\n      value: {json.dumps(value)}\n"
        for key, value in broker.metadata.items()
    )
    (directory / "components" / "orders.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: orders\n"
        f"spec:\n  type: {broker.component_type}\n  version: v1\n  metadata:\n{items}"
    )


def kill_repeatedly(tmp_path: Path, broker: Broker, drained: Callable[[], bool]) -> None:
    """Run, kill and restart `portabind run` KILLS times under load, let it drain the queue
    (until every id was handled and `drained()` holds), stop it; check nothing was lost and
    each kill repeated at most `broker.duplicates_per_kill` messages."""
    write_project(tmp_path, broker)
    record = tmp_path / "handled.log"
    runner = Runner(tmp_path, record)
    rng = random.Random(SEED)
    boundaries: list[int] = []  # records in the file when each kill landed
    killed_at = 0.0  # time.monotonic() of the last kill
    runner.start()
    try:
        for kill in range(KILLS):
            progress = len(set(handled(record))) + rng.randint(
                FEWEST_BETWEEN_KILLS, MOST_BETWEEN_KILLS
            )
            settled = 0
            if kill:
                # What the last kill left in flight (at most IN_FLIGHT messages, handled or
                # not) is delivered again once the redelivery delay has passed, before newer
                # messages. The listener then holds at most one batch received earlier: once
                # that batch, those messages and one more are handled, they are all handled
                # again and acknowledged, and the next kill cannot catch one a second time.
                redelivered_at = killed_at + broker.redelivery_seconds
                runner.wait_for(
                    lambda at=redelivered_at: time.monotonic() >= at, "past the redelivery delay"
                )
                settled = len(handled(record)) + 2 * IN_FLIGHT + 1

            def ready(progress: int = progress, settled: int = settled) -> bool:
                lines = handled(record)
                return len(lines) >= settled and len(set(lines)) >= progress

            runner.wait_for(ready, "far enough for the next kill")
            runner.kill()
            killed_at = time.monotonic()
            boundaries.append(len(handled(record)))
            runner.start()
        runner.wait_for(
            lambda: set(handled(record)) == set(range(MESSAGES)) and drained(),
            "drained after the kills",
        )
    finally:
        runner.stop()

    ids = handled(record)
    assert set(ids) == set(range(MESSAGES)), "messages were lost"
    per_kill = [
        len(set(ids[start:end]) & set(ids[end:]))
        for start, end in zip([0, *boundaries], boundaries, strict=False)
    ]
    print(f"{broker.component_type}: duplicates per kill {per_kill}, {len(ids)} deliveries")
    assert all(count <= broker.duplicates_per_kill for count in per_kill), per_kill
    # Every repeat is one a kill caused: none came from a slow batch or a lost acknowledgement.
    assert len(ids) - MESSAGES == sum(per_kill)


def sqs_broker(sqs: Any, moto_server: MotoEmulator, queue: str, *, redrive: bool) -> Broker:
    """Queue `queue` filled with MESSAGES messages, made as `portabind run --emulate` makes
    one (`bindings.aws.sqs.provision`); with `redrive`, with a redrive policy to
    `<queue>-dlq` after MAX_RECEIVE_COUNT receives. The listener deletes each message at once
    on a queue with a redrive policy, the handled messages of a receive together on one
    without."""
    settings = {"visibilityTimeout": str(VISIBILITY_TIMEOUT)}
    if redrive:
        settings["maxReceiveCount"] = str(MAX_RECEIVE_COUNT)
    fields = {"queueName": queue, **_aws.emulate({"moto": moto_server.endpoint})}
    aws_sqs.provision(
        aws_sqs.SqsMetadata.model_validate(fields), aws_sqs.SqsAnnotations.model_validate(settings)
    )
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    for first in range(0, MESSAGES, 10):
        entries = [
            {"Id": str(order), "MessageBody": json.dumps({"id": order})}
            for order in range(first, first + 10)
        ]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")
    return Broker(
        "bindings.aws.sqs",
        {"region": "us-east-1", "queueName": queue, "endpoint": moto_server.endpoint},
        duplicates_per_kill=1 if redrive else IN_FLIGHT,
        redelivery_seconds=VISIBILITY_TIMEOUT,
    )


@pytest.mark.parametrize("redrive", [True, False], ids=["redrive-policy", "no-redrive-policy"])
def test_sqs_listener_killed_under_load_loses_nothing(
    tmp_path: Path, moto_server: MotoEmulator, unique_name: Callable[..., str], redrive: bool
) -> None:
    """With a redrive policy a kill repeats at most one message and dead-letters nothing;
    without one, at most the handled messages of the receive in flight (`sqs_broker`)."""
    sqs = moto_client(moto_server, "sqs")
    queue = unique_name("chaos")
    broker = sqs_broker(sqs, moto_server, queue, redrive=redrive)
    kill_repeatedly(tmp_path, broker, lambda: sqs_queue_counts(sqs, queue) == (0, 0))
    if redrive:
        assert sqs_queue_counts(sqs, f"{queue}-dlq") == (0, 0), "a crash dead-lettered a message"


def rabbitmq_ready_messages(url: str, queue: str) -> int:
    """Messages waiting in `queue`; a connection of its own, so no heartbeat is missed
    while the test waits."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        count: int = connection.channel().queue_declare(queue, passive=True).method.message_count
        return count
    finally:
        connection.close()


@pytest.fixture
def rabbitmq_queue(rabbitmq_url: str, unique_name: Callable[..., str]) -> Iterator[str]:
    """A queue of MESSAGES messages on the machine's RabbitMQ, deleted afterwards."""
    import pika

    queue = unique_name("chaos")
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    channel.queue_declare(queue)
    for order in range(MESSAGES):
        channel.basic_publish("", queue, json.dumps({"id": order}).encode())
    connection.close()
    try:
        yield queue
    finally:
        connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
        connection.channel().queue_delete(queue)
        connection.close()


def test_rabbitmq_listener_killed_under_load_repeats_at_most_one_message_per_kill(
    tmp_path: Path, rabbitmq_url: str, rabbitmq_queue: str
) -> None:
    broker = Broker(
        "bindings.rabbitmq",
        {"host": rabbitmq_url, "queueName": rabbitmq_queue, "prefetchCount": str(IN_FLIGHT)},
        duplicates_per_kill=1,
    )
    drained = functools.partial(rabbitmq_ready_messages, rabbitmq_url, rabbitmq_queue)
    kill_repeatedly(tmp_path, broker, lambda: drained() == 0)
    assert drained() == 0  # nothing left unacknowledged by the last run either


def test_kafka_listener_killed_under_load_repeats_at_most_a_commit_interval_per_kill(
    tmp_path: Path, kafka_brokers: str, unique_name: Callable[..., str]
) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    from tests.bindings.kafka_helpers import create_topic

    topic = unique_name("chaos")
    create_topic(kafka_brokers, topic)
    producer = Producer({"bootstrap.servers": kafka_brokers})
    for order in range(MESSAGES):
        producer.produce(topic, json.dumps({"id": order}).encode())
    assert producer.flush(30) == 0
    producer.close()
    group = f"{topic}-group"
    broker = Broker(
        "bindings.kafka",
        {
            "brokers": kafka_brokers,
            "authType": "none",
            "topics": topic,
            "consumerGroup": group,
            "initialOffset": "oldest",
            # Tansu holds a group join long with the default session timeout.
            "sessionTimeout": "6s",
            "heartbeatInterval": "1s",
        },
        duplicates_per_kill=kafka.COMMIT_EVERY,
    )
    kill_repeatedly(tmp_path, broker, lambda: True)
    group_reader = Consumer({"bootstrap.servers": kafka_brokers, "group.id": group})
    try:
        (committed,) = group_reader.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        group_reader.close()
    assert committed.offset == MESSAGES  # the stopped run committed every handled record
