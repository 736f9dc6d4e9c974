"""bindings.aws.sqs against a real moto server: output, the listener, and the one
message → BindingEvent mapping shared with the Lambda runtime."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from portabind.annotations import binding_annotations
from portabind.bindings import _polling
from portabind.bindings.aws import _aws, sqs
from portabind.components import Component
from portabind.errors import BindingError, ComponentError
from portabind.events import BindingEvent, Metadata

if TYPE_CHECKING:
    from collections.abc import Callable

    from portabind.adapters.local.emulators.aws import MotoEmulator

LAMBDA_RECORD: dict[str, Any] = {
    "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
    "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
    "body": "eyJub3QiOiAiZGVjb2RlZCJ9",
    "attributes": {
        "ApproximateReceiveCount": "2",
        "SentTimestamp": "1545082649183",
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp": "1545082649185",
    },
    "messageAttributes": {
        "tenant": {"stringValue": "acme", "dataType": "String", "stringListValues": []},
        "priority": {"stringValue": "7", "dataType": "Number"},
        "blob": {"binaryValue": "AAE=", "dataType": "Binary"},
        "messageId": {"stringValue": "spoofed", "dataType": "String"},
    },
    "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
    "eventSource": "aws:sqs",
    "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:my-queue",
    "awsRegion": "us-east-2",
}
EXPECTED_METADATA = {
    "tenant": "acme",
    "priority": "7",
    "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
    "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
    "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:my-queue",
    "ApproximateReceiveCount": "2",
    "SentTimestamp": "2018-12-17T21:37:29.183000Z",
}


def test_lambda_record_maps_to_the_normalized_event() -> None:
    event = sqs.event_from_message("orders", LAMBDA_RECORD)
    assert event.name == "orders"
    assert event.data == b"eyJub3QiOiAiZGVjb2RlZCJ9"  # a body that looks like base64 stays
    assert dict(event.metadata) == EXPECTED_METADATA


def test_receive_message_entry_maps_to_the_same_event() -> None:
    entry = {
        "MessageId": LAMBDA_RECORD["messageId"],
        "ReceiptHandle": LAMBDA_RECORD["receiptHandle"],
        "Body": LAMBDA_RECORD["body"],
        "Attributes": LAMBDA_RECORD["attributes"],
        "MessageAttributes": {
            "tenant": {"StringValue": "acme", "DataType": "String"},
            "priority": {"StringValue": "7", "DataType": "Number"},
            "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
            "messageId": {"StringValue": "spoofed", "DataType": "String"},
        },
    }
    event = sqs.event_from_message("orders", entry, queue_arn=LAMBDA_RECORD["eventSourceARN"])
    assert event == sqs.event_from_message("orders", LAMBDA_RECORD)


def test_fifo_attributes_are_kept() -> None:
    record = {
        **LAMBDA_RECORD,
        "attributes": {"MessageGroupId": "g1", "MessageDeduplicationId": "d1"},
        "messageAttributes": {},
    }
    metadata = sqs.event_from_message("orders", record).metadata
    assert metadata["MessageGroupId"] == "g1"
    assert metadata["MessageDeduplicationId"] == "d1"
    assert "SentTimestamp" not in metadata


@pytest.fixture
def queue(moto_server: MotoEmulator, unique_name: Callable[..., str]) -> sqs.SqsMetadata:
    values = {"queueName": unique_name(), "region": "eu-west-1"}
    metadata = sqs.SqsMetadata.model_validate(
        {**values, **_aws.emulate({"moto": moto_server.endpoint})}
    )
    sqs.provision(metadata)
    return metadata


def raw_client(metadata: sqs.SqsMetadata) -> tuple[Any, str]:
    client = _aws.client("sqs", metadata)
    return client, client.get_queue_url(QueueName=metadata.queue_name)["QueueUrl"]


def test_create_sends_the_payload_as_the_body(queue: sqs.SqsMetadata) -> None:
    output = sqs.SqsOutput("orders", queue)
    response = output.invoke("create", b'{"id": 1}', Metadata())
    assert response.data is None and response.metadata == {}
    client, url = raw_client(queue)
    received = client.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in received] == ['{"id": 1}']


def test_create_rejects_a_binary_body_and_a_missing_queue(
    queue: sqs.SqsMetadata, moto_server: MotoEmulator
) -> None:
    with pytest.raises(BindingError, match="UTF-8"):
        sqs.SqsOutput("orders", queue).invoke("create", b"\xff", Metadata())
    missing = queue.model_copy(update={"queue_name": "pb-no-such-queue"})
    with pytest.raises(BindingError, match=r"NonExistentQueue|does not exist"):
        sqs.SqsOutput("orders", missing).invoke("create", b"x", Metadata())


def listen(
    metadata: sqs.SqsMetadata, handle: Callable[[BindingEvent], None], until: Callable[[], bool]
) -> None:
    """Run the listener in a thread until `until()` holds (or 20 s pass)."""
    stop = threading.Event()
    listener = sqs.SqsInput("orders", metadata)
    thread = threading.Thread(target=listener.listen, args=(handle, stop), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not until() and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=sqs.WAIT_SECONDS + 5)
    assert not thread.is_alive()


def test_listener_delivers_with_metadata_and_deletes_after_success(
    queue: sqs.SqsMetadata,
) -> None:
    client, url = raw_client(queue)
    client.send_message(
        QueueUrl=url,
        MessageBody="first",
        MessageAttributes={"tenant": {"DataType": "String", "StringValue": "acme"}},
    )
    client.send_message(QueueUrl=url, MessageBody="second")
    events: list[BindingEvent] = []
    listen(queue, events.append, lambda: len(events) == 2)
    assert [e.data for e in events] == [b"first", b"second"]
    first = events[0].metadata
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    assert first["eventSourceARN"] == arn["Attributes"]["QueueArn"]
    assert first["tenant"] == "acme"
    assert first["ApproximateReceiveCount"] == "1"
    assert first["SentTimestamp"].endswith("Z")
    assert set(first) == set(EXPECTED_METADATA) - {"priority"}
    assert "tenant" not in events[1].metadata  # attributes never leak to the next record
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def messages_in(client: Any, url: str) -> int:
    """The queue's messages, visible or in flight."""
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    counts = attributes["Attributes"]
    return int(counts["ApproximateNumberOfMessages"]) + int(
        counts["ApproximateNumberOfMessagesNotVisible"]
    )


def send_three(client: Any, url: str, first: int) -> None:
    entries = [{"Id": str(i), "MessageBody": str(i)} for i in range(first, first + 3)]
    client.send_message_batch(QueueUrl=url, Entries=entries)


def queue_sizes_seen(
    queue: sqs.SqsMetadata, handled: int, after: Callable[[list[int]], None] | None = None
) -> list[int]:
    """Send three messages and listen until `handled` messages were handled and the queue is
    empty: how many messages were in the queue (visible or in flight) as each handler
    started. `after(seen)` ends each handler."""
    client, url = raw_client(queue)
    send_three(client, url, 0)
    seen: list[int] = []

    def handle(event: BindingEvent) -> None:
        seen.append(messages_in(client, url))
        if after is not None:
            after(seen)

    listen(queue, handle, lambda: len(seen) == handled and messages_in(client, url) == 0)
    return seen


def test_without_a_redrive_policy_the_handled_messages_of_a_receive_are_deleted_together(
    queue: sqs.SqsMetadata,
) -> None:
    """No message can be dead-lettered, so a crash mid-batch costs only repeats: one
    delete per receive, not one per message."""
    assert queue_sizes_seen(queue, 3) == [3, 3, 3]
    client, url = raw_client(queue)
    assert messages_in(client, url) == 0


def test_without_a_redrive_policy_slow_handlers_do_not_hold_handled_messages(
    queue: sqs.SqsMetadata, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handled message waits for the rest of its receive at most BATCH_ACK_SECONDS: a
    batch of slow handlers deletes as it goes, before the visibility timeout could bring
    the first ones back to be handled again."""
    monkeypatch.setattr(_polling, "BATCH_ACK_SECONDS", 0.2)
    seen = queue_sizes_seen(queue, 3, lambda seen: time.sleep(0.3))
    assert seen == [3, 3, 1]  # the first two deleted once the second was handled


def test_with_a_redrive_policy_each_message_is_deleted_before_the_next_is_handled(
    queue: sqs.SqsMetadata, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a crash mid-batch can repeat then: only the message being handled is still
    there, so a crash cannot push handled messages toward the dead-letter queue. A policy
    set while the listener runs applies from the next receive on (the policy is read again
    before every receive here, every minute by default)."""
    monkeypatch.setattr(sqs, "REDRIVE_CHECK_SECONDS", 0.0)
    client, url = raw_client(queue)

    def set_a_policy_after_the_first_receive(seen: list[int]) -> None:
        if len(seen) == 3:  # the last of the first receive: before the next one
            redrive = sqs.SqsAnnotations.model_validate({"maxReceiveCount": "2"})
            sqs.provision(queue, redrive)  # as `portabind run --emulate` sets a policy
            assert (
                "RedrivePolicy"
                in client.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])[
                    "Attributes"
                ]
            )
            send_three(client, url, 3)

    seen = queue_sizes_seen(queue, 6, set_a_policy_after_the_first_receive)
    assert seen == [3, 3, 3, 3, 2, 1]


def test_failed_message_is_left_for_redelivery(queue: sqs.SqsMetadata) -> None:
    client, url = raw_client(queue)
    client.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "1"})
    client.send_message(QueueUrl=url, MessageBody="flaky")
    seen: list[BindingEvent] = []

    def handle(event: BindingEvent) -> None:
        seen.append(event)
        if len(seen) == 1:
            raise RuntimeError("handler failed")

    listen(queue, handle, lambda: len(seen) == 2)
    assert [e.data for e in seen] == [b"flaky", b"flaky"]
    assert [e.metadata["ApproximateReceiveCount"] for e in seen] == ["1", "2"]
    assert seen[0].metadata["messageId"] == seen[1].metadata["messageId"]
    time.sleep(1.2)
    remaining = client.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])
    assert remaining == []  # the successful redelivery deleted it


def test_stopping_mid_batch_releases_the_undelivered_messages(queue: sqs.SqsMetadata) -> None:
    client, url = raw_client(queue)
    for body in ("a", "b", "c"):
        client.send_message(QueueUrl=url, MessageBody=body)
    stop = threading.Event()
    delivered: list[bytes] = []

    def handle(event: BindingEvent) -> None:
        delivered.append(event.data)
        stop.set()

    sqs.SqsInput("orders", queue).listen(handle, stop)
    assert len(delivered) == 1
    # the two others are visible again at once, not after the 30 s visibility timeout
    left = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert sorted(m["Body"] for m in left["Messages"]) == sorted(
        {"a", "b", "c"} - {delivered[0].decode()}
    )


def test_messages_handled_before_a_handler_ends_the_thread_stay_deleted(
    queue: sqs.SqsMetadata,
) -> None:
    client, url = raw_client(queue)
    for body in ("a", "b", "c"):
        client.send_message(QueueUrl=url, MessageBody=body)
    delivered: list[bytes] = []

    def handle(event: BindingEvent) -> None:
        delivered.append(event.data)
        if len(delivered) == 2:
            raise SystemExit("the handler quits")

    with pytest.raises(SystemExit):
        sqs.SqsInput("orders", queue).listen(handle, threading.Event())
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    # the first is deleted; the one that ended the thread and the undelivered one remain
    assert (
        int(attributes["ApproximateNumberOfMessages"])
        + int(attributes["ApproximateNumberOfMessagesNotVisible"])
        == 2
    )


def test_provision_is_idempotent_and_makes_fifo_queues(queue: sqs.SqsMetadata) -> None:
    sqs.provision(queue)
    fifo = queue.model_copy(update={"queue_name": queue.queue_name + ".fifo"})
    sqs.provision(fifo)
    client, url = raw_client(fifo)
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["FifoQueue"])
    assert attributes["Attributes"]["FifoQueue"] == "true"


def test_metadata_requires_queue_name_and_region() -> None:
    assert sqs.SqsMetadata.required_names() == ["region", "queueName"]
    assert {"accessKey", "secretKey", "sessionToken"} <= sqs.SqsMetadata.secret_names()
    parsed = sqs.SqsMetadata.model_validate({"queueName": "q", "awsRegion": "eu-west-1"})
    assert parsed.region == "eu-west-1"


def queue_attributes(metadata: sqs.SqsMetadata, name: str) -> dict[str, str]:
    client = _aws.client("sqs", metadata)
    url = client.get_queue_url(QueueName=name)["QueueUrl"]
    attributes: dict[str, str] = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"
    ]
    return attributes


def test_provision_sets_the_annotated_visibility_timeout_and_redrive(
    queue: sqs.SqsMetadata,
) -> None:
    # `queue` exists already (default settings): the annotations still apply to it.
    annotations = {"visibilityTimeout": "1m30s", "maxReceiveCount": "4"}
    sqs.provision(queue, sqs.SqsAnnotations.model_validate(annotations))
    attributes = queue_attributes(queue, queue.queue_name)
    assert attributes["VisibilityTimeout"] == "90"
    dead_letter = queue_attributes(queue, queue.queue_name + "-dlq")
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dead_letter["QueueArn"],
        "maxReceiveCount": 4,
    }


def test_provision_without_annotations_sets_no_redrive(queue: sqs.SqsMetadata) -> None:
    sqs.provision(queue, sqs.SqsAnnotations())
    assert "RedrivePolicy" not in queue_attributes(queue, queue.queue_name)
    assert queue_attributes(queue, queue.queue_name)["VisibilityTimeout"] == "30"


def test_provision_redrives_a_fifo_queue_to_a_fifo_dead_letter_queue(
    queue: sqs.SqsMetadata,
) -> None:
    fifo = queue.model_copy(update={"queue_name": queue.queue_name + ".fifo"})
    sqs.provision(fifo, sqs.SqsAnnotations.model_validate({"maxRetries": "2"}))
    dead_letter = queue_attributes(queue, queue.queue_name + "-dlq.fifo")
    assert dead_letter["FifoQueue"] == "true"
    policy = json.loads(queue_attributes(queue, fifo.queue_name)["RedrivePolicy"])
    assert policy == {"deadLetterTargetArn": dead_letter["QueueArn"], "maxReceiveCount": 3}


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({}, None),
        ({"maxReceiveCount": "2"}, ("orders-dlq", 2)),
        ({"maxRetries": "0"}, ("orders-dlq", 1)),  # retried N times: N + 1 receives
        ({"maxRetries": "-1", "onFailure": "dlq"}, None),  # retried forever
        ({"maxReceiveCount": "7", "maxRetries": "1"}, ("orders-dlq", 7)),
        ({"onFailure": "dlq"}, ("orders-dlq", sqs.DEFAULT_MAX_RECEIVE_COUNT)),
        ({"onFailure": "arn:aws:sqs:eu-west-1:123456789012:parked"}, ("parked", 5)),
    ],
)
def test_redrive_follows_the_annotations(
    annotations: dict[str, str], expected: tuple[str, int] | None
) -> None:
    assert sqs.redrive("orders", sqs.SqsAnnotations.model_validate(annotations)) == expected


def orders(annotations: dict[str, str]) -> Component:
    return Component(
        "orders", "bindings.aws.sqs", "v1", Path("components/orders.yaml"), {}, annotations
    )


@pytest.mark.parametrize(
    ("annotations", "field", "message"),
    [
        ({"maxReceiveCount": "0"}, "maxReceiveCount", "a whole number from 1 to 1000, got '0'"),
        ({"maxReceiveCount": "3.5"}, "maxReceiveCount", "got '3.5'"),
        ({"maxRetries": "-2"}, "maxRetries", "a whole number from -1 to 999"),
        ({"onFailure": "arn:aws:sns:us-east-1:1:topic"}, "onFailure", "ARN or 'dlq'"),
        ({"visibilityTimeout": "500ms"}, "visibilityTimeout", "whole seconds from 0 to 12h"),
        ({"visibilityTimeout": "13h"}, "visibilityTimeout", "got '13h'"),
        ({"visibilityTimeout": "soon"}, "visibilityTimeout", "got 'soon'"),
    ],
)
def test_bad_annotations_name_the_component_and_the_annotation(
    annotations: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(ComponentError, match=re.escape(message)) as caught:
        binding_annotations(orders(annotations), sqs.binding)
    assert caught.value.component == "orders"
    assert caught.value.field == f"metadata.annotations.portabind.io/{field}"


def test_binding_hands_provision_the_annotations(queue: sqs.SqsMetadata) -> None:
    annotations = binding_annotations(orders({"VisibilityTimeout": "7"}), sqs.binding)
    sqs.binding.provision_resource(queue, annotations)
    assert queue_attributes(queue, queue.queue_name)["VisibilityTimeout"] == "7"
