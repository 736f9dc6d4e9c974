"""`bindings.mqtt3` (alias `bindings.mqtt`): MQTT 3.1.1, input and output
on paho-mqtt 2 (Dapr's: components-contrib `bindings/mqtt3/mqtt.go`).

Output `create` publishes the payload at QoS 1 (with the component's `retain` flag) to the
component's `topic` or the request's `topic`, and returns once the broker acknowledged it;
a failed publish is retried 3 times, 200 ms apart, as in Dapr.

The input listener subscribes at QoS 1 with manual acknowledgement: the PUBACK is sent only
after the handler returned. A failed message is retried in place per `backOffMaxRetries`
(5 s apart, as in Dapr); if it still fails, it stays unacknowledged and the listener
reconnects, so that the broker, which keeps the session (`cleanSession: false`), sends it
again. docs/delivery.md has the details.

`event_from_message` is the one mapping from an MQTT message to a `BindingEvent`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings import _tls
from portabind.components import REFERENCE
from portabind.errors import BindingError
from portabind.events import BindingEvent, BindingResponse, Metadata
from portabind.metadata import BindingMetadata, Secret, Truthy, field_validator, setting

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

#: Dapr's publish retry: 3 more tries, 200 ms apart.
PUBLISH_RETRIES = 3
PUBLISH_RETRY_SECONDS = 0.2
#: How long one publish waits for the broker's PUBACK, and a connection for its CONNACK.
ACK_TIMEOUT = 10.0
#: Dapr's constant backoff between handler retries.
HANDLER_RETRY_SECONDS = 5.0
#: Pause before reconnecting for a redelivery or after a lost connection (no hot loop).
RECONNECT_SECONDS = 1.0
#: How often the listener looks at `stop` while no message arrives.
IDLE_SECONDS = 0.5
KEEPALIVE_SECONDS = 60
#: URL schemes as Dapr normalizes them.
_SCHEMES = {"tcp": "tcp", "mqtt": "tcp", "ssl": "ssl", "mqtts": "ssl", "tcps": "ssl", "tls": "ssl"}


class Mqtt3Metadata(BindingMetadata):
    binding_type = "bindings.mqtt3"
    # Dapr logs that qos is deprecated and ignores it (components-contrib
    # `bindings/mqtt3/metadata.go`).
    deprecated = {"qos": "remove it: Dapr ignores it, and QoS is always 1"}

    url: Secret = setting(
        "url", secret=True, description="tcp://[user][:pass]@host:port or ssl://..."
    )
    topic: str = setting("topic", description="subscribe topic and default publish topic")
    consumer_id: str = setting(
        "consumerID", description="client id base: <id>-producer, <id>-consumer"
    )
    retain: Truthy = setting("retain", False)
    clean_session: Truthy = setting("cleanSession", False)
    ca_cert: str | None = setting("caCert", None, description="PEM")
    client_cert: str | None = setting("clientCert", None, description="PEM")
    client_key: Secret | None = setting("clientKey", None, secret=True, description="PEM")
    back_off_max_retries: int = setting(
        "backOffMaxRetries", 0, description="handler retries, 5 s apart; -1: forever"
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: Secret) -> Secret:
        # A reference is checked where it resolves (`validate` resolves it, a build cannot).
        scheme = urlsplit(value.get_secret_value()).scheme.lower()
        if scheme not in _SCHEMES and value.get_secret_value() != REFERENCE:
            raise ValueError(
                f"url scheme {scheme!r} is not supported: use tcp://, mqtt://, ssl://, "
                "mqtts://, tcps:// or tls://"
            )
        return value


def event_from_message(name: str, topic: str, payload: bytes) -> BindingEvent:
    """The event for one MQTT message: `data` is the payload, metadata Dapr's `topic` (the
    topic the message was published to, not the subscription's filter)."""
    return BindingEvent(name, bytes(payload), Metadata({"topic": topic}))


def _client(metadata: Mqtt3Metadata, role: str, *, manual_ack: bool = False) -> Any:
    """A paho client for `<consumerID>-<role>`, with credentials and TLS from `url`, not yet
    connected."""
    from paho.mqtt.client import Client
    from paho.mqtt.enums import CallbackAPIVersion

    client = Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{metadata.consumer_id}-{role}",
        clean_session=metadata.clean_session,
        manual_ack=manual_ack,
    )
    url = urlsplit(metadata.secret("url") or "")
    if url.username is not None or url.password is not None:
        client.username_pw_set(unquote(url.username or ""), unquote(url.password or ""))
    if _SCHEMES[url.scheme.lower()] == "ssl":
        client.tls_set_context(
            _tls.ssl_context(
                ca_cert=metadata.ca_cert,
                client_cert=metadata.client_cert,
                client_key=metadata.secret("client_key"),
            )
        )
    return client


def _connect(client: Any, metadata: Mqtt3Metadata, on_connect: Callable[..., None]) -> None:
    """Connect and start paho's network thread; `on_connect` runs on every (re)connection."""
    url = urlsplit(metadata.secret("url") or "")
    secure = _SCHEMES[url.scheme.lower()] == "ssl"
    client.on_connect = on_connect
    client.connect(
        url.hostname or "localhost",
        url.port or (8883 if secure else 1883),
        keepalive=KEEPALIVE_SECONDS,
    )
    client.loop_start()


class Mqtt3Output(OutputBinding[Mqtt3Metadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: Mqtt3Metadata) -> None:
        super().__init__(name, metadata)
        self._lock = threading.Lock()
        self._client: Any = None
        self._connected = threading.Event()
        self._refused: str | None = None

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
        self._connected.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        # Closed before any CONNACK (a TLS peer refusing our certificate, say): fail now
        # rather than wait for the timeout. Later drops are paho's to reconnect.
        if not self._connected.is_set():
            self._refused = f"the connection was closed ({reason})"
            self._connected.set()

    def _ready(self) -> Any:
        with self._lock:
            if self._client is None:
                self._refused = None
                client = _client(self.metadata, "producer")
                client.on_disconnect = self._on_disconnect
                _connect(client, self.metadata, self._on_connect)
                self._client = client
            client = self._client
        if not self._connected.wait(ACK_TIMEOUT) or self._refused:
            self.close()
            raise BindingError(
                self.name,
                "create",
                f"the MQTT broker did not accept the connection: {self._refused or 'no answer'}",
            )
        return client

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        topic = metadata.get("topic") or self.metadata.topic
        try:
            client = self._ready()
        except OSError as error:
            self.close()
            raise BindingError(self.name, "create", str(error)) from error
        problem = ""
        for attempt in range(1 + PUBLISH_RETRIES):
            if attempt:
                time.sleep(PUBLISH_RETRY_SECONDS)
            try:
                info = client.publish(topic, data, qos=1, retain=self.metadata.retain)
                info.wait_for_publish(ACK_TIMEOUT)
            except ValueError as error:  # a bad topic (wildcards, empty): retrying cannot help
                raise BindingError(self.name, "create", str(error)) from error
            except RuntimeError as error:  # not connected: paho is reconnecting
                problem = str(error)
                continue
            if info.is_published():
                return BindingResponse()
            problem = f"no PUBACK within {ACK_TIMEOUT}s"
        raise BindingError(self.name, "create", f"publishing to {topic!r} failed: {problem}")

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
            self._client = None
            self._connected.clear()


class Mqtt3Input(InputBinding[Mqtt3Metadata]):
    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._session(deliver, stop)
            except (OSError, ConnectionError) as error:
                log.warning("%s: MQTT connection failed (%s); reconnecting", self.name, error)
            stop.wait(RECONNECT_SECONDS)

    def _session(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        """One connection. Returns after a message failed for good, leaving it unacknowledged
        so the broker sends it again on the next connection of this persistent session."""
        inbox: queue.Queue[tuple[int, Any]] = queue.Queue()
        # Packet ids are per connection: a message received before paho reconnected must not
        # be acknowledged on the new connection (its id may name another message there).
        connection = 0
        refused = ""

        def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            nonlocal connection, refused
            if reason.is_failure:
                refused = str(reason)
                return
            connection += 1
            client.subscribe(self.metadata.topic, qos=1)

        def on_message(client: Any, userdata: Any, message: Any) -> None:
            inbox.put((connection, message))

        client = _client(self.metadata, "consumer", manual_ack=True)
        client.on_message = on_message
        _connect(client, self.metadata, on_connect)
        try:
            while not stop.is_set():
                if refused:
                    raise ConnectionError(f"the broker refused the connection: {refused}")
                try:
                    received_on, message = inbox.get(timeout=IDLE_SECONDS)
                except queue.Empty:
                    continue
                if received_on != connection:
                    continue  # the broker sends it again on the current connection
                event = event_from_message(self.name, message.topic, message.payload)
                if not self._handle(deliver, event, stop):
                    return
                client.ack(message.mid, message.qos)
        finally:
            client.disconnect()
            client.loop_stop()

    def _handle(
        self, deliver: Callable[[BindingEvent], None], event: BindingEvent, stop: threading.Event
    ) -> bool:
        """Run the handler, retrying per `backOffMaxRetries`; True once it succeeded."""
        retries = self.metadata.back_off_max_retries
        attempt = 0
        while True:
            try:
                deliver(event)
                return True
            except Exception as error:  # the handler's failure
                attempt += 1
                if (retries >= 0 and attempt > retries) or stop.is_set():
                    log.warning(
                        "%s: message on %r failed (%s); left unacknowledged for redelivery",
                        self.name,
                        event.metadata["topic"],
                        error,
                    )
                    return False
            if stop.wait(HANDLER_RETRY_SECONDS):
                return False


binding = Binding(metadata=Mqtt3Metadata, output=Mqtt3Output, input=Mqtt3Input)
