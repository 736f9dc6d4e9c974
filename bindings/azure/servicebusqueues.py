"""`bindings.azure.servicebusqueues` (alias `bindings.azure.servicebus.queues`): an Azure
Service Bus queue, input and output, on azure-servicebus (Dapr's: components-contrib
`bindings/azure/servicebusqueues/servicebusqueues.go` over `common/component/azure/servicebus/`).

Output `create` sends the payload as the message body. Request metadata is mapped as Dapr maps
it (`message.go`): `MessageId` (or `id`), `CorrelationId` (or `correlationID`), `SessionId`,
`Label` (the subject), `ReplyTo`, `To`, `PartitionKey`, `ContentType`,
`ScheduledEnqueueTimeUtc` (RFC 1123 or RFC 3339), `ttlInSeconds`/`ttl` (the time to live);
every other key with a value, `ReplyToSessionId` included, becomes an application property.
Empty values are left out, but for `SessionId`. Sends are retried `publishMaxRetries` times,
from `publishInitialRetryIntervalInMs`, by the SDK's exponential retry.

The input receives in peek-lock mode, `maxActiveMessages` at a time, and runs the handler on up
to `maxConcurrentHandlers` of them at once (0: all). A message is completed once its handler
returned and abandoned when it raised (or ran past `handlerTimeoutInSec`), so Service Bus
delivers it again, until the queue's max delivery count moves it to the dead-letter
sub-queue. While a handler runs, its message's lock is renewed every `lockRenewalInSec`.
After a failure the listener waits `1/maxRetriableErrorsPerSec` s before the next message;
when the connection fails, it reconnects after a back-off from `minConnectionRecoveryInSec` to
`maxConnectionRecoveryInSec`. Dapr's queue binding receives no sessions, and neither does
this one: a session-enabled queue cannot be read here.

The event (`message_event`, the same from the SDK and from the Functions host): `data` is the
body; metadata has the application properties under their own names (unescaped: Dapr
URL-escapes them only to carry them as HTTP headers; values that are not text as
`metadata_value` renders them), then Dapr's `id`, `correlationID` and `label`, then what Azure
Functions' Service Bus trigger calls the rest: `DeliveryCount` (1 on the first delivery),
`EnqueuedTimeUtc`, `ExpiresAtUtc`, `LockedUntil`, `LockToken`, `SequenceNumber`,
`ContentType`, `ReplyTo`, `To`, `SessionId`, `PartitionKey`, `ReplyToSessionId`,
`ScheduledEnqueueTimeUtc`, `DeadLetterSource`, when the message has them.

The queue settings (`lockDurationInSec`, `maxDeliveryCount`, `defaultMessageTimeToLiveInSec`,
`autoDeleteOnIdleInSec`) apply where the queue is created: Dapr creates a missing queue with
them through the management API unless `disableEntityManagement`; portabind does not manage
Azure entities (create the queue with the deployment), and `portabind run --emulate` creates
the queue in its AMQP broker with them.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Annotated, Any

from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings.azure._messaging import (
    EMULATOR,
    ConnectionStringValue,
    QueueName,
    emulated,
    namespace_host,
    utc_time,
)
from portabind.bindings.azure._storage import EntraMetadata, azure_errors
from portabind.errors import BindingError, UserError
from portabind.events import BindingEvent, BindingResponse, Metadata, metadata_value
from portabind.metadata import Bounds, Duration, Truthy, model_validator, request_ttl, setting

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSender

log = logging.getLogger(__name__)

#: How long one receive waits for a first message: also the most a stop waits.
RECEIVE_WAIT_SECONDS = 0.5

Seconds = Annotated[int, Bounds(ge=0)]


class ServiceBusQueuesMetadata(EntraMetadata):
    binding_type = "bindings.azure.servicebusqueues"
    deprecated = {"publishInitialRetryInternalInMs": "publishInitialRetryIntervalInMs"}
    no_effect = {
        "disableEntityManagement": "portabind creates no Azure queue (and --emulate always "
        "creates the queue in its broker)",
        "autoDeleteOnIdleInSec": "portabind creates no Azure queue, and the local broker "
        "deletes none",
    }
    # Dapr reads the old spelling first (`ParseMetadata`), and `ttl` before `ttlInSeconds`.
    lookup_order = {
        "publishInitialRetryIntervalInMs": (
            "publishInitialRetryInternalInMs",
            "publishInitialRetryIntervalInMs",
        ),
        "defaultMessageTimeToLiveInSec": ("defaultMessageTimeToLiveInSec", "ttl", "ttlInSeconds"),
    }

    connection_string: ConnectionStringValue = setting(
        "connectionString", None, secret=True, description="or namespaceName for Entra ID"
    )
    namespace_name: str | None = setting(
        "namespaceName", None, description="the namespace's host, to sign in with Entra ID"
    )
    queue_name: QueueName = setting("queueName")
    timeout_in_sec: Annotated[int, Bounds(ge=1)] = setting(
        "timeoutInSec", 60, description="network calls"
    )
    handler_timeout_in_sec: Seconds = setting(
        "handlerTimeoutInSec", 0, description="0: none; past it the message is abandoned"
    )
    lock_renewal_in_sec: Seconds = setting(
        "lockRenewalInSec", 20, description="renew a handled message's lock this often; 0: never"
    )
    max_active_messages: Annotated[int, Bounds(ge=1)] = setting("maxActiveMessages", 1)
    max_concurrent_handlers: Seconds = setting(
        "maxConcurrentHandlers", 1, description="0: as many as maxActiveMessages"
    )
    max_retriable_errors_per_sec: Seconds = setting("maxRetriableErrorsPerSec", 10)
    min_connection_recovery_in_sec: Seconds = setting("minConnectionRecoveryInSec", 2)
    max_connection_recovery_in_sec: Seconds = setting("maxConnectionRecoveryInSec", 300)
    disable_entity_management: Truthy = setting(
        "disableEntityManagement", False, description="no effect: portabind creates no queue"
    )
    lock_duration_in_sec: Annotated[int, Bounds(ge=1)] | None = setting(
        "lockDurationInSec", None, description="for a queue created here"
    )
    max_delivery_count: Annotated[int, Bounds(ge=1)] | None = setting(
        "maxDeliveryCount", None, description="for a queue created here"
    )
    auto_delete_on_idle_in_sec: Annotated[int, Bounds(ge=300)] | None = setting(
        "autoDeleteOnIdleInSec", None, description="for a queue created here"
    )
    default_message_ttl: Duration | None = setting(
        "defaultMessageTimeToLiveInSec",
        None,
        aliases=("ttl", "ttlInSeconds"),
        description="for a queue created here",
    )
    publish_max_retries: Seconds = setting("publishMaxRetries", 5)
    publish_initial_retry_interval_in_ms: Seconds = setting(
        "publishInitialRetryIntervalInMs", 500, aliases=("publishInitialRetryInternalInMs",)
    )

    @model_validator(mode="after")
    def _one_address(self) -> ServiceBusQueuesMetadata:
        if self.connection_string and self.namespace_name:
            raise ValueError("connectionString and namespaceName cannot both be specified")
        if not (self.connection_string or self.namespace_name):
            raise ValueError("either connectionString or namespaceName (for Entra ID) is required")
        if self.default_message_ttl is not None and self.default_message_ttl <= timedelta(0):
            raise ValueError("defaultMessageTimeToLiveInSec must be greater than 0")
        return self

    def namespace(self) -> str | None:
        """The namespace's host when the component names one (Entra ID)."""
        return namespace_host(self.namespace_name) if self.namespace_name else None


def client(metadata: ServiceBusQueuesMetadata) -> ServiceBusClient:
    """A client of the namespace, from the connection string or with Entra ID; its sends
    retried as `publishMaxRetries` and `publishInitialRetryIntervalInMs` say."""
    from azure.servicebus import ServiceBusClient

    retry_total = metadata.publish_max_retries
    retry_backoff_factor = metadata.publish_initial_retry_interval_in_ms / 1000
    text = metadata.secret("connection_string")
    if text:
        return ServiceBusClient.from_connection_string(
            text, retry_total=retry_total, retry_backoff_factor=retry_backoff_factor
        )
    return ServiceBusClient(
        metadata.namespace() or "",
        metadata.entra_credential(),
        retry_total=retry_total,
        retry_backoff_factor=retry_backoff_factor,
    )


# --- output --------------------------------------------------------------------------------

#: Request metadata keys (any case) → the message field they set.
_FIELDS = {
    "messageid": "message_id",
    "id": "message_id",
    "correlationid": "correlation_id",
    "sessionid": "session_id",
    "label": "subject",
    "replyto": "reply_to",
    "to": "to",
    "partitionkey": "partition_key",
    "contenttype": "content_type",
}
_TTL_KEYS = frozenset({"ttl", "ttlinseconds"})


def _scheduled(text: str) -> datetime:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            "invalid time format for ScheduledEnqueueTimeUtc; expected HTTP time format or RFC3339"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def message_fields(metadata: Mapping[str, str]) -> dict[str, Any]:
    """The `ServiceBusMessage` keywords for `create`'s request metadata, as Dapr maps it."""
    fields: dict[str, Any] = {}
    properties: dict[str, str] = {}
    for key, value in metadata.items():
        lowered = key.lower()
        if not value and lowered != "sessionid":
            continue
        if lowered in _TTL_KEYS:
            fields["time_to_live"] = request_ttl(metadata)
        elif lowered in _FIELDS:
            fields.setdefault(_FIELDS[lowered], value)
        elif lowered == "scheduledenqueuetimeutc":
            fields["scheduled_enqueue_time_utc"] = _scheduled(value)
        else:
            properties[key] = value
    session, partition = fields.get("session_id"), fields.get("partition_key")
    if session is not None and partition is not None and session != partition:
        raise ValueError(
            f"session id {session} and partition key {partition} should be equal when both present"
        )
    if properties:
        fields["application_properties"] = properties
    return fields


class ServiceBusQueuesOutput(OutputBinding[ServiceBusQueuesMetadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: ServiceBusQueuesMetadata) -> None:
        super().__init__(name, metadata)
        self._lock = threading.Lock()
        self._client: ServiceBusClient | None = None
        self._sender: ServiceBusSender | None = None

    def _opened(self) -> ServiceBusSender:
        with self._lock:
            if self._sender is None:
                self._client = client(self.metadata)
                self._sender = self._client.get_queue_sender(self.metadata.queue_name)
            return self._sender

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        from azure.servicebus import ServiceBusMessage

        try:
            message = ServiceBusMessage(data, **message_fields(metadata))
        except (UserError, ValueError) as error:
            detail = error.message if isinstance(error, UserError) else str(error)
            raise BindingError(self.name, "create", detail) from None
        self._send(message)
        return BindingResponse()

    def _send(self, message: ServiceBusMessage) -> None:
        with azure_errors(self.name, "create"):
            self._opened().send_messages(message, timeout=self.metadata.timeout_in_sec)

    def close(self) -> None:
        with self._lock:
            sender, service = self._sender, self._client
            self._sender = self._client = None
        if sender is not None:
            sender.close()
        if service is not None:
            service.close()


# --- the event -----------------------------------------------------------------------------

#: Metadata key → the attribute of the SDK's received message, then of Azure Functions'
#: `ServiceBusMessage` where it differs; Dapr's keys first, then Azure Functions' names.
_EVENT_FIELDS = (
    ("id", "message_id", "message_id"),
    ("correlationID", "correlation_id", "correlation_id"),
    ("label", "subject", "subject"),
    ("EnqueuedTimeUtc", "enqueued_time_utc", "enqueued_time_utc"),
    ("ExpiresAtUtc", "expires_at_utc", "expires_at_utc"),
    ("LockedUntil", "locked_until_utc", "locked_until"),
    ("LockToken", "lock_token", "lock_token"),
    ("SequenceNumber", "sequence_number", "sequence_number"),
    ("ContentType", "content_type", "content_type"),
    ("ReplyTo", "reply_to", "reply_to"),
    ("To", "to", "to"),
    ("SessionId", "session_id", "session_id"),
    ("PartitionKey", "partition_key", "partition_key"),
    ("ReplyToSessionId", "reply_to_session_id", "reply_to_session_id"),
    ("ScheduledEnqueueTimeUtc", "scheduled_enqueue_time_utc", "scheduled_enqueue_time_utc"),
    ("DeadLetterSource", "dead_letter_source", "dead_letter_source"),
)


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        return utc_time(value)
    return metadata_value(value)


def _body(message: Any) -> bytes:
    if hasattr(message, "get_body"):  # azure.functions.ServiceBusMessage
        return bytes(message.get_body())
    body = message.body  # the SDK's: its data sections, or an AMQP value
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return b"".join(bytes(section) for section in body)


def message_event(name: str, message: Any) -> BindingEvent:
    """The `BindingEvent` of one received message, given as azure-servicebus's
    `ServiceBusReceivedMessage` (the local listener) or azure-functions'
    `ServiceBusMessage` (the Functions host): see the module docstring for its metadata."""
    functions = hasattr(message, "get_body")
    values = {
        _text(key): _text(value)
        for key, value in (message.application_properties or {}).items()
        if value is not None
    }
    for key, sdk, host in _EVENT_FIELDS:
        value = getattr(message, host if functions else sdk, None)
        if value is not None and value != "":
            values[key] = _text(value)
    count = message.delivery_count
    if count is not None:
        # The AMQP header counts earlier deliveries; Functions (.NET) counts this one too.
        values["DeliveryCount"] = str(count if functions else count + 1)
    if functions and not values.get("label") and getattr(message, "label", None):
        values["label"] = str(message.label)
    return BindingEvent(name, _body(message), Metadata(values))


# --- input ---------------------------------------------------------------------------------


@dataclass
class _Running:
    message: Any
    started: float
    renewed: float


class _Handling:
    """The messages of one receive, handed to the handler on a pool and settled on the
    listener's thread (the SDK's receiver is not shared between threads)."""

    def __init__(self, name: str, metadata: ServiceBusQueuesMetadata, receiver: Any) -> None:
        self.name = name
        self.metadata = metadata
        self.receiver = receiver

    def run(
        self,
        messages: list[Any],
        deliver: Callable[[BindingEvent], None],
        pool: futures.ThreadPoolExecutor,
    ) -> int:
        """Deliver and settle `messages`; returns how many failed."""
        running: dict[futures.Future[None], _Running] = {}
        waiting = list(messages)
        failed = 0
        limit = self.metadata.max_concurrent_handlers or len(messages)
        while waiting or running:
            while waiting and len(running) < limit:
                message = waiting.pop(0)
                future = pool.submit(deliver, message_event(self.name, message))
                running[future] = _Running(message, time.monotonic(), time.monotonic())
            done, _ = futures.wait(
                running, timeout=self._next_check(running), return_when="FIRST_COMPLETED"
            )
            for future in done:
                failed += not self._settle(running.pop(future).message, future.exception())
            now = time.monotonic()
            for future, handled in list(running.items()):
                timeout = self.metadata.handler_timeout_in_sec
                if timeout and now - handled.started >= timeout:
                    del running[future]  # left to finish; its outcome no longer counts
                    error = TimeoutError(f"the handler ran past handlerTimeoutInSec ({timeout} s)")
                    failed += not self._settle(handled.message, error)
                elif self._renew_every and now - handled.renewed >= self._renew_every:
                    handled.renewed = now
                    self._renew(handled.message)
        return failed

    @property
    def _renew_every(self) -> int:
        return self.metadata.lock_renewal_in_sec

    def _next_check(self, running: dict[futures.Future[None], _Running]) -> float | None:
        """Seconds until a lock is due for renewal or a handler times out; None: neither."""
        due = []
        for handled in running.values():
            if self._renew_every:
                due.append(handled.renewed + self._renew_every)
            if self.metadata.handler_timeout_in_sec:
                due.append(handled.started + self.metadata.handler_timeout_in_sec)
        return max(min(due) - time.monotonic(), 0.0) if due else None

    def _settle(self, message: Any, error: BaseException | None) -> bool:
        """Complete a handled message, abandon a failed one; True when it was handled."""
        from azure.servicebus.exceptions import ServiceBusError

        try:
            if error is None:
                self.receiver.complete_message(message)
                return True
            log.warning(
                "%s: message %s failed (%s); abandoned for redelivery",
                self.name,
                message.message_id,
                error,
            )
            self.receiver.abandon_message(message)
        except ServiceBusError as failure:
            # The lock is lost (it expired, the link closed): Service Bus delivers the message
            # again by itself.
            log.warning(
                "%s: settling message %s failed: %s", self.name, message.message_id, failure
            )
        return error is None

    def _renew(self, message: Any) -> None:
        from azure.servicebus.exceptions import ServiceBusError

        try:
            self.receiver.renew_message_lock(message, timeout=self.metadata.timeout_in_sec)
        except ServiceBusError as error:
            log.warning(
                "%s: renewing the lock of message %s failed: %s",
                self.name,
                message.message_id,
                error,
            )


class ServiceBusQueuesInput(InputBinding[ServiceBusQueuesMetadata]):
    _received = False

    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        from azure.servicebus.exceptions import ServiceBusError

        workers = self.metadata.max_concurrent_handlers or self.metadata.max_active_messages
        first = float(self.metadata.min_connection_recovery_in_sec)
        delay = first
        with futures.ThreadPoolExecutor(workers, thread_name_prefix=self.name) as pool:
            while not stop.is_set():
                self._received = False
                try:
                    self._receive(deliver, stop, pool)
                except ServiceBusError as error:
                    if self._received:  # it had reconnected: the back-off starts over (Dapr)
                        delay = first
                    wait = random.uniform(delay / 2, delay) if delay else 0.0
                    log.warning(
                        "%s: receiving from queue %s failed (%s); reconnecting in %.1f s",
                        self.name,
                        self.metadata.queue_name,
                        error,
                        wait,
                    )
                    stop.wait(wait)
                    delay = min(max(delay, 1.0) * 2, self.metadata.max_connection_recovery_in_sec)

    def _receive(
        self,
        deliver: Callable[[BindingEvent], None],
        stop: threading.Event,
        pool: futures.ThreadPoolExecutor,
    ) -> None:
        """Receive and handle until `stop`; `_received` is set once a receive worked."""
        rate = self.metadata.max_retriable_errors_per_sec
        with (
            client(self.metadata) as service,
            service.get_queue_receiver(self.metadata.queue_name) as receiver,
        ):
            handling = _Handling(self.name, self.metadata, receiver)
            while not stop.is_set():
                messages = receiver.receive_messages(
                    max_message_count=self.metadata.max_active_messages,
                    max_wait_time=RECEIVE_WAIT_SECONDS,
                )
                self._received = True
                # After failures, Dapr slows down to `maxRetriableErrorsPerSec`.
                if messages and handling.run(messages, deliver, pool) and rate:
                    stop.wait(1 / rate)


binding = Binding(
    metadata=ServiceBusQueuesMetadata,
    output=ServiceBusQueuesOutput,
    input=ServiceBusQueuesInput,
    emulator=EMULATOR,
    emulate=emulated("namespaceName"),
    requires=("azure-servicebus", "azure-identity"),
)
