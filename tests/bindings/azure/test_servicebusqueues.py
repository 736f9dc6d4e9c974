"""bindings.azure.servicebusqueues against portabind's AMQP broker through azure-servicebus:
Dapr's request metadata on the message sent, Dapr's event keys and Azure Functions' names on
the message received, complete on success, abandon (then the dead-letter sub-queue) on
failure, lock renewal and the handler timeout; and the metadata Dapr accepts or refuses."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
from azure.functions import meta
from azure.functions.servicebus import ServiceBusMessageInConverter
from azure.servicebus import ServiceBusClient, ServiceBusReceiveMode
from pydantic import ValidationError

from portabind.bindings.azure import servicebusqueues
from portabind.bindings.azure.servicebusqueues import (
    ServiceBusQueuesInput,
    ServiceBusQueuesMetadata,
    ServiceBusQueuesOutput,
    message_event,
    message_fields,
)
from portabind.errors import BindingError
from portabind.events import BindingEvent, Metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from portabind.adapters.local.emulators.amqp import AmqpBroker
    from tests.bindings.conftest import Listener

KEY = "Endpoint=sb://shop.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey="
SECRET = "c2VjcmV0LWtleQ=="


@pytest.fixture
def queue(amqp_broker: AmqpBroker, unique_name: Callable[..., str]) -> str:
    name = unique_name("jobs")
    amqp_broker.declare_queue(name, lock_duration=2, max_delivery_count=2)
    return name


def metadata(amqp_broker: AmqpBroker, queue: str, **values: str) -> ServiceBusQueuesMetadata:
    assert servicebusqueues.binding.emulate is not None
    emulated = servicebusqueues.binding.emulate({"amqp": amqp_broker.address})
    return ServiceBusQueuesMetadata.model_validate({**emulated, "queueName": queue, **values})


@pytest.fixture
def output(
    amqp_broker: AmqpBroker, queue: str, closing: Callable[[Any], Any]
) -> ServiceBusQueuesOutput:
    client: ServiceBusQueuesOutput = closing(
        ServiceBusQueuesOutput("jobs", metadata(amqp_broker, queue))
    )
    return client


@pytest.fixture
def service_bus(amqp_broker: AmqpBroker) -> Iterator[ServiceBusClient]:
    with ServiceBusClient.from_connection_string(amqp_broker.connection_string()) as client:
        yield client


# --- metadata -------------------------------------------------------------------------------


def test_dapr_defaults_aliases_and_the_deprecated_spelling() -> None:
    found = ServiceBusQueuesMetadata.model_validate(
        {"connectionString": KEY + SECRET, "queueName": "jobs", "ttlInSeconds": "90"}
    )
    assert (found.timeout_in_sec, found.lock_renewal_in_sec, found.max_active_messages) == (
        60,
        20,
        1,
    )
    assert (found.max_concurrent_handlers, found.handler_timeout_in_sec) == (1, 0)
    assert (found.publish_max_retries, found.publish_initial_retry_interval_in_ms) == (5, 500)
    assert found.default_message_ttl == timedelta(seconds=90)
    # Dapr reads the misspelt key first when both are given (`ParseMetadata`).
    both = ServiceBusQueuesMetadata.model_validate(
        {
            "namespaceName": "shop",
            "queueName": "jobs",
            "publishInitialRetryIntervalInMs": "100",
            "publishInitialRetryInternalInMs": "250",
        }
    )
    assert both.publish_initial_retry_interval_in_ms == 250
    assert both.namespace() == "shop.servicebus.windows.net"
    assert "connectionString" in ServiceBusQueuesMetadata.secret_names()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"queueName": "jobs"}, "either connectionString or namespaceName"),
        (
            {"queueName": "jobs", "connectionString": KEY + SECRET, "namespaceName": "shop"},
            "cannot both be specified",
        ),
        ({"queueName": "jobs", "connectionString": "not a connection string"}, "Key=Value"),
        (
            {"queueName": "jobs", "connectionString": "Endpoint=shop;SharedAccessKey=" + SECRET},
            "Endpoint=sb://",
        ),
        (
            {
                "queueName": "jobs",
                "connectionString": "Endpoint=sb://shop/;SharedAccessKey=" + SECRET,
            },
            "SharedAccessKeyName",
        ),
        ({"queueName": "-jobs-", "namespaceName": "shop"}, "Service Bus queue name"),
        ({"queueName": "jobs", "namespaceName": "shop", "maxActiveMessages": "0"}, "greater"),
        ({"queueName": "jobs", "namespaceName": "shop", "autoDeleteOnIdleInSec": "60"}, "300"),
    ],
)
def test_what_dapr_refuses_is_refused_without_repeating_the_key(
    values: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as refused:
        ServiceBusQueuesMetadata.model_validate(values)
    assert SECRET not in "\n".join(str(e["msg"]) for e in refused.value.errors())


def test_request_metadata_maps_onto_the_message_as_dapr_maps_it() -> None:
    fields = message_fields(
        Metadata(
            {
                "MessageId": "m-1",
                "correlationID": "c-1",
                "SessionId": "",
                "Label": "nightly",
                "ReplyTo": "replies",
                "To": "worker",
                "ContentType": "application/json",
                "ScheduledEnqueueTimeUtc": "Fri, 02 Jan 2026 03:04:05 GMT",
                "ttlInSeconds": "60",
                "ReplyToSessionId": "s-9",
                "traceparent": "00-abc-def-01",
                "empty": "",
            }
        )
    )
    assert fields == {
        "message_id": "m-1",
        "correlation_id": "c-1",
        "session_id": "",  # an empty session id is kept
        "subject": "nightly",
        "reply_to": "replies",
        "to": "worker",
        "content_type": "application/json",
        "scheduled_enqueue_time_utc": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        "time_to_live": timedelta(seconds=60),
        # Dapr maps no ReplyToSessionId: it is an application property, like the rest.
        "application_properties": {"ReplyToSessionId": "s-9", "traceparent": "00-abc-def-01"},
    }
    rfc3339 = message_fields(Metadata({"ScheduledEnqueueTimeUtc": "2026-01-02T03:04:05Z"}))
    assert rfc3339["scheduled_enqueue_time_utc"] == datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc
    )
    with pytest.raises(ValueError, match="HTTP time format or RFC3339"):
        message_fields(Metadata({"ScheduledEnqueueTimeUtc": "tomorrow"}))
    with pytest.raises(ValueError, match="should be equal"):
        message_fields(Metadata({"SessionId": "a", "PartitionKey": "b"}))


# --- output ---------------------------------------------------------------------------------


def test_create_sends_the_body_and_the_mapped_metadata(
    output: ServiceBusQueuesOutput, service_bus: ServiceBusClient, queue: str
) -> None:
    response = output.invoke(
        "create",
        b'{"job": 1}',
        Metadata({"id": "m-1", "CorrelationId": "c-1", "Label": "nightly", "priority": "high"}),
    )
    assert response.data is None
    with service_bus.get_queue_receiver(
        queue, receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
    ) as receiver:
        (message,) = receiver.receive_messages(max_wait_time=2)
    assert b"".join(message.body) == b'{"job": 1}'
    assert (message.message_id, message.correlation_id, message.subject) == (
        "m-1",
        "c-1",
        "nightly",
    )
    assert message.application_properties == {b"priority": b"high"}


def test_create_refuses_bad_request_metadata_by_name(output: ServiceBusQueuesOutput) -> None:
    with pytest.raises(BindingError, match="ScheduledEnqueueTimeUtc"):
        output.invoke("create", b"x", Metadata({"ScheduledEnqueueTimeUtc": "soon"}))
    with pytest.raises(BindingError, match="greater than 0"):
        output.invoke("create", b"x", Metadata({"ttlInSeconds": "-1"}))


# --- input ----------------------------------------------------------------------------------


def test_events_carry_daprs_keys_then_functions_names_and_unescaped_properties(
    amqp_broker: AmqpBroker,
    queue: str,
    output: ServiceBusQueuesOutput,
    listen: Callable[..., Listener],
) -> None:
    output.invoke(
        "create",
        b"job",
        Metadata({"id": "m-1", "correlationID": "c-1", "Label": "nightly", "order id": "a&b=c/d"}),
    )
    listener = listen(ServiceBusQueuesInput("jobs", metadata(amqp_broker, queue)))
    (event,) = listener.wait_for(1)
    assert event.data == b"job"
    metadata_keys = dict(event.metadata)
    assert metadata_keys["order id"] == "a&b=c/d"  # Dapr would send order+id: a%26b%3Dc%2Fd
    assert (metadata_keys["id"], metadata_keys["correlationID"], metadata_keys["label"]) == (
        "m-1",
        "c-1",
        "nightly",
    )
    assert metadata_keys["DeliveryCount"] == "1"
    assert metadata_keys["SequenceNumber"] == "1"
    enqueued = datetime.fromisoformat(metadata_keys["EnqueuedTimeUtc"].replace("Z", "+00:00"))
    assert abs(enqueued - datetime.now(timezone.utc)) < timedelta(seconds=30)
    assert set(metadata_keys) == {
        "order id",
        "id",
        "correlationID",
        "label",
        "EnqueuedTimeUtc",
        "LockedUntil",
        "LockToken",
        "SequenceNumber",
        "DeliveryCount",
    }
    deadline = time.monotonic() + 5
    while amqp_broker.queue_counts(queue)["locked"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert amqp_broker.queue_counts(queue) == {
        "active": 0,
        "locked": 0,
        "deferred": 0,
        "dead_letter": 0,
    }  # completed


def test_a_failing_message_is_abandoned_then_dead_lettered(
    amqp_broker: AmqpBroker,
    queue: str,
    output: ServiceBusQueuesOutput,
    listen: Callable[..., Listener],
    service_bus: ServiceBusClient,
) -> None:
    output.invoke("create", b"poison", Metadata())

    def fail(event: BindingEvent) -> None:
        raise ValueError("cannot take it")

    listener = listen(ServiceBusQueuesInput("jobs", metadata(amqp_broker, queue)), fail)
    events = listener.wait_for(2)  # the queue's max delivery count
    assert [e.metadata["DeliveryCount"] for e in events] == ["1", "2"]
    with service_bus.get_queue_receiver(queue, sub_queue="deadletter") as receiver:
        (dead,) = receiver.receive_messages(max_wait_time=5)
        receiver.complete_message(dead)
    assert b"".join(dead.body) == b"poison"
    assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
    assert len(listener.events) == 2


def test_the_lock_is_renewed_while_the_handler_runs(
    amqp_broker: AmqpBroker,
    queue: str,
    output: ServiceBusQueuesOutput,
    listen: Callable[..., Listener],
) -> None:
    output.invoke("create", b"slow", Metadata())
    done = []

    def handle(event: BindingEvent) -> None:
        time.sleep(3)  # past the queue's 2 s lock
        done.append(event)

    values = {"lockRenewalInSec": "1"}
    listener = listen(ServiceBusQueuesInput("jobs", metadata(amqp_broker, queue, **values)), handle)
    listener.wait_for(1, timeout=20)
    time.sleep(1)
    assert len(listener.events) == 1  # not delivered again: the lock held
    assert (
        amqp_broker.queue_counts(queue)["active"] + amqp_broker.queue_counts(queue)["locked"] == 0
    )


def test_a_handler_past_its_timeout_is_abandoned_and_delivered_again(
    amqp_broker: AmqpBroker,
    queue: str,
    output: ServiceBusQueuesOutput,
    listen: Callable[..., Listener],
) -> None:
    output.invoke("create", b"hangs once", Metadata())

    def handle(event: BindingEvent) -> None:
        if event.metadata["DeliveryCount"] == "1":
            time.sleep(2)

    values = {"handlerTimeoutInSec": "1", "maxConcurrentHandlers": "2"}
    listener = listen(ServiceBusQueuesInput("jobs", metadata(amqp_broker, queue, **values)), handle)
    events = listener.wait_for(2, timeout=20)
    # The second delivery ends first: the first handler is still asleep, its outcome ignored.
    assert sorted(e.metadata["DeliveryCount"] for e in events) == ["1", "2"]


def test_the_sdk_message_and_the_functions_message_give_the_same_event(
    output: ServiceBusQueuesOutput, service_bus: ServiceBusClient, queue: str
) -> None:
    output.invoke(
        "create",
        b"same",
        Metadata({"id": "m-9", "ContentType": "text/plain", "ttl": "1h", "color": "blue"}),
    )
    with service_bus.get_queue_receiver(queue) as receiver:
        (received,) = receiver.receive_messages(max_wait_time=2)
    local = message_event("jobs", received)
    # What the Functions host hands over for the same message (.NET counts this delivery).
    fields: dict[str, Any] = {
        "MessageId": received.message_id,
        "ContentType": received.content_type,
        "DeliveryCount": received.delivery_count + 1,
        "EnqueuedTimeUtc": received.enqueued_time_utc.isoformat(),
        "ExpiresAtUtc": received.expires_at_utc.isoformat(),
        "LockedUntil": received.locked_until_utc.isoformat(),
        "LockToken": str(received.lock_token),
        "SequenceNumber": received.sequence_number,
        "ApplicationProperties": {"color": "blue"},
        "UserProperties": {"color": "blue"},
    }
    trigger = {
        key: meta.Datum(json.dumps(value), "json")
        if isinstance(value, dict)
        else meta.Datum(value, "int" if isinstance(value, int) else "string")
        for key, value in fields.items()
    }
    hosted = ServiceBusMessageInConverter.decode(
        meta.Datum(b"same", "bytes"), trigger_metadata=trigger
    )
    assert message_event("jobs", hosted) == local
    assert local.metadata["ExpiresAtUtc"]
