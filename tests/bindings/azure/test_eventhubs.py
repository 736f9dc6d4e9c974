"""bindings.azure.eventhubs against portabind's AMQP broker (azure-eventhub) with checkpoints in
Azurite (azure-eventhub-checkpointstoreblob): partition keys on send, events in partition
order with Dapr's keys, a failing event retried in place and never checkpointed past, and a
restarted consumer going on from the checkpoint; and the metadata Dapr accepts or refuses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore
from pydantic import ValidationError

from portabind.bindings.azure import eventhubs
from portabind.bindings.azure.eventhubs import (
    EventHubsAnnotations,
    EventHubsInput,
    EventHubsMetadata,
    EventHubsOutput,
)
from portabind.errors import ComponentError
from portabind.events import BindingEvent, Metadata

if TYPE_CHECKING:
    from collections.abc import Callable

    from portabind.adapters.local.emulators.amqp import AmqpBroker
    from portabind.adapters.local.emulators.azure import AzuriteEmulator
    from tests.bindings.conftest import Listener

KEY = "Endpoint=sb://shop.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=a2V5"
EARLIEST = EventHubsAnnotations.model_validate({"initialOffset": "earliest"})


def metadata(
    amqp_broker: AmqpBroker, azurite: AzuriteEmulator, hub: str, **values: str
) -> EventHubsMetadata:
    assert eventhubs.binding.emulate is not None
    blobs = azurite.blob_endpoint.removesuffix(f"/{azurite.account_name}")
    emulated = eventhubs.binding.emulate({"amqp": amqp_broker.address, "azurite.blob": blobs})
    return EventHubsMetadata.model_validate(
        {
            **emulated,
            "eventHub": hub,
            "consumerID": "$Default",
            "storageContainerName": hub,
            "backOffDuration": "100ms",
            **values,
        }
    )


def hub_with(amqp_broker: AmqpBroker, name: str, partitions: int) -> str:
    amqp_broker.declare_event_hub(name, partitions=partitions)
    return name


def send(output: EventHubsOutput, *bodies: bytes, key: str | None = None) -> None:
    for body in bodies:
        output.invoke("create", body, Metadata({"partitionKey": key} if key else {}))


# --- metadata -------------------------------------------------------------------------------


def test_the_hub_comes_from_entity_path_or_event_hub_and_consumer_group_wins() -> None:
    found = EventHubsMetadata.model_validate(
        {
            "connectionString": KEY + ";EntityPath=telemetry",
            "eventHub": "ignored",
            "consumerID": "fallback",
            "consumerGroup": "readers",
        }
    )
    assert found.hub() == "telemetry"  # as Dapr: EntityPath wins
    assert found.consumer_id == "readers"  # as Dapr: consumerGroup wins over consumerID
    assert found.partition_count == 1 and found.get_all_message_properties is False
    retry = found.retry()
    assert (retry.exponential, retry.duration, retry.max_retries) == (False, 5.0, -1)
    entra = EventHubsMetadata.model_validate({"eventHubNamespace": "shop", "eventHub": "t"})
    assert (entra.namespace(), entra.hub()) == ("shop.servicebus.windows.net", "t")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"eventHub": "t"}, "one of connectionString or eventHubNamespace"),
        ({"connectionString": KEY}, "eventHub is required"),
        ({"eventHubNamespace": "shop"}, "eventHub is required"),
        ({"connectionString": KEY, "eventHub": "no spaces"}, "event hub name"),
        ({"connectionString": KEY, "eventHub": "t", "consumerID": "-x"}, "consumer group"),
        (
            {"connectionString": KEY, "eventHub": "t", "storageContainerName": "Upper"},
            "blob container name",
        ),
        ({"connectionString": "Endpoint=sb://shop/", "eventHub": "t"}, "SharedAccessKey"),
    ],
)
def test_what_dapr_or_azure_refuses_is_refused(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EventHubsMetadata.model_validate(values)


def test_the_input_needs_a_consumer_group_and_a_checkpoint_store() -> None:
    bare = EventHubsMetadata.model_validate({"connectionString": KEY, "eventHub": "t"})
    with pytest.raises(ComponentError) as missing:
        EventHubsInput("telemetry", bare)
    assert (missing.value.component, missing.value.field) == ("telemetry", "consumerID")
    grouped = bare.model_copy(update={"consumer_id": "$Default"})
    with pytest.raises(ComponentError, match="storage account"):
        EventHubsInput("telemetry", grouped)


# --- output and input -----------------------------------------------------------------------


def test_events_arrive_in_partition_order_with_daprs_keys(
    amqp_broker: AmqpBroker,
    azurite: AzuriteEmulator,
    unique_name: Callable[..., str],
    listen: Callable[..., Listener],
    closing: Callable[[Any], Any],
) -> None:
    hub = hub_with(amqp_broker, unique_name("hub"), partitions=2)
    output = closing(EventHubsOutput("telemetry", metadata(amqp_broker, azurite, hub)))
    send(output, b"a1", b"a2", b"a3", key="device-a")
    send(output, b"b1", b"b2", key="device-b")
    output.invoke("create", b"typed", Metadata({"contentType": "application/json"}))
    values = {"getAllMessageProperties": "true"}
    listener = listen(
        EventHubsInput(
            "telemetry", metadata(amqp_broker, azurite, hub, **values), annotations=EARLIEST
        )
    )
    events = listener.wait_for(6)
    by_key: dict[str, list[bytes]] = {}
    for event in events:
        by_key.setdefault(event.metadata.get("x-opt-partition-key", ""), []).append(event.data)
    assert by_key["device-a"] == [b"a1", b"a2", b"a3"]
    assert by_key["device-b"] == [b"b1", b"b2"]
    first = next(e for e in events if e.data == b"a1")
    assert set(first.metadata) == {
        "x-opt-sequence-number",
        "x-opt-enqueued-time",
        "x-opt-offset",
        "x-opt-partition-key",
        "x-opt-partition-id",
    }
    assert first.metadata["x-opt-enqueued-time"].endswith("Z")
    partition = first.metadata["x-opt-partition-id"]
    same = [e for e in events if e.metadata["x-opt-partition-id"] == partition]
    sequence = [int(e.metadata["x-opt-sequence-number"]) for e in same]
    assert sequence == sorted(sequence)  # one partition's events in order


def test_a_failing_event_is_retried_in_place_and_never_checkpointed_past(
    amqp_broker: AmqpBroker,
    azurite: AzuriteEmulator,
    unique_name: Callable[..., str],
    listen: Callable[..., Listener],
    closing: Callable[[Any], Any],
) -> None:
    hub = hub_with(amqp_broker, unique_name("hub"), partitions=1)
    found = metadata(amqp_broker, azurite, hub)
    send(closing(EventHubsOutput("telemetry", found)), b"a", b"b", b"bad", b"c")

    def fail_on_bad(event: BindingEvent) -> None:
        if event.data == b"bad":
            raise ValueError("cannot take this reading")

    first = listen(EventHubsInput("telemetry", found, annotations=EARLIEST), fail_on_bad)
    first.wait_for(5)  # a, b, then bad three times (at least): c waits behind it
    first.stop.set()
    assert first.finished.wait(15)
    seen = [e.data for e in first.events]
    assert seen[:3] == [b"a", b"b", b"bad"] and set(seen[2:]) == {b"bad"}
    store = BlobCheckpointStore.from_connection_string(
        found.secret("storage_connection_string") or "", hub
    )
    (checkpoint,) = store.list_checkpoints(amqp_broker.address, hub, "$default")
    assert checkpoint["sequence_number"] == 1  # b's: not past the failing event
    # The next consumer of the group starts at the failing event.
    second = listen(EventHubsInput("telemetry", found, annotations=EARLIEST))
    assert [e.data for e in second.wait_for(2)] == [b"bad", b"c"]


def test_failures_are_logged_as_errors_after_back_off_max_retries(
    amqp_broker: AmqpBroker,
    azurite: AzuriteEmulator,
    unique_name: Callable[..., str],
    listen: Callable[..., Listener],
    closing: Callable[[Any], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = hub_with(amqp_broker, unique_name("hub"), partitions=1)
    found = metadata(amqp_broker, azurite, hub, backOffMaxRetries="1")
    send(closing(EventHubsOutput("telemetry", found)), b"bad")

    def fail(event: BindingEvent) -> None:
        raise ValueError("still broken")

    listen(EventHubsInput("telemetry", found, annotations=EARLIEST), fail).wait_for(3)
    levels = [r.levelname for r in caplog.records if "still broken" in r.getMessage()]
    # Retried once as Dapr would (a warning), then an error: Dapr would skip it here.
    assert levels[:2] == ["WARNING", "ERROR"]
