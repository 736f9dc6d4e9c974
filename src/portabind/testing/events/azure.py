"""Azure Functions trigger objects, as the Python worker hands them to a function.

Each function returns the `azure.functions` object (or list of them) a trigger of that kind
receives; Service Bus and Event Hubs objects come from the library's own converters given
the data and trigger metadata the host sends, as in a running worker. A payload is bytes,
text, or anything JSON-serialisable, as `app.invoke_binding` takes it. Needs the `azure`
extra (`azure-functions`).

```python
from portabind.testing.events import azure

message = azure.queue_message({"id": 1})
```
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from portabind.events import to_bytes

if TYPE_CHECKING:
    from collections.abc import Mapping

    import azure.functions as func


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _net_time(moment: datetime) -> str:
    """A time as the .NET host writes it in trigger metadata (7 fractional digits)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


class Context:
    """The invocation context the worker passes to functions that take one (timer, HTTP):
    what a `func.Context` carries."""

    def __init__(self, function_name: str = "function") -> None:
        self.invocation_id = str(uuid.uuid4())
        self.function_name = function_name
        self.function_directory = ""
        self.trace_context = None
        self.retry_context = None
        self.thread_local_storage = None


def queue_message(body: Any, *, dequeue_count: int = 1) -> func.QueueMessage:
    """A storage queue message as the queue trigger receives it (the body as the producer
    wrote it)."""
    from azure.functions.queue import QueueMessage

    now = _now()
    message: func.QueueMessage = QueueMessage(  # type: ignore[no-untyped-call]
        id=str(uuid.uuid4()),
        body=to_bytes(body),
        dequeue_count=dequeue_count,
        insertion_time=now,
        expiration_time=now + timedelta(days=7),
        time_next_visible=now + timedelta(seconds=30),
        pop_receipt=base64.b64encode(uuid.uuid4().bytes[:8]).decode("ascii"),
    )
    return message


def service_bus_message(
    body: Any,
    *,
    application_properties: Mapping[str, Any] | None = None,
    subject: str | None = None,
    correlation_id: str | None = None,
    delivery_count: int = 1,
) -> func.ServiceBusMessage:
    """A Service Bus queue message, decoded by the library's converter from the trigger
    metadata the host sends."""
    from azure.functions import meta
    from azure.functions.servicebus import ServiceBusMessageInConverter

    now = _now()
    fields: dict[str, Any] = {
        "MessageId": uuid.uuid4().hex,
        "DeliveryCount": delivery_count,
        "SequenceNumber": int(now.timestamp() * 1000),
        "LockToken": str(uuid.uuid4()),
        "EnqueuedTimeUtc": _net_time(now),
        "ExpiresAtUtc": _net_time(now + timedelta(days=14)),
        "LockedUntil": _net_time(now + timedelta(minutes=1)),
        "ApplicationProperties": dict(application_properties or {}),
        "UserProperties": dict(application_properties or {}),
    }
    if subject is not None:
        fields["Subject"] = subject
    if correlation_id is not None:
        fields["CorrelationId"] = correlation_id
    trigger = {
        key: meta.Datum(json.dumps(value), "json")
        if isinstance(value, dict)
        else meta.Datum(value, "int" if isinstance(value, int) else "string")
        for key, value in fields.items()
    }
    decoded = ServiceBusMessageInConverter.decode(
        meta.Datum(to_bytes(body), "bytes"), trigger_metadata=trigger
    )
    assert not isinstance(decoded, list)  # one message: the trigger's cardinality one
    return decoded


def event_hub_events(
    *bodies: Any,
    partition: str = "0",
    partition_key: str | None = None,
    properties: Mapping[str, Any] | None = None,
) -> list[func.EventHubEvent]:
    """One invocation of a batched (cardinality many) Event Hubs trigger: the events of one
    partition in order, decoded by the library's converter from the metadata the host sends;
    `properties` are each event's application properties."""
    from types import SimpleNamespace

    from azure.functions import meta
    from azure.functions.eventhub import EventHubTriggerConverter

    now = _now()
    first = int(now.timestamp() * 1000)
    systems = [
        {
            "SequenceNumber": first + index,
            "Offset": str((first + index) * 100),
            "PartitionKey": partition_key,
            "EnqueuedTimeUtc": _net_time(now),
            "message-id": uuid.uuid4().hex,
        }
        for index in range(len(bodies))
    ]
    trigger = {
        "SystemPropertiesArray": meta.Datum(json.dumps(systems), "json"),
        "PropertiesArray": meta.Datum(json.dumps([dict(properties or {})] * len(bodies)), "json"),
        "PartitionContext": meta.Datum(json.dumps({"PartitionId": partition}), "json"),
    }
    data = SimpleNamespace(bytes=[to_bytes(body) for body in bodies])
    decoded = EventHubTriggerConverter.decode(
        meta.Datum(data, "collection_bytes"), trigger_metadata=trigger
    )
    assert isinstance(decoded, list)  # a collection: the trigger's cardinality many
    return decoded


def event_grid_event(
    data: Any,
    *,
    event_type: str = "Contoso.Items.ItemReceived",
    subject: str = "items/1",
    topic: str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/Microsoft.EventGrid/topics/topic",
) -> func.EventGridEvent:
    """An Event Grid event (Event Grid schema); `data` is its payload (JSON)."""
    import azure.functions as func

    return func.EventGridEvent(
        id=str(uuid.uuid4()),
        data=json.loads(to_bytes(data)),
        topic=topic,
        subject=subject,
        event_type=event_type,
        event_time=_now(),
        data_version="1.0",
    )


def event_grid_cloud_event(
    data: Any,
    *,
    event_type: str = "Contoso.Items.ItemReceived",
    subject: str = "items/1",
    source: str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/Microsoft.EventGrid/topics/topic",
) -> func.CloudEvent:
    """An Event Grid event in the CloudEvents 1.0 schema (a topic's input schema)."""
    import azure.functions as func

    return func.CloudEvent(
        id=str(uuid.uuid4()),
        source=source,
        type=event_type,
        specversion="1.0",
        data=json.loads(to_bytes(data)),
        time=_now(),
        subject=subject,
        datacontenttype="application/json",
    )


def cosmos_documents(*documents: Mapping[str, Any]) -> func.DocumentList:
    """One change-feed batch of a Cosmos DB trigger: the documents with the system
    properties (`_rid`, `_ts`, `_etag`, ...) the service adds."""
    import azure.functions as func

    now = int(_now().timestamp())
    return func.DocumentList(
        [
            func.Document.from_dict(
                {
                    "id": str(uuid.uuid4()),
                    **document,
                    "_rid": base64.b64encode(uuid.uuid4().bytes[:8]).decode("ascii"),
                    "_self": "",
                    "_etag": f'"{uuid.uuid4()}"',
                    "_attachments": "attachments/",
                    "_ts": now,
                    "_lsn": index + 1,
                }
            )
            for index, document in enumerate(documents)
        ]
    )


def blob(
    data: Any,
    *,
    name: str = "samples-workitems/workitem.txt",
    content_type: str = "application/octet-stream",
    metadata: Mapping[str, str] | None = None,
    account: str = "devstoreaccount1",
) -> func.InputStream:
    """A new or changed blob as the blob trigger hands it: `name` is `<container>/<blob>`."""
    from azure.functions.blob import InputStream

    content = to_bytes(data)
    return InputStream(
        data=content,
        name=name,
        uri=f"https://{account}.blob.core.windows.net/{name}",
        length=len(content),
        blob_properties={
            "ContentType": content_type,
            "ETag": f'"0x{uuid.uuid4().hex[:15].upper()}"',
            "LastModified": _now().isoformat(),
            "Length": len(content),
        },
        metadata=dict(metadata or {}),
    )


def timer(*, past_due: bool = False) -> func.TimerRequest:
    """A timer trigger's tick; `past_due` when it fires late."""
    from azure.functions.timer import TimerRequest

    return TimerRequest(past_due=past_due)


def http_request(
    method: str = "POST",
    url: str = "https://app.azurewebsites.net/api/",
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> func.HttpRequest:
    """An HTTP trigger's request; the query is read from `url`."""
    from urllib.parse import parse_qsl, urlsplit

    import azure.functions as func

    return func.HttpRequest(
        method=method,
        url=url,
        headers={"content-type": "application/json", **(headers or {})},
        params=dict(parse_qsl(urlsplit(url).query)),
        body=b"" if body is None else to_bytes(body),
    )


def kafka_event(
    value: Any,
    *,
    topic: str = "mytopic",
    partition: int = 0,
    offset: int = 0,
    key: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> func.KafkaEvent:
    """A Kafka trigger's record (cardinality one); headers as the extension serializes them
    (the value's bytes in base64)."""
    import azure.functions as func

    return func.KafkaEvent(
        body=to_bytes(value),
        key=key,
        offset=offset,
        partition=partition,
        topic=topic,
        timestamp=_net_time(_now()),
        headers=[
            {"Key": name, "Value": base64.b64encode(text.encode("utf-8")).decode("ascii")}
            for name, text in (headers or {}).items()
        ],
    )


def rabbitmq_message(body: Any) -> bytes:
    """What the RabbitMQ trigger hands a Python function: the body only."""
    return to_bytes(body)
