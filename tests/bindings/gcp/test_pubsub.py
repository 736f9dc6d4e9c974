"""bindings.gcp.pubsub against portabind's Pub/Sub emulator, with the real google-cloud-pubsub."""

from __future__ import annotations

import base64
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from portabind.bindings.gcp import pubsub
from portabind.errors import BindingError, NotFound
from portabind.events import BindingEvent, Metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PROJECT = "portabind-test"


@pytest.fixture
def emulator(pubsub_server: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_server.address)
    return str(pubsub_server.address)


@pytest.fixture
def component(emulator: str, unique_name: Callable[..., str]) -> pubsub.PubSubMetadata:
    """A topic with a subscription, created by the binding's own `provision`."""
    metadata = pubsub.PubSubMetadata.model_validate(
        {"projectId": PROJECT, "topic": unique_name("t"), "subscription": unique_name("s")}
    )
    pubsub.provision(metadata)
    return metadata


class Listening:
    """The input binding listening on a thread, its events in a queue."""

    def __init__(self, metadata: pubsub.PubSubMetadata, deliver: Callable[[BindingEvent], None]):
        self.events: queue.Queue[BindingEvent] = queue.Queue()
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

        def record(event: BindingEvent) -> None:
            self.events.put(event)
            deliver(event)

        def run() -> None:
            try:
                pubsub.PubSubInput("orders", metadata).listen(record, self.stop)
            except BaseException as error:  # surfaced by the test
                self.errors.append(error)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def next(self, timeout: float = 15.0) -> BindingEvent:
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "listen() did not return after stop was set"
        assert not self.errors, self.errors


@pytest.fixture
def listen(component: pubsub.PubSubMetadata) -> Iterator[Callable[..., Listening]]:
    started: list[Listening] = []

    def start(deliver: Callable[[BindingEvent], None] = lambda event: None) -> Listening:
        started.append(Listening(component, deliver))
        return started[-1]

    yield start
    for listening in started:
        listening.close()


def publish_with_sdk(topic: str, data: bytes, **attributes: str) -> str:
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    try:
        return str(publisher.publish(topic, data, **attributes).result(timeout=30))
    finally:
        publisher.stop()


def test_create_publishes_and_the_listener_delivers_the_normalized_event(
    component: pubsub.PubSubMetadata, listen: Callable[..., Listening]
) -> None:
    output = pubsub.PubSubOutput("out", component)
    try:
        response = output.invoke("create", b'{"id": 7}', Metadata())
    finally:
        output.close()
    assert response.data is None  # Dapr returns no data for create

    event = listen().next()
    assert event.name == "orders"
    assert event.data == b'{"id": 7}'
    assert set(event.metadata) == {"id", "publishTime", "subscription"}
    assert event.metadata["id"]
    assert event.metadata["publishTime"].endswith("Z")
    assert pubsub._parse_rfc3339(event.metadata["publishTime"])  # RFC 3339, not Go's layout
    assert event.metadata["subscription"] == (
        f"projects/{PROJECT}/subscriptions/{component.subscription}"
    )


def test_attributes_arrive_under_their_own_names_and_dapr_keys_win(
    component: pubsub.PubSubMetadata, listen: Callable[..., Listening]
) -> None:
    assert component.topic
    message_id = publish_with_sdk(
        pubsub.topic_path(PROJECT, component.topic), b"\x00\xffraw", color="red", id="spoofed"
    )
    event = listen().next()
    assert event.data == b"\x00\xffraw"
    assert event.metadata["color"] == "red"
    assert event.metadata["id"] == message_id


def test_a_failing_handler_gets_the_message_again_and_success_acks_it(
    component: pubsub.PubSubMetadata, listen: Callable[..., Listening]
) -> None:
    calls: list[str] = []

    def flaky(event: BindingEvent) -> None:
        calls.append(event.metadata["id"])
        if len(calls) == 1:
            raise RuntimeError("handler failed")

    listening = listen(flaky)
    output = pubsub.PubSubOutput("out", component)
    try:
        output.invoke("create", b"retry me", Metadata())
    finally:
        output.close()
    first, second = listening.next(), listening.next()
    assert first.data == second.data == b"retry me"
    assert first.metadata["id"] == second.metadata["id"]
    # Acked after the success: no third delivery.
    with pytest.raises(queue.Empty):
        listening.next(timeout=2.0)
    assert len(calls) == 2


@pytest.mark.filterwarnings("ignore:The return_immediately flag is deprecated")
def test_request_metadata_topic_overrides_the_component_topic(
    component: pubsub.PubSubMetadata, unique_name: Callable[..., str]
) -> None:
    other = pubsub.PubSubMetadata.model_validate(
        {"project_id": PROJECT, "topic": unique_name("o"), "subscription": unique_name("os")}
    )
    pubsub.provision(other)
    assert other.topic and other.subscription and component.subscription
    output = pubsub.PubSubOutput("out", component)
    try:
        output.invoke("create", b"elsewhere", Metadata({"topic": other.topic}))
    finally:
        output.close()

    from google.cloud import pubsub_v1

    with pubsub_v1.SubscriberClient() as subscriber:
        pulled = subscriber.pull(
            subscription=pubsub.subscription_path(PROJECT, other.subscription),
            max_messages=5,
            timeout=10,
        )
        assert [m.message.data for m in pulled.received_messages] == [b"elsewhere"]
        default = subscriber.pull(
            subscription=pubsub.subscription_path(PROJECT, component.subscription),
            max_messages=5,
            return_immediately=True,
            timeout=10,
        )
        assert list(default.received_messages) == []


def test_publishing_to_a_missing_topic_is_not_found(component: pubsub.PubSubMetadata) -> None:
    output = pubsub.PubSubOutput("out", component)
    try:
        with pytest.raises(NotFound):
            output.invoke("create", b"x", Metadata({"topic": "no-such-topic-here"}))
    finally:
        output.close()


def test_create_without_any_topic_fails_clearly(emulator: str) -> None:
    output = pubsub.PubSubOutput("out", pubsub.PubSubMetadata(project_id=PROJECT))
    with pytest.raises(BindingError, match="no topic"):
        output.invoke("create", b"x", Metadata())


def test_the_sdk_message_and_the_cloudevent_payload_give_the_same_event(
    component: pubsub.PubSubMetadata, listen: Callable[..., Listening]
) -> None:
    received: list[Any] = []

    from google.cloud import pubsub_v1

    assert component.topic and component.subscription
    publish_with_sdk(pubsub.topic_path(PROJECT, component.topic), b"same", k="v")
    subscription = pubsub.subscription_path(PROJECT, component.subscription)
    with pubsub_v1.SubscriberClient() as subscriber:
        got = threading.Event()

        def keep(message: Any) -> None:
            received.append(message)
            message.ack()
            got.set()

        future = subscriber.subscribe(subscription, keep)
        assert got.wait(15)
        future.cancel()
    message = received[0]
    # What Eventarc posts for the same message (Pub/Sub's push JSON).
    cloud_event_data = {
        "message": {
            "data": base64.b64encode(message.data).decode(),
            "attributes": dict(message.attributes),
            "messageId": message.message_id,
            "publishTime": message.publish_time.isoformat().replace("+00:00", "Z"),
        },
        "subscription": subscription,
    }
    from_sdk = pubsub.message_event("orders", message, subscription)
    from_cloud_event = pubsub.message_event("orders", cloud_event_data)
    assert from_sdk == from_cloud_event
    assert from_sdk.metadata["k"] == "v"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z"),
        ("2024-01-02T03:04:05.120Z", "2024-01-02T03:04:05.120Z"),
        ("2024-01-02T03:04:05.123456789Z", "2024-01-02T03:04:05.123456789Z"),
        ("2024-01-02T03:04:05.1234Z", "2024-01-02T03:04:05.123400Z"),
        ("2024-01-02T04:04:05.5+01:00", "2024-01-02T03:04:05.500Z"),
    ],
)
def test_publish_time_is_rfc3339_utc_in_protobuf_json_precision(given: str, expected: str) -> None:
    assert pubsub.publish_time(given) == expected


def test_cloudevent_payload_mapping_matches_the_design_rules() -> None:
    event = pubsub.message_event(
        "orders",
        {
            "message": {
                "data": base64.b64encode(b"payload").decode(),
                "attributes": {"Color": "red"},
                "messageId": "42",
                "publishTime": "2024-01-02T03:04:05.678Z",
                "orderingKey": "customer-1",
            },
            "subscription": "projects/p/subscriptions/eventarc-x",
        },
    )
    assert event.data == b"payload"
    assert dict(event.metadata) == {
        "Color": "red",
        "id": "42",
        "publishTime": "2024-01-02T03:04:05.678Z",
        "orderingKey": "customer-1",
        "subscription": "projects/p/subscriptions/eventarc-x",
    }
    assert event.metadata["color"] == "red"  # keys compare case-insensitively


def test_listener_stops_promptly(listen: Callable[..., Listening]) -> None:
    listening = listen()
    time.sleep(0.5)
    started = time.monotonic()
    listening.close()
    assert time.monotonic() - started < 10
