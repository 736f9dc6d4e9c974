"""`bindings.azure.storagequeues`: Azure Queue Storage, input and output.

Message encoding: Dapr writes the message text as given (base64 only with `encodeBase64`) and
reads it as is (decoded only with `decodeBase64`). The Functions host, by default, expects
base64 and decodes it before the function runs; the Azure build therefore sets host.json
`extensions.queues.messageEncoding` to `none`, so the host hands over the text exactly as this
binding (or a Dapr sidecar) wrote it. The same message then gives the same `data` through the
local listener, a Dapr sidecar and Azure Functions, and `decodeBase64`/`encodeBase64` keep
their Dapr meaning on every target.

The input listener receives one message at a time, hidden for `visibilityTimeout`, and
deletes it once the handler returned; when the queue is empty it looks again after
`pollingInterval`. A failed message comes back after a back-off that grows with its
`dequeueCount` (`bindings._polling`). Both create the queue if it is missing, as Dapr does:
the listener before its first receive, the output when a send first finds it missing
(`create_if_missing`), so a function's cold start makes no call for a queue that exists.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings._polling import QueueSource
from portabind.bindings.azure._storage import (
    ACCOUNT_NAME_ALIASES,
    ENDPOINT_ALIASES,
    StorageMetadata,
    azure_errors,
    create_if_missing,
    emulator,
    service_client,
)
from portabind.errors import BindingError, UserError
from portabind.events import BindingEvent, BindingResponse, Metadata, rfc3339, unquote
from portabind.metadata import (
    BeforeValidator,
    Duration,
    Truthy,
    field_validator,
    parse_duration,
    request_ttl,
    setting,
)

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Sequence

    from azure.storage.queue import QueueClient, QueueMessage

DEFAULT_TTL = timedelta(minutes=10)
#: Azure's error code for a queue that does not exist.
QUEUE_MISSING = "QueueNotFound"


def _component_ttl(value: Any) -> timedelta:
    """The component's `ttlInSeconds`/`ttl`, read by Dapr with the same rules as a request's."""
    if isinstance(value, timedelta):
        return value
    try:
        return request_ttl({"ttl": str(value)}) or DEFAULT_TTL
    except UserError as error:
        raise ValueError(error.message) from None


Ttl = Annotated[timedelta, BeforeValidator(_component_ttl)]


class StorageQueuesMetadata(StorageMetadata):
    binding_type = "bindings.azure.storagequeues"
    # Dapr decodes queueEndpoint, then replaces it with the first storage endpoint key given,
    # and reads ttl before ttlInSeconds (components-contrib
    # `bindings/azure/storagequeues/storagequeues.go`, `metadata.TryGetTTL`).
    lookup_order = {
        "queueEndpoint": ("endpoint", *ENDPOINT_ALIASES, "queueEndpoint"),
        "ttlInSeconds": ("ttl", "ttlInSeconds"),
    }

    account_name: str = setting("accountName", aliases=ACCOUNT_NAME_ALIASES)
    queue_name: str = setting("queueName", aliases=("queue", "storageAccountQueue"))
    # Dapr's canonical name here is queueEndpoint; `endpoint` is one of its aliases.
    endpoint: str | None = setting("queueEndpoint", None, aliases=("endpoint", *ENDPOINT_ALIASES))
    ttl: Ttl = setting("ttlInSeconds", DEFAULT_TTL, aliases=("ttl",))
    polling_interval: Duration = setting("pollingInterval", timedelta(seconds=10))
    visibility_timeout: Duration = setting("visibilityTimeout", timedelta(seconds=30))
    initial_visibility_delay: Duration = setting("initialVisibilityDelay", timedelta(0))
    decode_base64: Truthy = setting("decodeBase64", False)
    encode_base64: Truthy = setting("encodeBase64", False)

    @field_validator("polling_interval")
    @classmethod
    def _polling_floor(cls, value: timedelta) -> timedelta:
        if value < timedelta(milliseconds=100):
            raise ValueError("pollingInterval must be at least 100ms")
        return value


def queue_client(metadata: StorageQueuesMetadata) -> QueueClient:
    from azure.storage.queue import QueueServiceClient

    service = service_client(QueueServiceClient, metadata, "queue")
    return service.get_queue_client(metadata.queue_name)


def create_queue(metadata: StorageQueuesMetadata, *, queue: QueueClient | None = None) -> None:
    """Create the queue if it does not exist (Dapr does this at Init; the output does it when
    a send first finds it missing), through `queue` when the caller has a client already."""
    from azure.core.exceptions import ResourceExistsError

    with contextlib.suppress(ResourceExistsError):
        (queue or queue_client(metadata)).create_queue()


_EVENT_KEYS = (
    "messageID",
    "popReceipt",
    "insertionTime",
    "expirationTime",
    "nextVisibleTime",
    "dequeueCount",
)


def _text(value: Any) -> str:
    # Go's RFC 3339 layout, which Dapr uses for these times, has whole seconds.
    if isinstance(value, datetime):
        return rfc3339(value.replace(microsecond=0))
    return str(value)


def queue_event(name: str, message: Any, *, decode_base64: bool = False) -> BindingEvent:
    """The normalized event of one queue message, given as the azure-storage-queue SDK's
    `QueueMessage` (the local listener) or as the `azure.functions.QueueMessage` the
    Functions host hands the function. `data` is the message text as the producer wrote
    it, base64-decoded only when the component sets `decodeBase64`."""
    if hasattr(message, "get_body"):  # azure.functions.QueueMessage
        body: bytes = message.get_body()
        values = (
            message.id,
            message.pop_receipt,
            getattr(message, "insertion_time", None),
            getattr(message, "expiration_time", None),
            getattr(message, "time_next_visible", None),
            getattr(message, "dequeue_count", None),
        )
    else:  # azure.storage.queue.QueueMessage
        content = message.content
        body = content.encode("utf-8") if isinstance(content, str) else bytes(content or b"")
        values = (
            message.id,
            message.pop_receipt,
            message.inserted_on,
            message.expires_on,
            message.next_visible_on,
            message.dequeue_count,
        )
    if decode_base64:
        try:
            body = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                f"{name}: message {values[0]} is not valid base64, and decodeBase64 is set"
            ) from None
    pairs = zip(_EVENT_KEYS, values, strict=True)
    metadata = {key: _text(value) for key, value in pairs if value is not None}
    return BindingEvent(name, body, Metadata(metadata))


class StorageQueuesOutput(OutputBinding[StorageQueuesMetadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: StorageQueuesMetadata) -> None:
        super().__init__(name, metadata)
        self._queue = queue_client(metadata)
        self._create_queue = functools.partial(create_queue, metadata, queue=self._queue)

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        text = unquote(data)
        if self.metadata.encode_base64:
            text = base64.b64encode(text)
        try:
            content = text.decode("utf-8")
        except UnicodeDecodeError:
            raise BindingError(
                self.name,
                "create",
                "a queue message is text and the data is not UTF-8; set encodeBase64: true "
                "in the component to send binary data",
            ) from None
        delay = self.metadata.initial_visibility_delay
        try:
            ttl = request_ttl(metadata) or self.metadata.ttl
            if metadata.get("initialVisibilityDelay"):
                delay = parse_duration(metadata["initialVisibilityDelay"])
        except UserError as error:
            raise BindingError(self.name, "create", error.message) from None
        except ValueError as error:
            raise BindingError(self.name, "create", str(error)) from None
        with azure_errors(self.name, "create"):
            create_if_missing(
                QUEUE_MISSING,
                self._create_queue,
                lambda: self._queue.send_message(
                    content,
                    visibility_timeout=int(delay.total_seconds()) or None,
                    time_to_live=int(ttl.total_seconds()),
                ),
            )
        return BindingResponse()

    def close(self) -> None:
        self._queue.close()


class StorageQueue(QueueSource["QueueMessage"]):
    """The component's queue, created if missing on the first receive (and again after that
    failed). Azure Storage Queues have no long poll: an empty receive answers at once, and
    the listener looks again after `pollingInterval`."""

    def __init__(self, name: str, metadata: StorageQueuesMetadata) -> None:
        from azure.core.exceptions import AzureError

        super().__init__(name, (AzureError,))
        self.metadata = metadata
        self.idle_seconds = metadata.polling_interval.total_seconds()
        self.queue = queue_client(metadata)
        self._created = False

    def receive(self) -> list[QueueMessage]:
        if not self._created:
            create_queue(self.metadata)
            self._created = True
        hidden = int(self.metadata.visibility_timeout.total_seconds())
        message = self.queue.receive_message(visibility_timeout=hidden)
        return [] if message is None else [message]

    def events(self, message: QueueMessage) -> list[BindingEvent]:
        return [queue_event(self.name, message, decode_base64=self.metadata.decode_base64)]

    def ack(self, messages: Sequence[QueueMessage]) -> None:
        for message in messages:
            self.queue.delete_message(message)

    def release(self, messages: Sequence[QueueMessage], delay: int) -> None:
        for message in messages:
            self.queue.update_message(message, visibility_timeout=delay)

    def receive_count(self, message: QueueMessage) -> int:
        return message.dequeue_count or 1

    def message_id(self, message: QueueMessage) -> str:
        return str(message.id)

    def close(self) -> None:
        self.queue.close()


class StorageQueuesInput(InputBinding[StorageQueuesMetadata]):
    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        StorageQueue(self.name, self.metadata).poll(deliver, stop)


binding = Binding(
    metadata=StorageQueuesMetadata,
    output=StorageQueuesOutput,
    input=StorageQueuesInput,
    emulator="azurite",
    emulate=emulator("queue", "queueEndpoint"),
    provision=create_queue,
    requires=("azure-storage-queue", "azure-identity"),
)
