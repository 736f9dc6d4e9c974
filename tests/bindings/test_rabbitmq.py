"""bindings.rabbitmq against the machine's RabbitMQ (127.0.0.1:5672, guest/guest)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pika
import pika.exceptions
import pytest

from portabind.bindings.rabbitmq import (
    RabbitMQInput,
    RabbitMQMetadata,
    RabbitMQOutput,
    binding,
    event_from_message,
)
from portabind.errors import BindingError, UserError
from portabind.events import Metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import Listener  # tests/bindings/conftest.py

    from portabind.events import BindingEvent


@pytest.fixture
def queue(unique_name: Callable[..., str]) -> str:
    return unique_name()


@pytest.fixture
def channel(rabbitmq_url: str, queue: str) -> Iterator[Any]:
    """A raw pika channel; deletes the test's queues afterwards."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    yield connection.channel()
    cleanup = connection.channel()
    for name in (queue, f"{queue}-dlq"):
        cleanup.queue_delete(name)
    connection.close()


@pytest.fixture
def settings(rabbitmq_url: str, queue: str) -> Callable[..., RabbitMQMetadata]:
    def make(**values: str) -> RabbitMQMetadata:
        return RabbitMQMetadata.model_validate({"host": rabbitmq_url, "queueName": queue, **values})

    return make


@pytest.fixture
def output(
    settings: Callable[..., RabbitMQMetadata], closing: Any
) -> Callable[..., RabbitMQOutput]:
    return lambda **values: closing(RabbitMQOutput("jobs", settings(**values)))


def _get(channel: Any, queue: str, timeout: float = 5) -> tuple[Any, Any, bytes]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is not None:
            return method, properties, body
        time.sleep(0.05)
    raise AssertionError(f"no message in {queue} within {timeout}s")


def _depth(channel: Any, queue: str) -> int:
    count: int = channel.queue_declare(queue, passive=True).method.message_count
    return count


def test_create_publishes_a_persistent_message_with_dapr_properties(
    output: Any, channel: Any, queue: str
) -> None:
    response = output().invoke(
        "create",
        b'{"id": 1}',
        Metadata(
            {
                "messageID": "m-1",
                "correlationID": "c-1",
                "type": "order",
                "priority": "300",
                "ttlInSeconds": "60",
                "tenant": "acme",
            }
        ),
    )
    assert response.data is None
    _, properties, body = _get(channel, queue)
    assert body == b'{"id": 1}'
    assert properties.delivery_mode == 2
    assert properties.content_type == "text/plain"
    assert (properties.message_id, properties.correlation_id, properties.type) == (
        "m-1",
        "c-1",
        "order",
    )
    assert properties.priority == 255  # clamped to 0..255
    assert properties.expiration == "60000"
    # Dapr copies every request metadata entry into the AMQP headers.
    assert properties.headers["tenant"] == "acme"
    assert properties.headers["messageID"] == "m-1"


def test_create_takes_the_content_type_from_the_request_then_the_component(
    output: Any, channel: Any, queue: str
) -> None:
    output(contentType="application/json").invoke("create", b"{}", Metadata())
    output().invoke("create", b"<a/>", Metadata({"contentType": "application/xml"}))
    assert _get(channel, queue)[1].content_type == "application/json"
    assert _get(channel, queue)[1].content_type == "application/xml"


def test_create_refuses_a_priority_that_is_not_a_number(output: Any) -> None:
    with pytest.raises(UserError, match="priority"):
        output().invoke("create", b"x", Metadata({"priority": "high"}))


def test_create_fails_rather_than_lose_a_message_nothing_can_route(
    output: Any, channel: Any, queue: str
) -> None:
    jobs = output()
    jobs.invoke("create", b"routed", Metadata())
    channel.queue_delete(queue)  # after the binding declared it
    with pytest.raises(BindingError, match="create"):
        jobs.invoke("create", b"lost?", Metadata())


def test_the_queue_is_declared_with_the_component_arguments(
    output: Any, channel: Any, queue: str, rabbitmq_url: str
) -> None:
    output(durable="true", maxPriority="5", ttl="90").invoke("create", b"x", Metadata())
    # An equivalent declaration succeeds; a different one is refused by the broker.
    channel.queue_declare(
        queue, durable=True, arguments={"x-max-priority": 5, "x-message-ttl": 90_000}
    )
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="inequivalent"):
        channel.queue_declare(queue, durable=True)


def test_input_delivers_the_body_and_string_headers(
    settings: Any, channel: Any, queue: str, listen: Callable[..., Listener]
) -> None:
    channel.queue_declare(queue)
    headers = {"tenant": "acme", "trace id": "t/1", "count": 3, "raw": b"\xff"}
    channel.basic_publish("", queue, b"\x00payload", pika.BasicProperties(headers=headers))
    listener = listen(RabbitMQInput("jobs", settings()))
    (event,) = listener.wait_for(1)
    assert event.name == "jobs"
    assert event.data == b"\x00payload"
    # Only string values, keys URL-query-escaped as Dapr does.
    assert dict(event.metadata) == {"tenant": "acme", "trace+id": "t/1"}


def test_output_to_input_round_trip(
    output: Any, settings: Any, listen: Callable[..., Listener]
) -> None:
    output().invoke("create", b"hello", Metadata({"orderId": "42"}))
    (event,) = listen(RabbitMQInput("jobs", settings())).wait_for(1)
    assert event.data == b"hello"
    assert event.metadata["orderid"] == "42"


def test_a_failed_delivery_is_redelivered_not_lost(
    output: Any, settings: Any, channel: Any, queue: str, listen: Callable[..., Listener]
) -> None:
    processed: list[bytes] = []
    failed: list[bytes] = []

    def handler(event: BindingEvent) -> None:
        if event.data == b"first" and not failed:
            failed.append(event.data)
            raise RuntimeError("handler failed once")
        processed.append(event.data)

    output().invoke("create", b"first", Metadata())
    output().invoke("create", b"second", Metadata())
    listener = listen(RabbitMQInput("jobs", settings()), handler)
    events = listener.wait_for(3)
    assert listener.failures == 1
    assert [e.data for e in events].count(b"first") == 2
    assert sorted(processed) == [b"first", b"second"]
    time.sleep(0.3)  # let the last ack reach the broker
    assert _depth(channel, queue) == 0


def test_a_quorum_queue_dead_letters_after_its_delivery_limit(
    settings: Any, channel: Any, queue: str, listen: Callable[..., Listener]
) -> None:
    """Bounded retries: the user's quorum queue (x-delivery-limit, dead-letter exchange),
    created beforehand with arguments unlike the binding's, is used as it is."""
    dead = f"{queue}-dlq"
    channel.queue_declare(dead, durable=True)
    channel.queue_declare(
        queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": 1,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dead,
        },
    )
    channel.basic_publish("", queue, b"poison", pika.BasicProperties(headers={"k": "v"}))

    def always_fails(event: BindingEvent) -> None:
        raise RuntimeError("cannot process")

    listener = listen(RabbitMQInput("jobs", settings(durable="true")), always_fails)
    listener.wait_for(2)
    _, properties, body = _get(channel, dead, timeout=10)
    assert body == b"poison"
    assert properties.headers["k"] == "v"
    assert listener.failures == 2


def test_stopping_returns_prefetched_messages_to_the_queue_at_once(
    settings: Any, channel: Any, queue: str, listen: Callable[..., Listener]
) -> None:
    channel.queue_declare(queue)
    for index in range(3):
        channel.basic_publish("", queue, str(index).encode())
    listener: Listener

    def stop_after_this_one(event: BindingEvent) -> None:
        listener.stop.set()

    listener = listen(RabbitMQInput("jobs", settings()), stop_after_this_one)
    listener.wait_for(1)
    deadline = time.monotonic() + 5
    while _depth(channel, queue) != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    # The handled one was acknowledged; the two the listener held go back to the queue.
    assert _depth(channel, queue) == 2
    assert len(listener.events) == 1


def test_event_mapping_is_shared_by_every_path() -> None:
    event = event_from_message("jobs", b"x", {"a b": "1", "n": 2})
    assert (event.data, dict(event.metadata)) == (b"x", {"a+b": "1"})
    assert event_from_message("jobs", b"", None).metadata == {}


def test_metadata_follows_dapr_names() -> None:
    model = binding.metadata
    parsed = model.model_validate(
        {"host": "amqp://h", "queueName": "q", "maxPriority": "300", "saslExternal": "true"}
    )
    assert parsed.max_priority == 255
    assert parsed.external_sasl is True
    assert parsed.content_type == "text/plain"
    with pytest.raises(ValueError, match="maxPriority"):
        model.model_validate({"host": "amqp://h", "queueName": "q", "maxPriority": "0"})
    assert binding.directions == frozenset({"input", "output"})
