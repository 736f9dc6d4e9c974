"""What a built Azure Functions app runs (imported by the generated `function_app.py`).

It loads the bundled app and components once per worker, attaches a `Runtime` (secrets come
from the app settings named by `secret_env_name`, which the build points at Key Vault), turns
each trigger payload into a `BindingEvent` with the binding's own normalizer, and runs the
handler. A handler failure propagates: the Functions host retries a queue message and moves it
to the `<queue>-poison` queue after `maxDequeueCount` attempts, retries a Kafka record and a
Cosmos DB change-feed batch by the function's retry policy, a blob by its own retries, an
Event Grid delivery by the event subscription's, answers an HTTP request with 500, and logs
a failed timer tick (not retried, as in Dapr). Imports no SDK itself: the trigger objects
come from the host.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from portabind.bundled import BundledFunction
from portabind.components import parse_metadata, placeholder_values
from portabind.events import BindingEvent, Metadata
from portabind.secrets import SecretResolver

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from portabind.app import App
    from portabind.metadata import BindingMetadata
    from portabind.runtime import Runtime


class Function(BundledFunction):
    """The user's app and components, as bundled next to `function_app.py`; each method
    returns the body of one trigger's function, which raises when the handler fails."""

    def __init__(self, app: App, runtime: Runtime, environ: Mapping[str, str]) -> None:
        super().__init__(app, runtime, environ)
        self._triggers: dict[str, BindingMetadata] = {}

    def trigger_metadata(self, name: str) -> BindingMetadata:
        """The input component's settings that shape its events (decodeBase64, ...). The host
        itself reads the queue, so secret fields are not resolved: they may be absent."""
        if name not in self._triggers:
            component, binding = self.runtime.binding(name)
            model = binding.metadata
            values = placeholder_values(component)
            resolver = SecretResolver(self.runtime.components, self.environ)
            validated = component.validated
            if validated is not None:
                # As the build validated it (no validation at cold start): the references
                # of plain fields resolved, secrets standing in as placeholders.
                plain = {key for key, kind in validated.resolve.values() if kind != "secret"}
                values.update(resolver.values(component, plain))
                self._triggers[name] = component.validated_metadata(model, values)
            else:
                names, secret = model.dapr_names(), model.secret_names()
                plain = {
                    key
                    for key in component.binding_values()
                    if names.get(key.lower(), key) not in secret
                }
                values.update(resolver.values(component, plain))
                self._triggers[name] = parse_metadata(component, model, values)
        return self._triggers[name]

    def queue(self, name: str) -> Callable[[Any], Any]:
        """Handles one `azure.functions.QueueMessage` of input component `name`."""
        from portabind.bindings.azure.storagequeues import queue_event

        def handle(message: Any) -> Any:
            decode = bool(getattr(self.trigger_metadata(name), "decode_base64", False))
            return self.app.handle(queue_event(name, message, decode_base64=decode))

        return handle

    def timer(self, name: str) -> Callable[[Any, Any], Any]:
        """Handles one `func.TimerRequest` of cron component `name`: Dapr's cron event plus
        the host's `invocationId` and `pastDue` (the tick fired late)."""
        from portabind.bindings.cron import event_for

        def handle(timer: Any, context: Any) -> Any:
            cron: Any = self.trigger_metadata(name)
            tick = event_for(name, cron.parsed())
            metadata = {
                **tick.metadata,
                "invocationId": str(context.invocation_id),
                "pastDue": "true" if timer.past_due else "false",
            }
            return self.app.handle(BindingEvent(name, tick.data, Metadata(metadata)))

        return handle

    def http(self, name: str) -> Callable[[Any, Any], Any]:
        """Answers one `func.HttpRequest` of the HTTP trigger `name` with the handler's
        result (a `func.HttpResponse`); the invocation id is the request id."""
        import azure.functions as func

        from portabind.bindings.http import http_reply, request_event

        def handle(request: Any, context: Any) -> Any:
            url = urlsplit(request.url)
            event = request_event(
                name,
                method=request.method,
                path=url.path,
                headers=request.headers.items(),
                query=url.query,
                body=request.get_body(),
                request_id=str(context.invocation_id),
            )
            reply = http_reply(self.app.handle(event))
            headers = {"Content-Type": reply.content_type} if reply.content_type else None
            return func.HttpResponse(reply.body, status_code=reply.status, headers=headers)

        return handle

    def kafka(self, name: str) -> Callable[[Any], Any]:
        """Handles one `func.KafkaEvent` of kafka component `name`, with the local
        listener's mapping (`event_from_record`)."""
        from portabind.bindings.kafka import event_from_record

        def handle(record: Any) -> Any:
            kafka: Any = self.trigger_metadata(name)
            return self.app.handle(
                event_from_record(
                    name,
                    value=record.get_body(),
                    key=record.key,
                    topic=record.topic or "",
                    partition=record.partition if record.partition is not None else -1,
                    offset=record.offset if record.offset is not None else -1,
                    timestamp_ms=_unix_ms(record.timestamp),
                    headers=_kafka_headers(record.headers),
                    metadata=kafka,
                )
            )

        return handle

    def rabbitmq(self, name: str) -> Callable[[bytes], Any]:
        """Handles one message of rabbitmq component `name`. The RabbitMQ extension hands
        Python the body only, so there are no header keys on this target."""
        from portabind.bindings.rabbitmq import event_from_message

        def handle(body: bytes) -> Any:
            return self.app.handle(event_from_message(name, body, None))

        return handle

    def service_bus(self, name: str) -> Callable[[Any], Any]:
        """Handles one `func.ServiceBusMessage` of Service Bus component `name`, mapped as the
        local listener maps the SDK's message (`message_event`). The host completes it when
        the handler returns and abandons it when it raises, until the queue's max delivery
        count moves it to the dead-letter sub-queue."""
        from portabind.bindings.azure.servicebusqueues import message_event

        def handle(message: Any) -> Any:
            return self.app.handle(message_event(name, message))

        return handle

    def event_hubs(self, name: str) -> Callable[[list[Any]], None]:
        """Handles one batch (`list[func.EventHubEvent]`, cardinality many) of Event Hubs
        component `name`, one event after the other in partition order. The first failure
        raises: the host retries the invocation by the function's retry policy (without end
        unless a Resiliency policy says otherwise) and checkpoints only after an invocation
        succeeded, so nothing past the failing event is checkpointed. Within this worker, the
        events of the batch handled before the failure are not handed over again."""
        from portabind.bindings.azure.eventhubs import functions_events

        handled: dict[str, int] = {}  # partition → the last sequence number handled here

        def handle(events: list[Any]) -> None:
            metadata: Any = self.trigger_metadata(name)
            batch = functions_events(
                name, events, all_properties=metadata.get_all_message_properties
            )
            for event in batch:
                partition = event.metadata.get("x-opt-partition-id", "")
                found = event.metadata.get("x-opt-sequence-number")
                sequence = None if found is None else int(found)
                if sequence is not None and sequence <= handled.get(partition, -1):
                    continue  # handled before a later event of this batch failed
                self.app.handle(event)
                if sequence is not None:
                    handled[partition] = sequence

        return handle

    def event_grid(self, name: str) -> Callable[[Any], Any]:
        """Handles one event of Event Grid component `name`, in either schema (the library
        hands a `func.EventGridEvent` or a `func.CloudEvent`), as the local webhook does."""
        from portabind.bindings.azure.eventgrid import event_from_json

        def handle(event: Any) -> Any:
            return self.app.handle(event_from_json(name, _event_fields(event)))

        return handle

    def cosmosdb(self, name: str) -> Callable[[Any], None]:
        """Handles one batch of the change feed of cosmosdb component `name`: one event per
        document, in order. A failure stops the batch and raises, so the function's retry
        policy delivers the batch again (documents before it included)."""
        from portabind.bindings.azure.cosmosdb import document_event

        def handle(documents: Any) -> None:
            for document in documents:
                self.app.handle(document_event(name, json.loads(document.to_json())))

        return handle

    def blob(self, name: str) -> Callable[[Any], Any]:
        """Handles one new or changed blob (`func.InputStream`) of blobstorage component
        `name`, as the local listener does."""
        from portabind.bindings.azure.blobstorage import blob_event

        def handle(stream: Any) -> Any:
            container, _, blob_name = str(stream.name).partition("/")
            found = stream.blob_properties or {}
            properties = {
                "size": stream.length,
                "eTag": found.get("ETag"),
                "contentType": found.get("ContentType"),
                "lastModified": found.get("LastModified"),
            }
            return self.app.handle(
                blob_event(name, container, blob_name, stream.read(), properties, stream.metadata)
            )

        return handle


def _event_fields(event: Any) -> dict[str, Any]:
    """A trigger's event object as the JSON Event Grid delivered."""
    if hasattr(event, "specversion"):  # func.CloudEvent
        fields = {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "time": event.time,
            "subject": event.subject,
            "datacontenttype": event.datacontenttype,
            "dataschema": event.dataschema,
            "data": event.get_json(),
        }
        return {**event.extension_attrs, **fields}
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event.event_time,
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }


def _unix_ms(timestamp: str | None) -> int | None:
    """The host's record timestamp (ISO 8601, .NET's up to 7 fractional digits) as Dapr's
    `__timestamp`: Unix milliseconds."""
    if not timestamp:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", timestamp.replace("Z", "+00:00"))
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def _kafka_headers(headers: list[Any] | None) -> list[tuple[str, bytes]]:
    """The host's record headers, `[{"Key": ..., "Value": <base64 of the bytes>}]` (the
    extension serializes the header's byte array), as (name, bytes) pairs."""
    return [
        (str(header["Key"]), base64.b64decode(header.get("Value") or "", validate=True))
        for header in headers or ()
    ]
