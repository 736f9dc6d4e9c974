"""Dapr's app protocol: how one `BindingEvent` travels between a sidecar and the app.

Both sides use this module, so an event reads the same wherever it crosses: the sidecar side
(`portabind run --app-port`, delivering to any Dapr app) turns an event into a request; the
app side (an app served behind a real daprd) turns the request back into the event.

- **HTTP**: `POST /<route>` (the component's `route`, else its name), the payload as the body,
  `Content-Type: application/json`, each metadata entry as a header under Go's canonical name
  (daprd writes metadata into a Go `http.Header`), and `dapr-api-token` when the sidecar has
  an `APP_API_TOKEN`. Any 2xx acknowledges. Subscriptions are discovered by `OPTIONS /<route>`:
  2xx or 405 means the app takes the event.
- **gRPC**: `AppCallback.ListInputBindings` names the inputs the app takes;
  `AppCallback.OnBindingEvent(BindingEventRequest{name, data, metadata})` delivers one event,
  the metadata unchanged and the token as `dapr-api-token` call metadata. An OK status
  acknowledges.

The gRPC messages are the `dapr` package's generated protos, imported on first use, so
`import portabind` (and a deployed function) never loads gRPC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portabind.events import BindingEvent, Metadata

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dapr.proto.runtime.v1.appcallback_pb2 import BindingEventRequest

#: The header (HTTP) and call metadata key (gRPC) carrying Dapr's API and app tokens.
TOKEN_HEADER = "dapr-api-token"
CONTENT_TYPE = "application/json"
#: Headers that belong to the HTTP exchange, not to the event: the sidecar never writes
#: metadata under these names (hop-by-hop, framing, the token).
_TRANSPORT_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        TOKEN_HEADER,
    }
)
#: What the sidecar's HTTP client adds on its own; the app side does not read them back as
#: metadata either.
_CLIENT_HEADERS = _TRANSPORT_HEADERS | {"user-agent", "accept", "accept-encoding"}


def http_path(route: str) -> str:
    """The request path of an input binding's `route` (Dapr accepts it with or without `/`)."""
    return route if route.startswith("/") else f"/{route}"


def header_name(key: str) -> str:
    """Go's canonical form of a metadata key, as daprd sends it (`messageID` → `Messageid`,
    `x-opt-offset` → `X-Opt-Offset`; `__key` stays)."""
    return "-".join(part[:1].upper() + part[1:] for part in key.lower().split("-"))


def http_headers(metadata: Mapping[str, str], token: str | None = None) -> dict[str, str]:
    """The headers of the `POST` delivering an event with this metadata. Entries HTTP cannot
    carry as a header (a transport header's name, a line break, a binary `-bin` key) are
    left out."""
    headers = {
        header_name(key): value
        for key, value in metadata.items()
        if key.lower() not in _TRANSPORT_HEADERS
        and not key.lower().endswith("-bin")
        and "\n" not in value
        and "\r" not in value
    }
    headers["Content-Type"] = CONTENT_TYPE
    if token:
        headers[TOKEN_HEADER] = token
    return headers


def event_from_http(name: str, body: bytes, headers: Mapping[str, str]) -> BindingEvent:
    """The event an app receives in a `POST` from the sidecar: the body as data, every header
    but the transport's and the HTTP client's own as metadata (keys compare
    case-insensitively, docs/events.md)."""
    metadata = {k: v for k, v in headers.items() if k.lower() not in _CLIENT_HEADERS}
    return BindingEvent(name, body, Metadata(metadata))


def subscribed(options_status: int) -> bool:
    """Whether the answer to `OPTIONS /<route>` means the app takes the binding's events."""
    return 200 <= options_status < 300 or options_status == 405


def binding_event_request(event: BindingEvent) -> BindingEventRequest:
    """The `OnBindingEvent` request delivering `event`."""
    from dapr.proto.runtime.v1.appcallback_pb2 import BindingEventRequest

    return BindingEventRequest(name=event.name, data=event.data, metadata=dict(event.metadata))


def event_from_grpc(request: BindingEventRequest) -> BindingEvent:
    """The event an app receives in `OnBindingEvent`."""
    return BindingEvent(request.name, bytes(request.data), Metadata(dict(request.metadata)))


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The gRPC call metadata of a delivery: the app token, when there is one."""
    return ((TOKEN_HEADER, token),) if token else ()
