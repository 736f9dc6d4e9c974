"""bindings.mqtt3 against the machine's Mosquitto (127.0.0.1:1883)."""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from paho.mqtt.client import CallbackAPIVersion, Client

from portabind.app import App
from portabind.bindings.mqtt3 import Mqtt3Input, Mqtt3Metadata, Mqtt3Output, binding
from portabind.components import REFERENCE
from portabind.errors import BindingError
from portabind.events import BindingEvent, Metadata  # App reads handler hints at run time
from portabind.runtime import Runtime
from portabind.tooling.project import load_components

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import Listener  # tests/bindings/conftest.py


class Peer:
    """A plain paho client standing in for the other side of the broker."""

    def __init__(self, url: str, client_id: str = "", *, clean_session: bool = True) -> None:
        host, port = url.removeprefix("tcp://").split(":")
        self.messages: queue.Queue[Any] = queue.Queue()
        self.client = Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session
        )
        self.client.on_message = lambda client, userdata, message: self.messages.put(message)
        connected = threading.Event()
        self.client.on_connect = lambda *args: connected.set()
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert connected.wait(5), "peer could not connect"

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(5), "no SUBACK"

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def next(self, timeout: float = 5) -> Any:
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def names(unique_name: Callable[..., str]) -> tuple[str, str]:
    """(topic base, consumerID) unique to the test."""
    name = unique_name()
    return f"pb/{name}", name


@pytest.fixture
def settings(mqtt_url: str, names: tuple[str, str]) -> Callable[..., Mqtt3Metadata]:
    base, consumer = names

    def make(**values: str) -> Mqtt3Metadata:
        fields = {"url": mqtt_url, "topic": f"{base}/#", "consumerID": consumer, **values}
        return Mqtt3Metadata.model_validate(fields)

    return make


@pytest.fixture
def peers(mqtt_url: str, names: tuple[str, str]) -> Iterator[Callable[..., Peer]]:
    opened: list[Peer] = []

    def make(client_id: str = "", *, clean_session: bool = True) -> Peer:
        peer = Peer(mqtt_url, client_id, clean_session=clean_session)
        opened.append(peer)
        return peer

    yield make
    for peer in opened:
        peer.close()
    # Forget the listener's persistent session on the broker.
    make(f"{names[1]}-consumer", clean_session=True).close()


@pytest.fixture
def output(settings: Callable[..., Mqtt3Metadata], closing: Any) -> Callable[..., Mqtt3Output]:
    return lambda **values: closing(Mqtt3Output("sensors", settings(**values)))


def _session_for_listener(peers: Callable[..., Peer], consumer: str, topic: str) -> None:
    """Open the listener's persistent session (its client id, cleanSession false) and
    subscribe it, so messages published before the listener starts wait for it."""
    peer = peers(f"{consumer}-consumer", clean_session=False)
    peer.subscribe(topic)
    peer.close()


def test_create_publishes_at_qos_1_to_the_component_topic(
    output: Any, peers: Callable[..., Peer], names: tuple[str, str]
) -> None:
    base, _ = names
    watcher = peers()
    watcher.subscribe(f"{base}/#")
    response = output(topic=f"{base}/default").invoke("create", b"\x00reading", Metadata())
    assert response.data is None
    message = watcher.next()
    assert (message.topic, message.payload, message.qos, message.retain) == (
        f"{base}/default",
        b"\x00reading",
        1,
        False,
    )


def test_request_topic_overrides_and_retain_is_applied(
    output: Any, peers: Callable[..., Peer], names: tuple[str, str]
) -> None:
    base, _ = names
    sensor = output(topic=f"{base}/default", retain="true")
    sensor.invoke("create", b"last value", Metadata({"topic": f"{base}/kitchen"}))
    late = peers()  # subscribes after the publish: only a retained message reaches it
    late.subscribe(f"{base}/kitchen")
    message = late.next()
    assert (message.payload, message.retain) == (b"last value", True)
    sensor.invoke("create", b"", Metadata({"topic": f"{base}/kitchen"}))  # clears the retained


def test_publishing_to_a_wildcard_is_a_binding_error(output: Any, names: tuple[str, str]) -> None:
    with pytest.raises(BindingError, match="create"):
        output().invoke("create", b"x", Metadata({"topic": f"{names[0]}/#"}))


def test_an_unreachable_broker_is_a_binding_error(output: Any) -> None:
    with pytest.raises(BindingError):
        output(url="tcp://127.0.0.1:1").invoke("create", b"x", Metadata())


def test_input_delivers_payload_and_the_actual_topic(
    settings: Any, peers: Callable[..., Peer], names: tuple[str, str], listen: Any
) -> None:
    base, consumer = names
    _session_for_listener(peers, consumer, f"{base}/#")
    peers().publish(f"{base}/room/1", b'{"t": 21.5}')
    (event,) = listen(Mqtt3Input("sensors", settings())).wait_for(1)
    assert event.name == "sensors"
    assert event.data == b'{"t": 21.5}'
    assert dict(event.metadata) == {"topic": f"{base}/room/1"}


def test_output_to_input_round_trip(
    settings: Any, output: Any, peers: Callable[..., Peer], names: tuple[str, str], listen: Any
) -> None:
    base, consumer = names
    _session_for_listener(peers, consumer, f"{base}/#")
    output(topic=f"{base}/out").invoke("create", b"ping", Metadata())
    (event,) = listen(Mqtt3Input("sensors", settings())).wait_for(1)
    assert (event.data, event.metadata["topic"]) == (b"ping", f"{base}/out")


def test_a_failed_message_is_redelivered_by_the_broker_not_lost(
    settings: Any, peers: Callable[..., Peer], names: tuple[str, str], listen: Any
) -> None:
    base, consumer = names
    _session_for_listener(peers, consumer, f"{base}/#")
    publisher = peers()
    publisher.publish(f"{base}/a", b"first")
    publisher.publish(f"{base}/a", b"second")
    processed: list[bytes] = []

    def fails_once(event: BindingEvent) -> None:
        if event.data == b"first" and b"first" not in seen:
            seen.add(b"first")
            raise RuntimeError("handler failed")
        processed.append(event.data)

    seen: set[bytes] = set()
    listener: Listener = listen(Mqtt3Input("sensors", settings()), fails_once)
    deadline = time.monotonic() + 20
    while sorted(processed) != [b"first", b"second"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(processed) == [b"first", b"second"]
    assert listener.failures == 1
    listener.stop.set()
    time.sleep(1.5)  # the listener disconnects
    # Both were acknowledged: the persistent session has nothing left to send.
    leftover = peers(f"{consumer}-consumer", clean_session=False)
    with pytest.raises(queue.Empty):
        leftover.next(timeout=1.5)


def test_back_off_max_retries_retries_the_handler_in_place(
    settings: Any, peers: Callable[..., Peer], names: tuple[str, str], listen: Any
) -> None:
    base, consumer = names
    _session_for_listener(peers, consumer, f"{base}/#")
    peers().publish(f"{base}/a", b"retry me")
    calls: list[float] = []

    def fails_once(event: BindingEvent) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("handler failed")

    listener = listen(Mqtt3Input("sensors", settings(backOffMaxRetries="1")), fails_once)
    listener.wait_for(2, timeout=15)
    assert calls[1] - calls[0] >= 4.5  # Dapr's constant 5 s backoff, same connection


def test_metadata_follows_dapr_names() -> None:
    model = binding.metadata
    parsed = model.model_validate(
        {"url": "mqtts://u:p@h:8883", "topic": "t", "consumerid": "c", "qos": "2"}
    )
    assert (parsed.retain, parsed.clean_session, parsed.back_off_max_retries) == (False, False, 0)
    with pytest.raises(ValueError, match="scheme"):
        model.model_validate({"url": "http://h", "topic": "t", "consumerID": "c"})
    assert binding.directions == frozenset({"input", "output"})


def test_a_url_given_by_reference_is_checked_where_it_resolves() -> None:
    """A build cannot resolve a secretKeyRef or envRef: it checks the url only once the
    reference is resolved (`validate`, the function), and builds meanwhile."""
    parsed = binding.metadata.model_validate({"url": REFERENCE, "topic": "t", "consumerID": "c"})
    assert parsed.url.get_secret_value() == REFERENCE


def test_an_app_reads_a_bindings_mqtt_component_and_writes_to_redis(
    tmp_path: Any,
    mqtt_url: str,
    redis_address: str,
    names: tuple[str, str],
    peers: Callable[..., Peer],
    listen: Any,
) -> None:
    """The user's path: Dapr component files (type `bindings.mqtt`, Dapr's alias), an App
    handler, and an output binding called from it."""
    base, consumer = names
    (tmp_path / "bindings.yaml").write_text(
        f"""\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: sensors}}
spec:
  type: bindings.mqtt
  version: v1
  metadata:
  - {{name: url, value: "{mqtt_url}"}}
  - {{name: topic, value: "{base}/#"}}
  - {{name: consumerID, value: "{consumer}"}}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: cache}}
spec:
  type: bindings.redis
  version: v1
  metadata:
  - {{name: redisHost, value: "{redis_address}"}}
""",
        encoding="utf-8",
    )
    runtime = Runtime(load_components(tmp_path))
    app = App()

    @app.binding("sensors")
    def on_reading(event: BindingEvent) -> None:
        key = f"{consumer}:{event.metadata['topic']}"
        app.invoke_binding("cache", "create", data=event.data, metadata={"key": key})

    app.attach(runtime)
    try:
        _session_for_listener(peers, consumer, f"{base}/#")
        peers().publish(f"{base}/hall", b"19.5")
        listen(runtime.input("sensors"), app.handle).wait_for(1)
        stored = app.invoke_binding("cache", "get", metadata={"key": f"{consumer}:{base}/hall"})
        assert stored.data == b"19.5"
    finally:
        app.invoke_binding("cache", "delete", metadata={"key": f"{consumer}:{base}/hall"})
        runtime.close()


def test_tls_with_ca_and_client_certificate_both_directions(
    mqtt_tls_url: str, names: tuple[str, str], closing: Any, listen: Any, certificates: Any
) -> None:
    base, consumer = names
    secure = Mqtt3Metadata.model_validate(
        {
            "url": mqtt_tls_url.replace("ssl://", "mqtts://"),  # Dapr's alias for ssl://
            "topic": f"{base}/#",
            "consumerID": consumer,
            "cleanSession": "true",  # this broker keeps no sessions; subscribe before publish
            "caCert": certificates.pem("ca.pem"),
            "clientCert": certificates.pem("client.pem"),
            "clientKey": certificates.pem("client.key"),
        }
    )
    listener = listen(Mqtt3Input("sensors", secure))
    sender = closing(Mqtt3Output("sensors", secure))
    deadline = time.monotonic() + 10
    while not listener.events and time.monotonic() < deadline:  # until subscribed
        sender.invoke("create", b"secret reading", Metadata({"topic": f"{base}/tls"}))
        time.sleep(0.3)
    assert listener.events[0].data == b"secret reading"
    assert listener.events[0].metadata["topic"] == f"{base}/tls"
    anonymous = closing(
        Mqtt3Output("sensors", secure.model_copy(update={"client_cert": None, "client_key": None}))
    )
    with pytest.raises(BindingError):
        anonymous.invoke("create", b"x", Metadata())


def test_credentials_in_the_url_are_sent_url_decoded(
    mqtt_password_url: str, names: tuple[str, str], closing: Any
) -> None:
    base, consumer = names
    host = mqtt_password_url.removeprefix("tcp://")

    def sender(credentials: str) -> Mqtt3Output:
        metadata = Mqtt3Metadata.model_validate(
            {"url": f"mqtt://{credentials}@{host}", "topic": f"{base}/t", "consumerID": consumer}
        )
        return closing(Mqtt3Output("sensors", metadata))

    sender("sensor:p%40ss%3Aw%2Frd").invoke("create", b"allowed", Metadata())
    with pytest.raises(BindingError, match="did not accept"):
        sender("sensor:wrong").invoke("create", b"refused", Metadata())
