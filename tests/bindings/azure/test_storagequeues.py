"""bindings.azure.storagequeues against Azurite: what a producer sends is what a handler gets,
on the local listener and through the Functions host's QueueMessage alike."""

from __future__ import annotations

import base64
import importlib.util
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError

from portabind.bindings.azure import storagequeues
from portabind.bindings.azure.storagequeues import (
    StorageQueuesInput,
    StorageQueuesMetadata,
    StorageQueuesOutput,
    queue_event,
)
from portabind.errors import BindingError, UserError
from portabind.events import BindingEvent, Metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from azure.storage.queue import QueueClient

    from portabind.adapters.local.emulators.azure import AzuriteEmulator

EVENT_KEYS = {
    "messageID",
    "popReceipt",
    "insertionTime",
    "expirationTime",
    "nextVisibleTime",
    "dequeueCount",
}


def service_endpoint(azurite: AzuriteEmulator) -> str:
    # What the local runner passes: the endpoint without the account path.
    return azurite.queue_endpoint.removesuffix(f"/{azurite.account_name}")


def make_metadata(azurite: AzuriteEmulator, queue: str, **values: str) -> StorageQueuesMetadata:
    assert storagequeues.binding.emulate is not None
    emulated = storagequeues.binding.emulate({"azurite.queue": service_endpoint(azurite)})
    return StorageQueuesMetadata.model_validate({"queueName": queue, **emulated, **values})


@pytest.fixture
def queue_name(unique_name: Callable[..., str]) -> str:
    return unique_name("q")


@pytest.fixture
def raw_queue(azurite: AzuriteEmulator, queue_name: str) -> Iterator[QueueClient]:
    """The queue, seen through the plain SDK (no encoding policy: the text on the wire)."""
    from azure.storage.queue import QueueClient

    client = QueueClient.from_connection_string(azurite.connection_string, queue_name)
    yield client
    client.close()


def output(azurite: AzuriteEmulator, queue: str, **values: str) -> StorageQueuesOutput:
    return StorageQueuesOutput("orders", make_metadata(azurite, queue, **values))


def listen_until(
    listener: StorageQueuesInput,
    handler: Callable[[BindingEvent], None],
    done: Callable[[], bool],
    timeout: float = 20,
) -> None:
    stop = threading.Event()

    def deliver(event: BindingEvent) -> None:
        try:
            handler(event)
        finally:
            if done():
                stop.set()

    thread = threading.Thread(target=listener.listen, args=(deliver, stop), daemon=True)
    thread.start()
    thread.join(timeout)
    stop.set()
    thread.join(5)
    assert not thread.is_alive(), "the listener did not stop"


def test_emulate_points_at_azurite_service_endpoint(azurite: AzuriteEmulator) -> None:
    metadata = make_metadata(azurite, "orders")
    assert metadata.account_name == "devstoreaccount1"
    assert metadata.account_url("queue") == azurite.queue_endpoint


def test_dapr_aliases_and_defaults() -> None:
    metadata = StorageQueuesMetadata.model_validate(
        {"storageAccount": "acct", "storageAccessKey": "a2V5", "queue": "orders"}
    )
    assert metadata.account_name == "acct"
    assert metadata.secret("account_key") == "a2V5"
    assert metadata.queue_name == "orders"
    assert metadata.ttl == timedelta(minutes=10)
    assert metadata.visibility_timeout == timedelta(seconds=30)
    assert metadata.polling_interval == timedelta(seconds=10)
    assert metadata.account_url("queue") == "https://acct.queue.core.windows.net"
    china = StorageQueuesMetadata.model_validate(
        {"accountName": "acct", "queueName": "q", "azureCloud": "AzureChinaCloud"}
    )
    assert china.account_url("queue") == "https://acct.queue.core.chinacloudapi.cn"
    custom = StorageQueuesMetadata.model_validate(
        {"accountName": "acct", "queueName": "q", "queueEndpointUrl": "http://host:1/"}
    )
    assert custom.account_url("queue") == "http://host:1/acct"
    assert "accountKey" in StorageQueuesMetadata.secret_names()
    assert "azureClientSecret" in StorageQueuesMetadata.secret_names()


@pytest.mark.parametrize(
    ("field", "value"),
    [("pollingInterval", "50ms"), ("ttlInSeconds", "-1"), ("ttl", "soon")],
)
def test_invalid_settings_are_rejected(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        StorageQueuesMetadata.model_validate({"accountName": "a", "queueName": "q", field: value})


def test_without_key_entra_id_needs_azure_identity() -> None:
    metadata = StorageQueuesMetadata.model_validate({"accountName": "a", "queueName": "q"})
    if importlib.util.find_spec("azure.identity") is None:
        with pytest.raises(UserError, match="azure-identity"):
            metadata.credential()
    else:
        assert hasattr(metadata.credential(), "get_token")


def test_create_sends_text_as_given(
    azurite: AzuriteEmulator, queue_name: str, raw_queue: QueueClient
) -> None:
    client = output(azurite, queue_name)
    assert client.invoke("create", b'{"id": 1}', Metadata()).data is None
    client.invoke("create", b'"quoted text"', Metadata())  # Dapr's HTTP API JSON-quotes strings
    texts = [m.content for m in raw_queue.receive_messages(max_messages=2)]
    assert texts == ['{"id": 1}', "quoted text"]


def test_the_first_send_creates_the_queue(
    azurite: AzuriteEmulator, queue_name: str, raw_queue: QueueClient
) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    client = output(azurite, queue_name)
    with pytest.raises(ResourceNotFoundError):
        raw_queue.get_queue_properties()  # no call at start
    client.invoke("create", b"first", Metadata())
    assert [m.content for m in raw_queue.receive_messages()] == ["first"]


def test_create_encode_base64(
    azurite: AzuriteEmulator, queue_name: str, raw_queue: QueueClient
) -> None:
    output(azurite, queue_name, encodeBase64="true").invoke("create", b"\x00\xffbin", Metadata())
    (message,) = raw_queue.receive_messages()
    assert base64.b64decode(message.content) == b"\x00\xffbin"


def test_create_binary_without_encode_base64_fails_clearly(
    azurite: AzuriteEmulator, queue_name: str
) -> None:
    with pytest.raises(BindingError, match="encodeBase64"):
        output(azurite, queue_name).invoke("create", b"\xff\xfe", Metadata())


def test_ttl_component_default_and_per_request(
    azurite: AzuriteEmulator, queue_name: str, raw_queue: QueueClient
) -> None:
    client = output(azurite, queue_name, ttlInSeconds="120")
    client.invoke("create", b"component", Metadata())
    client.invoke("create", b"request", Metadata({"ttl": "1h"}))
    client.invoke("create", b"seconds", Metadata({"ttlInSeconds": "30"}))
    lifetimes = {m.content: m.expires_on - m.inserted_on for m in raw_queue.peek_messages(5)}
    assert lifetimes == {
        "component": timedelta(seconds=120),
        "request": timedelta(hours=1),
        "seconds": timedelta(seconds=30),
    }
    with pytest.raises(BindingError, match="greater than 0"):
        client.invoke("create", b"x", Metadata({"ttlInSeconds": "-5"}))


def test_initial_visibility_delay_hides_new_messages(
    azurite: AzuriteEmulator, queue_name: str, raw_queue: QueueClient
) -> None:
    output(azurite, queue_name, initialVisibilityDelay="1m").invoke("create", b"x", Metadata())
    output(azurite, queue_name).invoke("create", b"y", Metadata({"initialVisibilityDelay": "30s"}))
    assert raw_queue.peek_messages(5) == []
    assert raw_queue.get_queue_properties().approximate_message_count == 2


def test_listener_delivers_and_deletes(
    azurite: AzuriteEmulator, queue_name: str, raw_queue: QueueClient
) -> None:
    output(azurite, queue_name).invoke("create", b'{"id": 7}', Metadata())
    listener = StorageQueuesInput(
        "orders", make_metadata(azurite, queue_name, pollingInterval="100ms")
    )
    events: list[BindingEvent] = []
    listen_until(listener, events.append, lambda: len(events) >= 1)
    (event,) = events
    assert event.name == "orders"
    assert event.json() == {"id": 7}
    assert set(event.metadata) == EVENT_KEYS
    assert event.metadata["dequeueCount"] == "1"
    assert event.metadata["insertionTime"].endswith("Z")
    assert raw_queue.get_queue_properties().approximate_message_count == 0


def test_failed_delivery_is_redelivered_after_visibility_timeout(
    azurite: AzuriteEmulator, queue_name: str, raw_queue: QueueClient
) -> None:
    output(azurite, queue_name).invoke("create", b"retry me", Metadata())
    listener = StorageQueuesInput(
        "orders",
        make_metadata(azurite, queue_name, pollingInterval="100ms", visibilityTimeout="1s"),
    )
    attempts: list[BindingEvent] = []

    def handler(event: BindingEvent) -> None:
        attempts.append(event)
        if len(attempts) == 1:
            raise RuntimeError("handler failed")

    listen_until(listener, handler, lambda: len(attempts) >= 2)
    assert [a.metadata["dequeueCount"] for a in attempts] == ["1", "2"]
    assert attempts[0].metadata["messageID"] == attempts[1].metadata["messageID"]
    assert attempts[1].data == b"retry me"
    assert raw_queue.get_queue_properties().approximate_message_count == 0


def test_listener_decode_base64(azurite: AzuriteEmulator, queue_name: str) -> None:
    output(azurite, queue_name, encodeBase64="true").invoke("create", b"\x01\x02", Metadata())
    listener = StorageQueuesInput(
        "orders", make_metadata(azurite, queue_name, pollingInterval="100ms", decodeBase64="on")
    )
    events: list[BindingEvent] = []
    listen_until(listener, events.append, lambda: len(events) >= 1)
    assert events[0].data == b"\x01\x02"


def test_functions_message_normalizes_like_the_sdk_message(
    azurite: AzuriteEmulator, queue_name: str, raw_queue: QueueClient
) -> None:
    import azure.functions as func
    from azure.functions.queue import QueueMessage

    output(azurite, queue_name).invoke("create", b"aGVsbG8=", Metadata())
    (sdk_message,) = raw_queue.receive_messages()
    # What the Functions host hands over with messageEncoding "none": the same text and
    # system properties.
    host_message = QueueMessage(
        id=sdk_message.id,
        body=sdk_message.content,
        dequeue_count=sdk_message.dequeue_count,
        expiration_time=sdk_message.expires_on,
        insertion_time=sdk_message.inserted_on,
        time_next_visible=sdk_message.next_visible_on,
        pop_receipt=sdk_message.pop_receipt,
    )
    local = queue_event("orders", sdk_message)
    hosted = queue_event("orders", host_message)
    assert hosted == local
    assert local.data == b"aGVsbG8="  # looks like base64, passed through untouched
    assert set(local.metadata) == EVENT_KEYS
    assert queue_event("orders", host_message, decode_base64=True).data == b"hello"
    minimal: Any = func.QueueMessage(id="1", body=b"x", pop_receipt="p")
    assert dict(queue_event("orders", minimal).metadata) == {"messageID": "1", "popReceipt": "p"}
    with pytest.raises(ValueError, match="not valid base64"):
        queue_event("orders", func.QueueMessage(id="2", body=b"not base64!"), decode_base64=True)


def test_provision_creates_the_queue(azurite: AzuriteEmulator, queue_name: str) -> None:
    assert storagequeues.binding.provision is not None
    storagequeues.binding.provision(make_metadata(azurite, queue_name))
    storagequeues.binding.provision(make_metadata(azurite, queue_name))  # idempotent
    from azure.storage.queue import QueueServiceClient

    service = QueueServiceClient.from_connection_string(azurite.connection_string)
    assert queue_name in {q.name for q in service.list_queues(name_starts_with=queue_name)}
