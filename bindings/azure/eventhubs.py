"""`bindings.azure.eventhubs`: Azure Event Hubs, input and output, on azure-eventhub (Dapr's:
components-contrib `bindings/azure/eventhubs/eventhubs.go` over
`common/component/azure/eventhubs/`).

Output `create` sends one event with the payload as its body; request metadata
`partitionKey` picks its partition (events with one key stay in order), `contentType` sets its
content type.

The input is a consumer of `consumerID` (alias `consumerGroup`) that shares the hub's
partitions with the other consumers of that group through a checkpoint store in a blob
container (`storageContainerName`, created if missing, in `storageAccountName` with
`storageAccountKey`, `storageConnectionString` or Entra ID; azure-eventhub-checkpointstoreblob),
and starts each partition at its checkpoint, or, with none yet, at the end of the partition
(Dapr's start) or, with the annotation `portabind.io/initialOffset: earliest`, at its start.

Events are handled one at a time in partition order, and a partition's checkpoint moves past
an event only once its handler returned. A failing event is not skipped: it is delivered
again, after Dapr's back-off (`backOffPolicy`, `backOffDuration`, ... : 5 s apart by
default), until its handler succeeds; the events after it in its partition wait. After
`backOffMaxRetries` failed retries it is logged at error level (and every 100 failures after):
Dapr would log it there and move on, checkpointing past it, so the event would be lost
without a trace. When the listener stops meanwhile, the checkpoint stays before the event,
so the next consumer of the group starts with it. Locally the SDK's processor serves all the
partitions it owns from one thread, so a failing event holds back the component's other
partitions too; on Azure Functions each partition has its own.

The event (`event_from_parts`, the same from the SDK and from the Functions host): `data` is
the body; metadata has Dapr's keys `x-opt-sequence-number`, `x-opt-offset`,
`x-opt-enqueued-time` (RFC 3339, whole seconds as Dapr writes it), `x-opt-partition-key` and
`message-id` (when set), the IoT Hub keys `iothub-*` (when set), `x-opt-partition-id` (the
partition: Dapr's name for it, `events.go`), and with `getAllMessageProperties` the
application properties under their own names (the Dapr keys win over a property of the same
name).

Dapr's entity management (`enableEntityManagement`, `resourceGroupName`, `subscriptionID`,
`messageRetentionInDays`) is accepted and does nothing: portabind does not manage Azure
entities. `partitionCount` is the partition count of the hub `portabind run --emulate`
creates in its AMQP broker (Dapr's, for a hub it creates). `enableInOrderMessageDelivery`
changes nothing: delivery is always in partition order here.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from portabind.annotations import Annotations
from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings.azure import ACCOUNT_KEY, ACCOUNT_NAME, development_connection_string
from portabind.bindings.azure._messaging import (
    EMULATOR,
    ConnectionStringValue,
    ConsumerGroup,
    ContainerName,
    EventHubName,
    connection_string,
    namespace_host,
)
from portabind.bindings.azure._storage import EntraMetadata, azure_errors
from portabind.errors import ComponentError
from portabind.events import BindingEvent, BindingResponse, Metadata, metadata_value, rfc3339
from portabind.metadata import Bounds, Duration, Secret, Truthy, model_validator, setting
from portabind.resiliency import Retry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient

log = logging.getLogger(__name__)

#: A failing event still failing after `backOffMaxRetries` retries is logged at error level
#: once per this many further failures.
REPORT_EVERY = 100
#: Seconds between the consumer's rounds of claiming partitions (the SDK's default is 30 s;
#: an ownership left by a consumer that died expires after 6 rounds).
LOAD_BALANCING_SECONDS = 10.0
#: The IoT Hub system properties Dapr passes on (`events.go`).
IOT_HUB_KEYS = (
    "iothub-connection-device-id",
    "iothub-connection-auth-generation-id",
    "iothub-connection-auth-method",
    "iothub-connection-module-id",
    "iothub-enqueuedtime",
)
_NO_ENTITY_MANAGEMENT = "portabind does not create or change Azure entities"


class EventHubsAnnotations(Annotations):
    """What the input reads besides Dapr's metadata (on every target)."""

    initial_offset: Literal["latest", "earliest"] = setting(
        "initialOffset",
        "latest",
        description="where a partition without a checkpoint starts: latest (Dapr's) or earliest",
    )


class EventHubsMetadata(EntraMetadata):
    binding_type = "bindings.azure.eventhubs"
    deprecated = {"consumerGroup": "consumerID"}
    # `consumerGroup`, when given, wins over `consumerID` (Dapr's `parseEventHubsMetadata`).
    lookup_order = {"consumerID": ("consumerGroup", "consumerID")}
    no_effect = {
        "enableEntityManagement": _NO_ENTITY_MANAGEMENT,
        "resourceGroupName": _NO_ENTITY_MANAGEMENT,
        "subscriptionID": _NO_ENTITY_MANAGEMENT,
        "messageRetentionInDays": _NO_ENTITY_MANAGEMENT,
        "enableInOrderMessageDelivery": "events are always handled in partition order",
    }

    connection_string: ConnectionStringValue = setting(
        "connectionString", None, secret=True, description="or eventHubNamespace for Entra ID"
    )
    event_hub_namespace: str | None = setting(
        "eventHubNamespace", None, description="the namespace, to sign in with Entra ID"
    )
    event_hub: EventHubName | None = setting(
        "eventHub", None, description="the hub, unless the connection string's EntityPath names it"
    )
    consumer_id: ConsumerGroup | None = setting(
        "consumerID", None, aliases=("consumerGroup",), description="the consumer group (input)"
    )
    storage_account_name: str | None = setting(
        "storageAccountName", None, description="the checkpoint store's account (input)"
    )
    storage_account_key: Secret | None = setting("storageAccountKey", None, secret=True)
    storage_connection_string: Secret | None = setting("storageConnectionString", None, secret=True)
    storage_container_name: ContainerName | None = setting(
        "storageContainerName", None, description="the checkpoint store's container (input)"
    )
    enable_entity_management: Truthy = setting("enableEntityManagement", False)
    resource_group_name: str | None = setting("resourceGroupName", None)
    subscription_id: str | None = setting("subscriptionID", None)
    partition_count: Annotated[int, Bounds(ge=1, le=1024)] = setting(
        "partitionCount", 1, description="of the hub portabind run --emulate creates"
    )
    message_retention_in_days: Annotated[int, Bounds(ge=1)] = setting("messageRetentionInDays", 1)
    enable_in_order_message_delivery: Truthy = setting("enableInOrderMessageDelivery", False)
    get_all_message_properties: Truthy = setting(
        "getAllMessageProperties", False, description="application properties as metadata"
    )
    back_off_policy: Literal["constant", "exponential"] = setting("backOffPolicy", "constant")
    back_off_duration: Duration = setting("backOffDuration", timedelta(seconds=5))
    back_off_initial_interval: Duration = setting(
        "backOffInitialInterval", timedelta(milliseconds=500)
    )
    back_off_max_interval: Duration = setting("backOffMaxInterval", timedelta(seconds=60))
    back_off_multiplier: Annotated[float, Bounds(ge=1)] = setting("backOffMultiplier", 1.5)
    back_off_randomization_factor: Annotated[float, Bounds(ge=0, le=1)] = setting(
        "backOffRandomizationFactor", 0.5
    )
    back_off_max_elapsed_time: Duration = setting("backOffMaxElapsedTime", timedelta(minutes=15))
    back_off_max_retries: int = setting(
        "backOffMaxRetries", 3, description="retries before a failing event is logged as an error"
    )

    @model_validator(mode="after")
    def _one_address(self) -> EventHubsMetadata:
        if self.connection_string and self.event_hub_namespace:
            raise ValueError("only one of connectionString or eventHubNamespace should be passed")
        if not (self.connection_string or self.event_hub_namespace):
            raise ValueError("one of connectionString or eventHubNamespace is required")
        parsed = connection_string(self.connection_string)
        if not self.event_hub and (self.event_hub_namespace or (parsed and not parsed.entity_path)):
            raise ValueError(
                "eventHub is required: the hub's name, as the connection string has no EntityPath"
                if parsed
                else "eventHub is required when connecting with Entra ID (eventHubNamespace)"
            )
        return self

    def namespace(self) -> str | None:
        """The namespace's host when the component names one (Entra ID)."""
        return namespace_host(self.event_hub_namespace) if self.event_hub_namespace else None

    def hub(self) -> str | None:
        """The hub: the connection string's EntityPath, else `eventHub` (as Dapr); None while
        a referenced connection string is not resolved."""
        parsed = connection_string(self.connection_string)
        return (parsed.entity_path if parsed else None) or self.event_hub

    def retry(self) -> Retry:
        """Dapr's back-off between deliveries of a failing event, retried without end."""
        return Retry(
            name=f"{self.binding_type} backOff",
            exponential=self.back_off_policy == "exponential",
            duration=self.back_off_duration.total_seconds(),
            initial_interval=self.back_off_initial_interval.total_seconds(),
            randomization_factor=self.back_off_randomization_factor,
            multiplier=self.back_off_multiplier,
            max_interval=self.back_off_max_interval.total_seconds(),
            max_elapsed_time=self.back_off_max_elapsed_time.total_seconds(),
            max_retries=-1,
        )

    def client_options(self) -> dict[str, Any]:
        """How the clients reach the hub: the connection string, or the namespace and an
        Entra ID credential."""
        text = self.secret("connection_string")
        if text:
            return {"conn_str": text, "eventhub_name": self.hub()}
        return {
            "fully_qualified_namespace": self.namespace(),
            "eventhub_name": self.hub(),
            "credential": self.entra_credential(),
        }


def producer(metadata: EventHubsMetadata) -> EventHubProducerClient:
    from azure.eventhub import EventHubProducerClient

    options = metadata.client_options()
    if "conn_str" in options:
        return EventHubProducerClient.from_connection_string(**options)
    return EventHubProducerClient(**options)


def _input_problem(metadata: EventHubsMetadata) -> tuple[str, str] | None:
    """(field, what is missing) when the input cannot run, as Dapr checks it."""
    if not metadata.consumer_id:
        return "consumerID", "the input needs a consumer group (consumerID or consumerGroup)"
    if not metadata.storage_account_name:
        return "storageAccountName", "the input needs the checkpoint store's storage account"
    if not metadata.storage_container_name:
        return "storageContainerName", "the input needs the checkpoint store's blob container"
    return None


def checkpoint_store(metadata: EventHubsMetadata) -> Any:
    """The blob container the consumer keeps its checkpoints and ownership in, created if
    missing (as Dapr does)."""
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.core.exceptions import ResourceExistsError
    from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore
    from azure.storage.blob import ContainerClient

    container = metadata.storage_container_name or ""
    account = metadata.storage_account_name or ""
    text = metadata.secret("storage_connection_string")
    key = metadata.secret("storage_account_key")
    if text:
        store = BlobCheckpointStore.from_connection_string(text, container)
        blobs = ContainerClient.from_connection_string(text, container)
    else:
        url = f"https://{account}.blob.{metadata._cloud()[0]}"
        credential = AzureNamedKeyCredential(account, key) if key else metadata.entra_credential()
        store = BlobCheckpointStore(url, container, credential=credential)
        blobs = ContainerClient(url, container, credential=credential)
    with blobs, contextlib.suppress(ResourceExistsError):
        blobs.create_container()
    return store


# --- output --------------------------------------------------------------------------------


class EventHubsOutput(OutputBinding[EventHubsMetadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: EventHubsMetadata) -> None:
        super().__init__(name, metadata)
        self._lock = threading.Lock()
        self._producer: EventHubProducerClient | None = None

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        from azure.eventhub import EventData

        event = EventData(data)
        if metadata.get("contentType"):
            event.content_type = metadata["contentType"]
        with self._lock:
            if self._producer is None:
                self._producer = producer(self.metadata)
            sending = self._producer
        with azure_errors(self.name, "create"):
            sending.send_event(event, partition_key=metadata.get("partitionKey") or None)
        return BindingResponse()

    def close(self) -> None:
        with self._lock:
            sending, self._producer = self._producer, None
        if sending is not None:
            sending.close()


# --- the event -----------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return metadata_value(value)


def _seconds(moment: datetime) -> str:
    return rfc3339(moment.replace(microsecond=0))


def event_from_parts(
    name: str,
    *,
    body: bytes,
    sequence_number: int | None,
    offset: Any,
    enqueued_time: datetime | None,
    partition_key: Any,
    message_id: Any,
    partition_id: str | None,
    system_properties: Mapping[Any, Any] | None,
    properties: Mapping[Any, Any] | None,
) -> BindingEvent:
    """The `BindingEvent` of one event (see the module docstring); `properties` only when
    the component asks for them (`getAllMessageProperties`)."""
    values = {_text(k): _text(v) for k, v in (properties or {}).items() if v is not None}
    if sequence_number is not None:
        values["x-opt-sequence-number"] = str(sequence_number)
    if enqueued_time is not None:
        values["x-opt-enqueued-time"] = _seconds(enqueued_time)
    if offset is not None:
        values["x-opt-offset"] = _text(offset)
    if partition_key is not None:
        values["x-opt-partition-key"] = _text(partition_key)
    if message_id:
        values["message-id"] = _text(message_id)
    system = {_text(key): value for key, value in (system_properties or {}).items()}
    for key in IOT_HUB_KEYS:
        value = system.get(key)
        if value is not None:
            values[key] = _seconds(value) if isinstance(value, datetime) else _text(value)
    if partition_id is not None:
        values["x-opt-partition-id"] = partition_id
    return BindingEvent(name, body, Metadata(values))


def sdk_event(
    name: str, event: EventData, partition_id: str, *, all_properties: bool
) -> BindingEvent:
    """The event of an azure-eventhub `EventData` (the local listener)."""
    sections: Any = event.body  # the data sections of the event
    return event_from_parts(
        name,
        body=b"".join(bytes(section) for section in sections),
        sequence_number=event.sequence_number,
        offset=event.offset,
        enqueued_time=event.enqueued_time,
        partition_key=event.partition_key,
        message_id=event.message_id,
        partition_id=partition_id,
        system_properties=event.system_properties,
        properties=event.properties if all_properties else None,
    )


def functions_events(name: str, events: list[Any], *, all_properties: bool) -> list[BindingEvent]:
    """The events of one invocation of Azure Functions' Event Hubs trigger with cardinality
    many: `azure.functions.EventHubEvent`s sharing the invocation's trigger metadata, whose
    `SystemPropertiesArray` and `PropertiesArray` hold each event's system and application
    properties, and `PartitionContext` the partition."""
    if not events:
        return []
    trigger = events[0].metadata or {}
    partition = (trigger.get("PartitionContext") or {}).get("PartitionId")
    systems = trigger.get("SystemPropertiesArray") or []
    properties = trigger.get("PropertiesArray") or []
    found = []
    for index, event in enumerate(events):
        system = systems[index] if index < len(systems) else {}
        found.append(
            event_from_parts(
                name,
                body=bytes(event.get_body()),
                sequence_number=event.sequence_number,
                offset=event.offset,
                enqueued_time=event.enqueued_time,
                partition_key=event.partition_key,
                message_id=system.get("message-id"),
                partition_id=None if partition is None else str(partition),
                system_properties=system,
                properties=(properties[index] if index < len(properties) else {})
                if all_properties
                else None,
            )
        )
    return found


# --- input ---------------------------------------------------------------------------------


class _Partitions:
    """The handling of each batch the consumer receives: in order, a failing event retried
    until it succeeds, the checkpoint moved past each handled event."""

    def __init__(
        self,
        listener: EventHubsInput,
        deliver: Callable[[BindingEvent], None],
        stop: threading.Event,
    ) -> None:
        self.name = listener.name
        self.metadata = listener.metadata
        self.deliver = deliver
        self.stop = stop

    def on_batch(self, context: Any, events: Iterable[EventData]) -> None:
        for event in events:
            if self.stop.is_set() or not self._handled(context.partition_id, event):
                return  # stopping: the checkpoint stays before this event
            context.update_checkpoint(event)

    def _handled(self, partition_id: str, event: EventData) -> bool:
        """Deliver until the handler succeeds (True) or the listener stops (False)."""
        parsed = sdk_event(
            self.name, event, partition_id, all_properties=self.metadata.get_all_message_properties
        )
        where = f"{partition_id}@{event.sequence_number}"
        budget = self.metadata.back_off_max_retries
        failures = 0
        delays = self.metadata.retry().delays()
        while not self.stop.is_set():
            try:
                self.deliver(parsed)
                return True
            except Exception as error:  # the handler's failure
                failures += 1
                retries = failures - 1
                if budget < 0 or retries < budget:
                    log.warning("%s: event %s failed (%s); retrying", self.name, where, error)
                elif (retries - budget) % REPORT_EVERY == 0:
                    log.error(
                        "%s: event %s has failed %d deliveries (%s); still retrying: it is never "
                        "skipped, and the events after it in its partition wait",
                        self.name,
                        where,
                        failures,
                        error,
                    )
            self.stop.wait(next(delays))
        return False

    def on_error(self, context: Any, error: Exception) -> None:
        partition = getattr(context, "partition_id", None)
        log.warning("%s: Event Hubs consumer (partition %s): %s", self.name, partition, error)


class EventHubsInput(InputBinding[EventHubsMetadata]):
    annotations: EventHubsAnnotations | None

    def __init__(
        self,
        name: str,
        metadata: EventHubsMetadata,
        *,
        annotations: Annotations | None = None,
    ) -> None:
        super().__init__(name, metadata, annotations=annotations)
        problem = _input_problem(metadata)
        if problem is not None:
            raise ComponentError(problem[1], component=name, field=problem[0])

    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        from azure.eventhub import EventHubConsumerClient

        with azure_errors(self.name, "listen"):
            store = checkpoint_store(self.metadata)
        options = self.metadata.client_options()
        settings = {
            "consumer_group": self.metadata.consumer_id,
            "checkpoint_store": store,
            "load_balancing_interval": LOAD_BALANCING_SECONDS,
        }
        consumer: EventHubConsumerClient = (
            EventHubConsumerClient.from_connection_string(**options, **settings)
            if "conn_str" in options
            else EventHubConsumerClient(**options, **settings)
        )
        handling = _Partitions(self, deliver, stop)
        start = (self.annotations or EventHubsAnnotations()).initial_offset
        receiving = threading.Thread(
            target=consumer.receive_batch,
            kwargs={
                "on_event_batch": handling.on_batch,
                "on_error": handling.on_error,
                "starting_position": "-1" if start == "earliest" else "@latest",
            },
            name=f"{self.name} receive",
            daemon=True,
        )
        receiving.start()
        try:
            stop.wait()
        finally:
            consumer.close()
            receiving.join()


def emulate(endpoints: Mapping[str, str]) -> dict[str, str]:
    """The broker's namespace for the hub, and Azurite's blob service for the checkpoints."""
    blobs = f"{endpoints['azurite.blob']}/{ACCOUNT_NAME}"
    return {
        "connectionString": development_connection_string(endpoints[EMULATOR]),
        "eventHubNamespace": "",
        "storageAccountName": ACCOUNT_NAME,
        "storageAccountKey": ACCOUNT_KEY,
        "storageConnectionString": (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={blobs};"
        ),
    }


binding = Binding(
    metadata=EventHubsMetadata,
    annotations=EventHubsAnnotations,
    output=EventHubsOutput,
    input=EventHubsInput,
    emulator=(EMULATOR, "azurite"),
    emulate=emulate,
    requires=(
        "azure-eventhub",
        "azure-eventhub-checkpointstoreblob",
        "azure-storage-blob",
        "azure-identity",
    ),
)
