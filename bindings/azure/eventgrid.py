"""`bindings.azure.eventgrid`: Azure Event Grid, input and output (Dapr's: components-contrib
`bindings/azure/eventgrid/eventgrid.go`).

Output `create` publishes the data, one event or a JSON list of them, to `topicEndpoint` with
the access key, through the azure-eventgrid SDK: events in the CloudEvents schema (they have
`specversion`, `id`, `source`, `type`) go as a CloudEvents batch, events in the Event Grid
schema (`id`, `subject`, `eventType`, `eventTime`, `dataVersion`, `data`) as an Event Grid
batch, anything else as a custom-schema event. Dapr posts the data as it is; the SDK posts
the same events in a batch, which every topic accepts.

Input is a webhook. Locally (`portabind run`) it is served on 127.0.0.1:`handshakePort` at
the path of `subscriberEndpoint` (default `/api/events`) by the listener the HTTP trigger
uses, and answers Event Grid's handshakes: the CloudEvents one (`OPTIONS`, echoing
`WebHook-Request-Origin`) and the Event Grid schema's subscription validation event (with
its `validationCode`). It does not check Entra ID tokens, which need Azure. On Azure the
build makes the function an Event Grid trigger, and the deploy creates the event
subscription (`az eventgrid event-subscription create` on `scope`): the subscription is part
of the deployment, not of a function's cold start as in Dapr, whose input creates it when it
starts.

Each event of a delivery is one `BindingEvent` (`event_from_json`, the same on every
target): `data` is the event's `data` (a JSON value as compact JSON, a string as its text,
CloudEvents `data_base64` decoded); the metadata are the event's own fields: `id`,
`subject`, and `topic`, `eventType`, `eventTime`, `dataVersion` (Event Grid schema) or
`source`, `type`, `time`, `specversion`, `datacontenttype`, `dataschema` and the extension
attributes (CloudEvents, with `eventType` = `type` too), times as RFC 3339.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from portabind.annotations import text_matching, whole_number
from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings.azure._storage import EntraMetadata, azure_errors
from portabind.bindings.http import (
    TEXT,
    HttpReply,
    InboundRequest,
    handler_failed,
    serve_locally,
)
from portabind.errors import BindingError, UserError
from portabind.events import (
    BindingEvent,
    BindingResponse,
    Metadata,
    compact_json,
    metadata_value,
    rfc3339,
)
from portabind.metadata import AfterValidator, Secret, setting

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Mapping

DEFAULT_PATH = "/api/events"
DEFAULT_PORT = 8080
VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
#: The Event Grid schema's fields that become metadata (the rest is `data`).
EVENT_GRID_FIELDS = ("id", "topic", "subject", "eventType", "eventTime", "dataVersion")
_FRACTION = re.compile(r"(\.\d{6})\d+")


def _url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.strip()


Url = Annotated[str, AfterValidator(_url)]


class EventGridMetadata(EntraMetadata):
    binding_type = "bindings.azure.eventgrid"

    topic_endpoint: Url | None = setting(
        "topicEndpoint", None, description="the topic's URL events are published to (output)"
    )
    access_key: Secret | None = setting(
        "accessKey", None, secret=True, description="the topic's access key (output)"
    )
    subscriber_endpoint: Url | None = setting(
        "subscriberEndpoint",
        None,
        description="the webhook's public URL (input); its path is where events arrive "
        f"(default {DEFAULT_PATH})",
    )
    handshake_port: Annotated[int, whole_number(1, 65535)] = setting(
        "handshakePort", DEFAULT_PORT, description="the local webhook listener's port (input)"
    )
    scope: str | None = setting(
        "scope", None, description="the resource the event subscription is on (input)"
    )
    event_subscription_name: (
        Annotated[
            str,
            text_matching(
                r"[A-Za-z0-9-]{3,64}", "3 to 64 letters, digits and hyphens (Azure's rule)"
            ),
        ]
        | None
    ) = setting(
        "eventSubscriptionName", None, description="the event subscription (default: component)"
    )
    azure_subscription_id: str | None = setting(
        "azureSubscriptionId",
        None,
        aliases=("subscriptionID",),
        description="the Azure subscription of `scope` (input)",
    )

    def subscriber_path(self) -> str:
        """Where events arrive: the path of `subscriberEndpoint`, `/api/events` when it has
        none (as Dapr)."""
        path = urlsplit(self.subscriber_endpoint or "").path
        return path if path not in ("", "/") else DEFAULT_PATH


def _moment(value: Any) -> str:
    """A time of an event as RFC 3339 in UTC; Azure writes up to 7 fractional digits."""
    if isinstance(value, datetime):
        return rfc3339(value)
    text = str(value)
    try:
        return rfc3339(datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("Z", "+00:00"))))
    except ValueError:
        return text


def _payload(value: Any) -> bytes:
    """An event's `data` as the producer sent it: a string as its text, other JSON as
    compact JSON, nothing as empty."""
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8")
    return compact_json(value)


def is_cloud_event(event: Mapping[str, Any]) -> bool:
    return "specversion" in event


def event_from_json(name: str, event: Mapping[str, Any]) -> BindingEvent:
    """The `BindingEvent` of one delivered event, in either schema (module docstring)."""
    if is_cloud_event(event):
        encoded = event.get("data_base64")
        if encoded is not None:
            try:
                data = base64.b64decode(str(encoded), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"{name}: event {event.get('id')}: bad data_base64") from None
        else:
            data = _payload(event.get("data"))
        fields = {
            key: _moment(value) if key == "time" else metadata_value(value)
            for key, value in event.items()
            if key not in ("data", "data_base64") and value is not None
        }
        if "type" in fields:
            fields["eventType"] = fields["type"]
        return BindingEvent(name, data, Metadata(fields))
    fields = {
        key: _moment(event[key]) if key == "eventTime" else metadata_value(event[key])
        for key in (*EVENT_GRID_FIELDS, "metadataVersion")
        if event.get(key) is not None
    }
    return BindingEvent(name, _payload(event.get("data")), Metadata(fields))


class EventGridOutput(OutputBinding[EventGridMetadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: EventGridMetadata) -> None:
        super().__init__(name, metadata)
        key = metadata.secret("access_key")
        if not metadata.topic_endpoint or not key:
            missing = "topicEndpoint" if not metadata.topic_endpoint else "accessKey"
            raise UserError(
                f"{name}: bindings.azure.eventgrid needs {missing} to publish events",
                hint="set topicEndpoint (the topic's URL) and accessKey (a secretKeyRef) in "
                "the component",
            )
        from azure.core.credentials import AzureKeyCredential
        from azure.eventgrid import EventGridPublisherClient

        self._client = EventGridPublisherClient(metadata.topic_endpoint, AzureKeyCredential(key))

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        try:
            events = json.loads(data)
        except ValueError:
            raise BindingError(
                self.name, "create", "the data must be a JSON event or a JSON list of events"
            ) from None
        if not isinstance(events, list):
            events = [events]
        if not events:
            raise BindingError(self.name, "create", "the list of events is empty")
        with azure_errors(self.name, "create"):
            self._client.send(events)
        return BindingResponse()

    def close(self) -> None:
        self._client.close()


def validation_reply(events: list[Any]) -> HttpReply | None:
    """The answer to the Event Grid schema's subscription validation event, None when the
    delivery is not one."""
    for event in events:
        if isinstance(event, dict) and VALIDATION_EVENT in (
            event.get("eventType"),
            event.get("type"),
        ):
            code = (event.get("data") or {}).get("validationCode", "")
            body = json.dumps({"validationResponse": code}).encode()
            return HttpReply(200, body, "application/json")
    return None


class EventGridInput(InputBinding[EventGridMetadata]):
    """The webhook, served locally (module docstring)."""

    def listen(self, deliver: Callable[[BindingEvent], Any], stop: threading.Event) -> None:
        path = self.metadata.subscriber_path()

        def respond(request: InboundRequest) -> tuple[HttpReply, Mapping[str, str]]:
            if request.path != path:
                return HttpReply(404, b"404 Not found", TEXT), {}
            if request.method == "OPTIONS":  # the CloudEvents webhook handshake
                origin = dict((k.lower(), v) for k, v in request.headers).get(
                    "webhook-request-origin", ""
                )
                allowed = {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"}
                return HttpReply(200, b"", None), allowed
            if request.method != "POST":
                return HttpReply(405, b"405 Method Not Allowed", TEXT), {"Allow": "POST, OPTIONS"}
            try:
                body = json.loads(request.body)
            except ValueError:
                return HttpReply(400, b"the body is not JSON", TEXT), {}
            events = body if isinstance(body, list) else [body]
            if not all(isinstance(event, dict) for event in events):
                return HttpReply(400, b"the body is not an event or a list of events", TEXT), {}
            validation = validation_reply(events)
            if validation is not None:
                return validation, {}
            try:
                for event in events:
                    deliver(event_from_json(self.name, event))
            except Exception as error:  # Event Grid retries the delivery
                return handler_failed(self.name, error), {}
            return HttpReply(200, b"", None), {}

        serve_locally(self.name, self.metadata.handshake_port, respond, stop)


binding = Binding(
    metadata=EventGridMetadata,
    output=EventGridOutput,
    input=EventGridInput,
    requires=("azure-eventgrid", "azure-identity", "httpx"),  # httpx: the http module it uses
)
