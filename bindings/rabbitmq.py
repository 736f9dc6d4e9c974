"""`bindings.rabbitmq`: RabbitMQ, input and output, on pika (Dapr's: components-contrib
`bindings/rabbitmq/rabbitmq.go`).

Both directions declare the queue `queueName` on connect, as Dapr does. Output `create`
publishes the payload to it through the default exchange, persistent, and returns once the
broker has confirmed the message (publisher confirms). The input listener consumes it with
manual acknowledgement: ack after the handler returned, `basic.nack(requeue=True)` when it
raised, so the broker redelivers it (docs/delivery.md). The ack is sent before the next
message is handled, so a runner killed outright repeats at most the one message whose handler
had just returned; the rest of the prefetch (`prefetchCount`) goes back to the queue unhandled.

A queue that already exists with other arguments (a quorum queue with `x-delivery-limit` and
a dead-letter exchange, say) is used as it is instead of failing the declaration: that is how
a user bounds redeliveries and routes poison messages to a dead-letter queue.

`event_from_message` is the one mapping from an AMQP message to a `BindingEvent`.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings import _tls
from portabind.errors import BindingError, UserError
from portabind.events import BindingEvent, BindingResponse, Metadata
from portabind.metadata import (
    BindingMetadata,
    Duration,
    Secret,
    Truthy,
    field_validator,
    request_ttl,
    setting,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

#: How often the listener looks at `stop` while the queue is idle.
IDLE_SECONDS = 0.5
#: AMQP's "persistent" delivery mode, which Dapr publishes with.
PERSISTENT = 2
#: AMQP reply code for a declaration whose arguments differ from the existing queue's.
PRECONDITION_FAILED = 406


class RabbitMQMetadata(BindingMetadata):
    binding_type = "bindings.rabbitmq"
    # Dapr reads ttl before ttlInSeconds (components-contrib `metadata.TryGetTTL`).
    lookup_order = {"ttlInSeconds": ("ttl", "ttlInSeconds")}

    host: Secret = setting(
        "host", secret=True, description="amqp://user:pass@host:port/vhost or amqps://..."
    )
    queue_name: str = setting("queueName", description="queue to declare, publish to, consume")
    durable: Truthy = setting("durable", False)
    delete_when_unused: Truthy = setting("deleteWhenUnused", False)
    exclusive: Truthy = setting("exclusive", False)
    prefetch_count: int = setting("prefetchCount", 0, description="0: no limit")
    max_priority: int | None = setting("maxPriority", None, description="1..255")
    ttl: Duration | None = setting(
        "ttlInSeconds", None, aliases=("ttl",), description="queue message TTL"
    )
    reconnect_wait: Duration = setting("reconnectWaitInSeconds", timedelta(seconds=5))
    content_type: str = setting("contentType", "text/plain", description="default per message")
    ca_cert: str | None = setting("caCert", None, description="PEM")
    client_cert: str | None = setting("clientCert", None, description="PEM")
    client_key: Secret | None = setting("clientKey", None, secret=True, description="PEM")
    external_sasl: Truthy = setting("externalSasl", False, aliases=("saslExternal",))

    @field_validator("max_priority")
    @classmethod
    def _priority(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("maxPriority must be between 1 and 255")
        return None if value is None else min(value, 255)

    def queue_arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        if self.max_priority is not None:
            arguments["x-max-priority"] = self.max_priority
        if self.ttl is not None:
            arguments["x-message-ttl"] = int(self.ttl.total_seconds() * 1000)
        return arguments


def event_from_message(name: str, body: bytes, headers: Mapping[str, Any] | None) -> BindingEvent:
    """The event for one AMQP message: `data` is the body; metadata is every header with a
    string value, its key URL-query-escaped as Dapr does (Go's `url.QueryEscape`)."""
    metadata = {
        quote_plus(key, safe=""): value
        for key, value in (headers or {}).items()
        if isinstance(value, str)
    }
    return BindingEvent(name, bytes(body), Metadata(metadata))


def _connect(metadata: RabbitMQMetadata) -> Any:
    """A blocking pika connection for the component (TLS and SASL EXTERNAL as configured)."""
    import pika

    parameters = pika.URLParameters(metadata.secret("host") or "")
    client_key = metadata.secret("client_key")
    if metadata.ca_cert or metadata.client_cert:
        context = _tls.ssl_context(
            ca_cert=metadata.ca_cert, client_cert=metadata.client_cert, client_key=client_key
        )
        parameters.ssl_options = pika.SSLOptions(context, parameters.host)
    if metadata.external_sasl:
        parameters.credentials = pika.credentials.ExternalCredentials()
    return pika.BlockingConnection(parameters)


def _declare(connection: Any, metadata: RabbitMQMetadata) -> Any:
    """Declare the queue as Dapr does and return a channel to use. When the queue exists
    with other arguments, use it as it is (the broker closed the first channel)."""
    import pika.exceptions

    channel = connection.channel()
    try:
        channel.queue_declare(
            metadata.queue_name,
            durable=metadata.durable,
            exclusive=metadata.exclusive,
            auto_delete=metadata.delete_when_unused,
            arguments=metadata.queue_arguments(),
        )
    except pika.exceptions.ChannelClosedByBroker as error:
        if error.reply_code != PRECONDITION_FAILED:
            raise
        log.info("queue %r exists with other arguments; using it as is", metadata.queue_name)
        channel = connection.channel()
        channel.queue_declare(metadata.queue_name, passive=True)
    return channel


def _priority(value: str) -> int:
    try:
        return min(max(int(value), 0), 255)
    except ValueError:
        raise UserError(f"request metadata priority {value!r} is not an integer") from None


class RabbitMQOutput(OutputBinding[RabbitMQMetadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: RabbitMQMetadata) -> None:
        super().__init__(name, metadata)
        # pika connections are not thread-safe: one publish at a time.
        self._lock = threading.Lock()
        self._connection: Any = None
        self._channel: Any = None

    def _open_channel(self) -> Any:
        if self._channel is None or not self._channel.is_open:
            if self._connection is None or not self._connection.is_open:
                self._connection = _connect(self.metadata)
            self._channel = _declare(self._connection, self.metadata)
            self._channel.confirm_delivery()
        return self._channel

    def _properties(self, metadata: Metadata) -> Any:
        import pika

        ttl = request_ttl(metadata)
        return pika.BasicProperties(
            delivery_mode=PERSISTENT,
            content_type=metadata.get("contentType") or self.metadata.content_type,
            message_id=metadata.get("messageID"),
            correlation_id=metadata.get("correlationID"),
            type=metadata.get("type"),
            priority=_priority(metadata["priority"]) if "priority" in metadata else None,
            expiration=str(int(ttl.total_seconds() * 1000)) if ttl is not None else None,
            # Dapr copies every request metadata entry into the headers, reserved keys too.
            headers=dict(metadata.items()) or None,
        )

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        import pika.exceptions

        properties = self._properties(metadata)
        with self._lock:
            # A connection the broker dropped since the last call is reopened once.
            for attempt in (1, 2):
                try:
                    self._open_channel().basic_publish(
                        "", self.metadata.queue_name, data, properties, mandatory=True
                    )
                    break
                except (pika.exceptions.StreamLostError, pika.exceptions.ConnectionClosed) as e:
                    self._connection = self._channel = None
                    if attempt == 2:
                        raise BindingError(self.name, "create", str(e)) from e
                except pika.exceptions.AMQPError as error:
                    self._channel = None
                    raise BindingError(self.name, "create", repr(error)) from error
        return BindingResponse()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._connection.is_open:
                self._connection.close()
            self._connection = self._channel = None


class RabbitMQInput(InputBinding[RabbitMQMetadata]):
    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        import pika.exceptions

        while not stop.is_set():
            try:
                self._consume(deliver, stop)
            except pika.exceptions.AMQPError as error:
                wait = self.metadata.reconnect_wait.total_seconds()
                log.warning(
                    "%s: RabbitMQ connection failed (%r); retry in %ss", self.name, error, wait
                )
                stop.wait(wait)

    def _consume(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        connection = _connect(self.metadata)
        try:
            channel = _declare(connection, self.metadata)
            channel.basic_qos(prefetch_count=self.metadata.prefetch_count)
            messages = channel.consume(self.metadata.queue_name, inactivity_timeout=IDLE_SECONDS)
            for method, properties, body in messages:
                if stop.is_set():
                    break
                if method is None:  # idle: look at `stop` again
                    continue
                event = event_from_message(self.name, body, properties.headers)
                try:
                    deliver(event)
                except Exception as error:  # the handler's failure: the broker redelivers it
                    log.warning("%s: message failed (%s); requeued", self.name, error)
                    channel.basic_nack(method.delivery_tag, requeue=True)
                    continue
                channel.basic_ack(method.delivery_tag)
            # Cancelling returns prefetched, unacknowledged messages to the queue at once.
            channel.cancel()
        finally:
            if connection.is_open:
                connection.close()


binding = Binding(metadata=RabbitMQMetadata, output=RabbitMQOutput, input=RabbitMQInput)
