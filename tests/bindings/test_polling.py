"""The queue-polling loop (`bindings._polling`) through the listeners built on it, against
moto's SQS and Azurite's Queue service: a failed message comes back after its back-off and is
not lost, a handled one is deleted, and a stop does not wait for the long poll."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from portabind.bindings._polling import BACKOFF_MAX_SECONDS, backoff_seconds
from portabind.bindings.aws import _aws, sqs
from portabind.bindings.azure import storagequeues
from portabind.events import Metadata

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Listener  # tests/bindings/conftest.py

    from portabind.adapters.local.emulators.aws import MotoEmulator
    from portabind.adapters.local.emulators.azure import AzuriteEmulator
    from portabind.events import BindingEvent

#: A generous bound for a stop: the long poll (5 s) and the idle pause (10 s) are far longer.
STOP_SECONDS = 2.0


def test_backoff_doubles_with_the_receive_count_up_to_a_minute() -> None:
    delays = [backoff_seconds(count) for count in range(1, 10)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff_seconds(0) == 1  # a service that does not count yet
    assert backoff_seconds(10_000) == BACKOFF_MAX_SECONDS


@pytest.fixture
def sqs_queue(moto_server: MotoEmulator, unique_name: Callable[..., str]) -> sqs.SqsMetadata:
    """A queue with SQS's default 30 s visibility timeout: a failed message that comes back
    sooner was released by the listener."""
    values = {"queueName": unique_name(), "region": "eu-west-1"}
    metadata = sqs.SqsMetadata.model_validate(
        {**values, **_aws.emulate({"moto": moto_server.endpoint})}
    )
    sqs.provision(metadata)
    return metadata


def sqs_client(metadata: sqs.SqsMetadata) -> tuple[Any, str]:
    client = _aws.client("sqs", metadata)
    return client, client.get_queue_url(QueueName=metadata.queue_name)["QueueUrl"]


def sqs_counts(metadata: sqs.SqsMetadata) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    client, url = sqs_client(metadata)
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    counts = client.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(counts[names[0]]), int(counts[names[1]])


@pytest.fixture
def storage_queue(
    azurite: AzuriteEmulator, unique_name: Callable[..., str]
) -> storagequeues.StorageQueuesMetadata:
    """A queue with the default 30 s visibility timeout and 10 s polling interval."""
    assert storagequeues.binding.emulate is not None
    endpoint = azurite.queue_endpoint.removesuffix(f"/{azurite.account_name}")
    emulated = storagequeues.binding.emulate({"azurite.queue": endpoint})
    metadata = storagequeues.StorageQueuesMetadata.model_validate(
        {"queueName": unique_name("q"), **emulated}
    )
    storagequeues.create_queue(metadata)
    return metadata


def failing_first(times: int) -> tuple[Callable[[BindingEvent], None], list[float]]:
    """A handler that fails its first `times` deliveries, and the moments of every one."""
    moments: list[float] = []

    def handler(event: BindingEvent) -> None:
        moments.append(time.monotonic())
        if len(moments) <= times:
            raise RuntimeError(f"delivery {len(moments)} fails")

    return handler, moments


def gaps(moments: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(moments)]


def test_sqs_failed_message_comes_back_after_the_backoff_then_is_deleted(
    sqs_queue: sqs.SqsMetadata, listen: Callable[..., Listener]
) -> None:
    client, url = sqs_client(sqs_queue)
    client.send_message(QueueUrl=url, MessageBody="flaky")
    handler, moments = failing_first(2)
    listener = listen(sqs.SqsInput("orders", sqs_queue), handler)
    events = listener.wait_for(3)
    assert {event.data for event in events} == {b"flaky"}
    assert [event.metadata["ApproximateReceiveCount"] for event in events] == ["1", "2", "3"]
    first, second = gaps(moments)
    # 1 s, then 2 s (receive counts 1 and 2); the queue alone would wait 30 s.
    assert 0.9 < first < 5
    assert 1.9 < second < 6
    deadline = time.monotonic() + 5
    while sqs_counts(sqs_queue) != (0, 0):
        assert time.monotonic() < deadline, "the handled message was not deleted"
        time.sleep(0.05)


def test_storagequeues_failed_message_comes_back_after_the_backoff_then_is_deleted(
    storage_queue: storagequeues.StorageQueuesMetadata, listen: Callable[..., Listener]
) -> None:
    quick = storage_queue.model_copy(update={"polling_interval": timedelta(milliseconds=100)})
    storagequeues.StorageQueuesOutput("orders", quick).invoke("create", b"flaky", Metadata())
    handler, moments = failing_first(1)
    listener = listen(storagequeues.StorageQueuesInput("orders", quick), handler)
    events = listener.wait_for(2)
    assert [event.metadata["dequeueCount"] for event in events] == ["1", "2"]
    assert events[0].metadata["messageID"] == events[1].metadata["messageID"]
    (gap,) = gaps(moments)
    assert 0.9 < gap < 5  # the 1 s back-off, not the 30 s visibility timeout
    queue = storagequeues.queue_client(quick)
    try:
        deadline = time.monotonic() + 5
        while queue.get_queue_properties().approximate_message_count != 0:
            assert time.monotonic() < deadline, "the handled message was not deleted"
            time.sleep(0.05)
    finally:
        queue.close()


def stop_seconds(listener: Listener, settle: float = 0.5) -> float:
    """Let the listener settle into waiting for messages, stop it, and time its return."""
    time.sleep(settle)
    started = time.monotonic()
    listener.stop.set()
    assert listener.finished.wait(30), "listen() did not return on stop"
    return time.monotonic() - started


# One test per service: a fixture requested through `request.getfixturevalue` would hide the
# server from the `server` mark (tests/conftest.py).
def test_an_sqs_stop_returns_without_waiting_for_the_poll(
    sqs_queue: sqs.SqsMetadata, listen: Callable[..., Listener]
) -> None:
    assert_stops_at_once(listen(sqs.SqsInput("orders", sqs_queue)))


def test_a_storagequeues_stop_returns_without_waiting_for_the_poll(
    storage_queue: storagequeues.StorageQueuesMetadata, listen: Callable[..., Listener]
) -> None:
    assert_stops_at_once(listen(storagequeues.StorageQueuesInput("orders", storage_queue)))


def assert_stops_at_once(listener: Listener) -> None:
    assert stop_seconds(listener) < STOP_SECONDS
    assert listener.error is None


def test_a_message_a_stopped_poll_took_is_released_for_the_next_listener(
    sqs_queue: sqs.SqsMetadata, listen: Callable[..., Listener]
) -> None:
    listener = listen(sqs.SqsInput("orders", sqs_queue))
    stop_seconds(listener)
    # The stopped listener's long poll is still open: it takes this message (the pause lets
    # it win against the receive below), which would then stay hidden for the queue's 30 s
    # visibility timeout were it not released.
    client, url = sqs_client(sqs_queue)
    client.send_message(QueueUrl=url, MessageBody="sent while stopping")
    time.sleep(0.5)
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        received = client.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
    assert [message["Body"] for message in received] == ["sent while stopping"]
