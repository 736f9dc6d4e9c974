"""The `portabind.io/` annotations the Azure build reads, by binding type.

`COMMON` applies to a component of every type (`keyVault`, where its secret references
point); `BY_TYPE` maps a Dapr binding type to the models that apply to a component of that
type on Azure. The HTTP trigger's annotations are the binding's own (`HttpAnnotations`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from portabind.annotations import Annotations, text_matching, whole_number
from portabind.bindings.azure.eventhubs import EventHubsAnnotations
from portabind.bindings.http import HttpAnnotations
from portabind.metadata import Bounds, Duration, setting

#: host.json's bounds: at most 32 messages per batch, a polling interval of at least 100 ms.
MAX_QUEUE_BATCH = 32
#: The Event Hubs extension's largest `maxEventBatchSize`.
MAX_EVENT_BATCH = 1000
MIN_POLLING_INTERVAL = timedelta(milliseconds=100)


class KeyVault(Annotations):
    """`keyVault`: the vault the Key Vault references of the component's secrets name (a
    placeholder to fill in when unset)."""

    key_vault: (
        Annotated[
            str,
            text_matching(
                r"[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]",
                "a Key Vault name (3 to 24 letters, digits and dashes, starting with a letter)",
            ),
        ]
        | None
    ) = setting("keyVault", None, description="the Key Vault holding the secrets")


class QueueHost(Annotations):
    """host.json's `extensions.queues` settings for a queue trigger. They are app-wide, so
    components that disagree fail the build. The two durations default to the component's
    metadata (`visibilityTimeout`, `pollingInterval`)."""

    max_dequeue_count: Annotated[int, whole_number(1)] = setting(
        "maxDequeueCount", 5, description="dequeues before the message goes to the poison queue"
    )
    batch_size: Annotated[int, whole_number(1, MAX_QUEUE_BATCH)] = setting(
        "batchSize", 16, description="messages fetched at once"
    )
    new_batch_threshold: Annotated[int, whole_number(0)] | None = setting(
        "newBatchThreshold", None, description="fetch the next batch below this many in flight"
    )
    visibility_timeout: Annotated[Duration, Bounds(ge=timedelta(0))] | None = setting(
        "visibilityTimeout", None, description="delay before a failed message is retried"
    )
    max_polling_interval: Annotated[Duration, Bounds(ge=MIN_POLLING_INTERVAL)] | None = setting(
        "maxPollingInterval", None, description="longest wait between polls of an empty queue"
    )


class EventHubsHost(Annotations):
    """host.json's `extensions.eventHubs` settings for an Event Hubs trigger; app-wide, so
    components that disagree fail the build."""

    max_event_batch_size: Annotated[int, whole_number(1, MAX_EVENT_BATCH)] = setting(
        "maxEventBatchSize", 100, description="events per invocation, handled one by one"
    )


COMMON: tuple[type[Annotations], ...] = (KeyVault,)
BY_TYPE: dict[str, tuple[type[Annotations], ...]] = {
    "bindings.azure.storagequeues": (QueueHost,),
    "bindings.azure.eventhubs": (EventHubsAnnotations, EventHubsHost),
    "bindings.http": (HttpAnnotations,),
}
