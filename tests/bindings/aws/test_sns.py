"""bindings.aws.sns against a real moto server: Publish with Dapr's `%v` formatting, the
local listener (an SQS queue subscribed to the topic), and the one notification →
BindingEvent mapping shared with the Lambda runtime."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from portabind.bindings.aws import _aws, _relay, sns
from portabind.errors import BindingError, ComponentError
from portabind.events import BindingEvent, Metadata

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Listener  # tests/bindings/conftest.py

    from portabind.adapters.local.emulators.aws import MotoEmulator

#: The account of the test topics' ARNs; not moto's default, so the ARN is honoured as is.
ACCOUNT = "111122223333"
EVENT = json.loads((Path(__file__).parents[2] / "events" / "sns-notification.json").read_text())
SAMPLE = EVENT["Records"][0]


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (None, "<nil>"),
        ("text", "text"),
        (True, "true"),
        (1, "1"),
        (100, "100"),
        (-2.5, "-2.5"),
        (123456, "123456"),
        (1e6, "1e+06"),
        (1234567, "1.234567e+06"),
        (12345678901234567890, "1.2345678901234567e+19"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        ([1, "a", None], "[1 a <nil>]"),
        ({"b": 1, "a": {"c": []}}, "map[a:map[c:[]] b:1]"),
    ],
)
def test_values_print_as_gos_percent_v(value: Any, printed: str) -> None:
    assert sns.go_format(value) == printed


def test_request_fields_match_case_insensitively_and_default_to_nil() -> None:
    assert sns.publish_input(b'{"message": "hi"}') == ("hi", "<nil>")
    assert sns.publish_input(b'{"Message": "x", "SUBJECT": 5}') == ("x", "5")
    assert sns.publish_input(b'{"message": "a", "Message": "b"}') == ("b", "<nil>")
    assert sns.publish_input(b"null") == ("<nil>", "<nil>")
    with pytest.raises(ValueError, match="JSON object"):
        sns.publish_input(b'"just text"')
    with pytest.raises(ValueError, match="Expecting value"):
        sns.publish_input(b"not json")


def test_lambda_record_maps_to_the_normalized_event() -> None:
    event = sns.event_from_record("alerts", SAMPLE)
    assert event.data == b"example message"
    assert dict(event.metadata) == {
        "Test": "TestString",
        "TestBinary": "TestBinary",
        "messageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "topicArn": "arn:aws:sns:us-east-1:123456789012:ExampleTopic",
        "timestamp": "1970-01-01T00:00:00.000Z",
        "subject": "example subject",
    }
    assert sns.event_from_record("alerts", SAMPLE["Sns"]) == event  # the Sns object alone
    without = {**SAMPLE["Sns"], "Subject": None}
    assert "subject" not in sns.event_from_record("alerts", without).metadata


@pytest.fixture
def topic(moto_server: MotoEmulator, unique_name: Callable[..., str]) -> sns.SnsMetadata:
    # An account and region of the user's own: provision creates the topic the ARN names.
    values = {
        "topicArn": f"arn:aws:sns:eu-west-1:{ACCOUNT}:{unique_name()}",
        "region": "eu-west-1",
    }
    metadata = sns.SnsMetadata.model_validate(
        {**values, **sns.emulate({"moto": moto_server.endpoint})}
    )
    sns.provision(metadata)
    return metadata


def client(service: str, metadata: sns.SnsMetadata) -> Any:
    """A client acting in the topic's account, where the topic and its queues live."""
    return _aws.in_account(_aws.client(service, metadata), ACCOUNT)


def subscribed_queue(metadata: sns.SnsMetadata, name: str) -> tuple[Any, str]:
    """A plain SQS queue subscribed to the topic: what the topic really sent."""
    sqs = client("sqs", metadata)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    client("sns", metadata).subscribe(
        TopicArn=metadata.topic_arn, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"]
    )
    return sqs, url


def published(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_create_publishes_message_and_subject(
    topic: sns.SnsMetadata, unique_name: Callable[..., str]
) -> None:
    sqs, url = subscribed_queue(topic, unique_name("check"))
    output = sns.SnsOutput("alerts", topic)
    response = output.invoke("create", b'{"message": {"id": 7}, "subject": "new"}', Metadata())
    assert response.data is None and response.metadata == {}
    output.invoke("create", b'{"message": "no subject"}', Metadata())
    first, second = published(sqs, url)
    assert (first["Message"], first["Subject"]) == ("map[id:7]", "new")
    assert (second["Message"], second["Subject"]) == ("no subject", "<nil>")
    assert first["TopicArn"] == topic.topic_arn


def test_create_errors(topic: sns.SnsMetadata) -> None:
    with pytest.raises(BindingError, match="JSON object"):
        sns.SnsOutput("alerts", topic).invoke("create", b"[1]", Metadata())
    missing = topic.model_copy(update={"topic_arn": topic.topic_arn + "-missing"})
    with pytest.raises(BindingError, match=r"NotFound|does not exist"):
        sns.SnsOutput("alerts", missing).invoke("create", b'{"message": "x"}', Metadata())


def test_provision_checks_the_arn_against_the_region(topic: sns.SnsMetadata) -> None:
    with pytest.raises(ComponentError, match="region"):
        sns.provision(topic.model_copy(update={"region": "us-east-1"}))
    with pytest.raises(ComponentError, match="not an SNS topic ARN"):
        sns.provision(topic.model_copy(update={"topic_arn": "orders"}))
    sns.provision(topic)  # idempotent
    topics = client("sns", topic).list_topics()["Topics"]
    assert [t["TopicArn"] for t in topics].count(topic.topic_arn) == 1


def publish(metadata: sns.SnsMetadata, message: str, **extra: Any) -> None:
    _aws.client("sns", metadata).publish(TopicArn=metadata.topic_arn, Message=message, **extra)


def test_listener_delivers_the_message_untouched_with_its_attributes(
    topic: sns.SnsMetadata, listen: Callable[..., Listener]
) -> None:
    listener = listen(sns.SnsInput("alerts", topic))
    queue = _relay.queue_name("sns", "alerts", topic.topic_arn)
    sqs = client("sqs", topic)
    # Wait for the subscription, then publish (a topic keeps nothing for late subscribers).
    wait_until(lambda: _subscribed(topic, queue))
    publish(
        topic,
        "eyJub3QiOiAiZGVjb2RlZCJ9",  # looks like base64: passed through as is
        Subject="hello",
        MessageAttributes={"tenant": {"DataType": "String", "StringValue": "acme"}},
    )
    publish(topic, "second")
    first, second = listener.wait_for(2)
    assert first.data == b"eyJub3QiOiAiZGVjb2RlZCJ9"
    assert first.metadata["tenant"] == "acme"
    assert first.metadata["subject"] == "hello"
    assert first.metadata["topicArn"] == topic.topic_arn
    assert first.metadata["timestamp"].endswith("Z")
    assert second.data == b"second"
    assert "tenant" not in second.metadata and "subject" not in second.metadata
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    wait_until(lambda: _queue_empty(sqs, url))  # deleted once handled


def test_listener_event_matches_the_lambda_event(
    topic: sns.SnsMetadata, listen: Callable[..., Listener]
) -> None:
    listener = listen(sns.SnsInput("alerts", topic))
    wait_until(lambda: _subscribed(topic, _relay.queue_name("sns", "alerts", topic.topic_arn)))
    publish(
        topic,
        "example message",
        Subject="example subject",
        MessageAttributes={
            "Test": {"DataType": "String", "StringValue": "TestString"},
            "TestBinary": {"DataType": "Binary", "BinaryValue": b"TestBinary"},
        },
    )
    (local,) = listener.wait_for(1)
    cloud = sns.event_from_record("alerts", SAMPLE)
    assert local.data == cloud.data
    assert set(local.metadata) == set(cloud.metadata)
    assert local.metadata["Test"] == cloud.metadata["Test"]


def test_failed_message_is_delivered_again(
    topic: sns.SnsMetadata, listen: Callable[..., Listener]
) -> None:
    calls: list[BindingEvent] = []

    def handler(event: BindingEvent) -> None:
        calls.append(event)
        if len(calls) == 1:
            raise RuntimeError("handler failed")

    listener = listen(sns.SnsInput("alerts", topic), handler)
    queue = _relay.queue_name("sns", "alerts", topic.topic_arn)
    wait_until(lambda: _subscribed(topic, queue))
    publish(topic, "flaky")
    first, again = listener.wait_for(2)
    assert first.data == again.data == b"flaky"
    assert first.metadata["messageId"] == again.metadata["messageId"]
    sqs = client("sqs", topic)
    wait_until(lambda: _queue_empty(sqs, sqs.get_queue_url(QueueName=queue)["QueueUrl"]))


def _subscribed(metadata: sns.SnsMetadata, queue: str) -> bool:
    subscriptions = client("sns", metadata).list_subscriptions_by_topic(
        TopicArn=metadata.topic_arn
    )["Subscriptions"]
    return any(s["Endpoint"].endswith(f":{queue}") for s in subscriptions)


def _queue_empty(sqs: Any, url: str) -> bool:
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return (
        counts["ApproximateNumberOfMessages"]
        == counts["ApproximateNumberOfMessagesNotVisible"]
        == "0"
    )


def wait_until(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_messages_sent_while_stopped_arrive_on_the_next_start(
    topic: sns.SnsMetadata, listen: Callable[..., Listener]
) -> None:
    first = listen(sns.SnsInput("alerts", topic))
    wait_until(lambda: _subscribed(topic, _relay.queue_name("sns", "alerts", topic.topic_arn)))
    first.stop.set()
    assert first.finished.wait(2)  # a stop does not wait out the long poll
    publish(topic, "while away")
    (event,) = listen(sns.SnsInput("alerts", topic)).wait_for(1)
    assert event.data == b"while away"
    subscriptions = client("sns", topic).list_subscriptions_by_topic(TopicArn=topic.topic_arn)
    assert len(subscriptions["Subscriptions"]) == 1  # the same queue, subscribed once
