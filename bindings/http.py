"""`bindings.http`: call an HTTP endpoint, output only (Dapr's: components-contrib
`bindings/http/http.go`).

The operation picks the verb (`create` is POST). Request metadata `path` is appended to the
component's `url`; every request-metadata key whose first character is an upper-case letter
is sent as a header, as Dapr does. The response body is the response data; its metadata is
`statusCode`, `status` and each response header under Go's canonical name. With
`errorIfNot2XX` (the default) a non-2xx status raises `HttpStatusError`, which still carries
that response.

Inbound HTTP (a portabind extension: Dapr's http binding is output only) is turned into a
`BindingEvent` by `request_event` on every target, and the handler's return value into the
reply by `http_reply`, so the same request gives the same event and the same response on
every cloud and under `portabind run`.

httpx is imported when the client is made, so loading a component never needs it.
"""

from __future__ import annotations

import functools
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from portabind.annotations import (
    Choice,
    CommaList,
    ExtensionTrigger,
    field_name,
    parse_annotations,
    whole_number,
)
from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings import _tls
from portabind.errors import BindingError, UserError
from portabind.events import BindingEvent, BindingResponse, Metadata, to_bytes
from portabind.metadata import (
    AfterValidator,
    BeforeValidator,
    BindingMetadata,
    Duration,
    Secret,
    Truthy,
    is_truthy,
    model_validator,
    setting,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import timedelta

    import httpx

    from portabind.components import Component

log = logging.getLogger(__name__)

#: Dapr's dial and TLS-handshake timeouts; it sets no overall timeout unless asked.
CONNECT_TIMEOUT = 15.0
DEFAULT_CONTENT_TYPE = "application/json; charset=utf-8"
#: Verbs whose request carries the data as body (Dapr sends none for the others).
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
#: Trace context the Dapr runtime adds to request metadata; forwarded as headers.
_TRACE_KEYS = ("traceparent", "tracestate", "baggage")

_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?\s*$")
_MULTIPLIERS = {
    None: 1,
    "Ki": 1 << 10,
    "Mi": 1 << 20,
    "Gi": 1 << 30,
    "Ti": 1 << 40,
    "Pi": 1 << 50,
    "Ei": 1 << 60,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}


def parse_byte_size(value: Any) -> int:
    """Dapr's byte sizes (Kubernetes quantities): `100Mi`, `1k`, `2048`; negative allowed."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    sign = -1 if text.startswith("-") else 1
    match = _QUANTITY.match(text.lstrip("+-"))
    if not match:
        raise ValueError(f"{text!r} is not a byte size: use a number with an optional suffix")
    return sign * int(float(match.group(1)) * _MULTIPLIERS[match.group(2)])


ByteSize = Annotated[int, BeforeValidator(parse_byte_size)]


class HttpMetadata(BindingMetadata):
    binding_type = "bindings.http"

    url: str | None = setting(
        "url",
        None,
        description="base URL; request metadata `path` is appended (required for output)",
    )
    response_timeout: Duration | None = setting(
        "responseTimeout", None, description="timeout of a whole request (none by default)"
    )
    max_response_body_size: ByteSize = setting(
        "maxResponseBodySize",
        100 << 20,
        description="response bytes read at most (the rest is dropped); <= 0 reads all",
    )
    mtls_root_ca: str | None = setting(
        "MTLSRootCA", None, description="PEM text or file path of the CA that signs the server"
    )
    mtls_client_cert: str | None = setting(
        "MTLSClientCert", None, description="PEM text or file path of the client certificate"
    )
    mtls_client_key: Secret | None = setting(
        "MTLSClientKey", None, secret=True, description="PEM text or file path of its key"
    )
    mtls_renegotiation: (
        Literal["RenegotiateNever", "RenegotiateOnceAsClient", "RenegotiateFreelyAsClient"] | None
    ) = setting("MTLSRenegotiation", None, description="TLS renegotiation the client allows")
    security_token: Secret | None = setting(
        "securityToken", None, secret=True, description="value of `securityTokenHeader`"
    )
    security_token_header: str | None = setting(
        "securityTokenHeader", None, description="header that carries `securityToken`"
    )
    error_if_not_2xx: Truthy = setting(
        "errorIfNot2XX", True, description="a status outside 200-299 is an error"
    )

    @model_validator(mode="after")
    def _client_pair(self) -> HttpMetadata:
        if bool(self.mtls_client_cert) != bool(self.mtls_client_key):
            raise ValueError("MTLSClientCert and MTLSClientKey must be set together")
        return self


class HttpStatusError(BindingError):
    """A non-2xx reply under `errorIfNot2XX`. `response` holds what the server answered,
    since Dapr returns the response metadata with this error too."""

    def __init__(self, binding: str, operation: str, response: BindingResponse) -> None:
        super().__init__(
            binding, operation, f"received status code {response.metadata['statusCode']}"
        )
        self.response = response


def _pem_text(value: str | None) -> str | None:
    """Dapr takes each TLS value as PEM text or as the path of a PEM file."""
    if not value or "-----BEGIN" in value:
        return value or None
    with open(value, encoding="utf-8") as file:
        return file.read()


def ssl_context(metadata: HttpMetadata) -> ssl.SSLContext:
    """TLS 1.2 or newer; a custom root CA replaces the system roots, as in Dapr."""
    context = _tls.ssl_context(
        ca_cert=_pem_text(metadata.mtls_root_ca),
        client_cert=_pem_text(metadata.mtls_client_cert),
        client_key=_pem_text(metadata.secret("mtls_client_key")),
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Go refuses renegotiation unless told otherwise; OpenSSL cannot cap it at "once", so
    # both "AsClient" settings allow it.
    if metadata.mtls_renegotiation in (None, "RenegotiateNever"):
        context.options |= ssl.OP_NO_RENEGOTIATION
    return context


def _timeout(response_timeout: timedelta | None) -> httpx.Timeout:
    import httpx

    if response_timeout is None or response_timeout.total_seconds() <= 0:
        return httpx.Timeout(None, connect=CONNECT_TIMEOUT)
    seconds = response_timeout.total_seconds()
    return httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT))


def canonical_header(name: str) -> str:
    """Go's `CanonicalMIMEHeaderKey`: `content-type` → `Content-Type`."""
    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def target_url(base: str, metadata: Metadata) -> str:
    """`url`, or `url` + "/" + `path` without doubled slashes; `..` is refused."""
    if "path" not in metadata:
        return base
    url = base.rstrip("/") + "/" + metadata["path"].lstrip("/")
    if ".." in url:
        raise ValueError(f"invalid path: {metadata['path']}")
    return url


def request_headers(metadata: Metadata, *, has_body: bool) -> dict[str, str]:
    """Dapr's header rules: JSON defaults for Content-Type (with a body) and Accept, then
    every key starting with an upper-case letter, then the trace context."""
    keys = set(metadata)  # exact spelling: Dapr looks these two up case-sensitively
    headers: dict[str, str] = {}
    if has_body and "Content-Type" not in keys:
        headers["Content-Type"] = DEFAULT_CONTENT_TYPE
    if "Accept" not in keys:
        headers["Accept"] = DEFAULT_CONTENT_TYPE
    for key, value in metadata.items():
        if key[:1].isupper():
            headers[key] = value
    for key in _TRACE_KEYS:
        if key in metadata:
            headers[key] = metadata[key]
    return headers


class HttpOutput(OutputBinding[HttpMetadata]):
    operations = ("create", "get", "head", "post", "put", "patch", "delete", "options", "trace")

    def __init__(self, name: str, metadata: HttpMetadata) -> None:
        super().__init__(name, metadata)
        if not metadata.url:
            # Optional in the model only because an inbound-only trigger has no target.
            raise UserError(
                f"{name}: bindings.http needs `url` to send requests",
                hint="set the `url` metadata field to the endpoint's base URL",
            )
        self._url = metadata.url
        import httpx

        self._client = httpx.Client(
            verify=ssl_context(metadata), timeout=_timeout(metadata.response_timeout)
        )

    def close(self) -> None:
        self._client.close()

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        return self._send("create", "POST", data, metadata)

    def get(self, data: bytes, metadata: Metadata) -> BindingResponse:
        return self._send("get", "GET", data, metadata)

    def head(self, data: bytes, metadata: Metadata) -> BindingResponse:
        return self._send("head", "HEAD", data, metadata)

    def post(self, data: bytes, metadata: Metadata) -> BindingResponse:
        return self._send("post", "POST", data, metadata)

    def put(self, data: bytes, metadata: Metadata) -> BindingResponse:
        return self._send("put", "PUT", data, metadata)

    def patch(self, data: bytes, metadata: Metadata) -> BindingResponse:
        return self._send("patch", "PATCH", data, metadata)

    def delete(self, data: bytes, metadata: Metadata) -> BindingResponse:
        return self._send("delete", "DELETE", data, metadata)

    def options(self, data: bytes, metadata: Metadata) -> BindingResponse:
        return self._send("options", "OPTIONS", data, metadata)

    def trace(self, data: bytes, metadata: Metadata) -> BindingResponse:
        return self._send("trace", "TRACE", data, metadata)

    def _send(self, operation: str, verb: str, data: bytes, metadata: Metadata) -> BindingResponse:
        import httpx

        try:
            url = target_url(self._url, metadata)
        except ValueError as error:
            raise BindingError(self.name, operation, str(error)) from None
        has_body = verb in _WITH_BODY
        headers = request_headers(metadata, has_body=has_body)
        token = self.metadata.secret("security_token")
        if token and self.metadata.security_token_header:
            headers[self.metadata.security_token_header] = token
        error_if_not_2xx = (
            is_truthy(metadata["errorIfNot2XX"])
            if "errorIfNot2XX" in metadata
            else self.metadata.error_if_not_2xx
        )
        request = self._client.build_request(
            verb, url, headers=headers, content=data if has_body else None
        )
        timeout = self.metadata.response_timeout
        deadline = (
            time.monotonic() + timeout.total_seconds()
            if timeout is not None and timeout.total_seconds() > 0
            else None
        )
        try:
            response = self._client.send(request, stream=True)
            try:
                body = self._read(response, deadline)
            finally:
                response.close()
        except httpx.HTTPError as error:
            raise BindingError(self.name, operation, f"{type(error).__name__}: {error}") from error
        result = BindingResponse(body, _response_metadata(response))
        if error_if_not_2xx and not 200 <= response.status_code < 300:
            raise HttpStatusError(self.name, operation, result)
        return result

    def _read(self, response: httpx.Response, deadline: float | None) -> bytes:
        """The body, cut at `maxResponseBodySize` as Dapr's LimitReader does. httpx times
        each read; `deadline` bounds the whole request, as Dapr's request context does."""
        import httpx

        limit = self.metadata.max_response_body_size
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            if deadline is not None and time.monotonic() > deadline:
                raise httpx.ReadTimeout("responseTimeout elapsed", request=response.request)
            chunks.append(chunk[: limit - size] if limit > 0 else chunk)
            size += len(chunks[-1])
            if 0 < limit <= size:
                break
        return b"".join(chunks)


def _response_metadata(response: httpx.Response) -> Metadata:
    metadata = {
        canonical_header(name): ", ".join(response.headers.get_list(name))
        for name in dict.fromkeys(key.lower() for key in response.headers)
    }
    # Keys compare case-insensitively here (unlike Go's map), so a `Status` header must not
    # mask the status: it goes in last.
    metadata["statusCode"] = str(response.status_code)
    metadata["status"] = f"{response.status_code} {response.reason_phrase}".rstrip()
    return Metadata(metadata)


def request_event(
    name: str,
    *,
    method: str,
    path: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    query: str,
    body: bytes | str | None,
    request_id: str | None = None,
) -> BindingEvent:
    """The event of one inbound request: `data` is the body as the client sent it. Metadata:
    each request header under Go's canonical name (repeated headers joined with ", "),
    `query` (the raw query string, when there is one), then `method` (upper case), `path`
    (without the query string) and `requestId` (when the platform has one), which no
    header can mask."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    fields: dict[str, str] = {}
    for header, value in pairs:
        key = canonical_header(header)
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    if query:
        fields["query"] = query.removeprefix("?")
    fields["method"] = method.upper()
    fields["path"] = path
    if request_id:
        fields["requestId"] = request_id
    return BindingEvent(name, to_bytes(body), Metadata(fields))


@dataclass(frozen=True)
class HttpReply:
    """What an HTTP trigger answers; `content_type` is None when there is no body."""

    status: int
    body: bytes
    content_type: str | None


def http_reply(result: Any) -> HttpReply:
    """The response for a handler's return value: None → 204; bytes → the body as given
    (application/octet-stream); str → UTF-8 text; anything else (dict, list, a pydantic
    model) → JSON."""
    if result is None:
        return HttpReply(204, b"", None)
    if isinstance(result, bytes | bytearray | memoryview):
        return HttpReply(200, bytes(result), "application/octet-stream")
    if isinstance(result, str):
        return HttpReply(200, result.encode("utf-8"), "text/plain; charset=utf-8")
    return HttpReply(200, to_bytes(result), "application/json")


class TriggerMethod(Choice):
    """A verb an HTTP trigger may name: the ones every target's router accepts (Azure's
    `func.HttpMethod`)."""

    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"


class AuthLevel(Choice):
    """Who may call the trigger: Azure's auth levels; on GCP anything but `anonymous`
    deploys the function private (IAM)."""

    ANONYMOUS = "anonymous"
    FUNCTION = "function"
    ADMIN = "admin"


DEFAULT_PORT = 8080


def _rooted(path: str) -> str:
    return "/" + path.strip().lstrip("/")


class HttpAnnotations(ExtensionTrigger):
    """The inbound HTTP trigger (a portabind extension), read by the local listener and by
    every target: `trigger: "true"` turns it on; `path` (default `/<component>`), `method`
    (comma-separated; default: every method), `authLevel`, `port` (the local listener's)."""

    path: Annotated[str, AfterValidator(_rooted)] | None = setting(
        "path", None, description="the path the trigger answers (default /<component>)"
    )
    method: CommaList[TriggerMethod] = setting(
        "method", (), description="comma-separated methods (default: every method)"
    )
    auth_level: AuthLevel = setting("authLevel", AuthLevel.FUNCTION, description="auth level")
    port: Annotated[int, whole_number(1, 65535)] = setting(
        "port", DEFAULT_PORT, description="the local listener's port"
    )


@dataclass(frozen=True)
class Trigger:
    """An inbound HTTP trigger as the targets route it (`HttpAnnotations`)."""

    path: str
    methods: tuple[str, ...]
    auth_level: str
    port: int


def trigger_settings(name: str, annotations: HttpAnnotations) -> Trigger | None:
    """The trigger of component `name`, or None when `portabind.io/trigger` is not true.
    Raises ValueError for a path that is not literal: the local listener and Cloud Functions
    route by comparing paths."""
    if not annotations.trigger:
        return None
    path = annotations.path or f"/{name}"
    if any(char in path for char in "{}*?#%") or ".." in path or "//" in path:
        raise ValueError(
            f"annotation portabind.io/path: {path!r} must be a literal path "
            "(no templates, wildcards, query or '..')"
        )
    methods = tuple(method.value for method in annotations.method)
    return Trigger(path, methods, annotations.auth_level.value, annotations.port)


def component_trigger(component: Component) -> Trigger:
    """The trigger of an HTTP component a target deploys; a ComponentError names the
    annotation at fault, or asks for `portabind.io/trigger`."""
    annotations = parse_annotations(component, (HttpAnnotations,), partial=True)[HttpAnnotations]
    try:
        trigger = trigger_settings(component.name, annotations)
    except ValueError as error:
        raise component.error(str(error), field=field_name("path")) from None
    if trigger is None:
        raise component.error(
            "bindings.http receives requests only as a trigger (a portabind extension; "
            "Dapr's http binding is output only)",
            field=field_name("trigger"),
            hint='set the annotation portabind.io/trigger: "true"',
        )
    return trigger


def refusal(trigger: Trigger, method: str, path: str) -> tuple[HttpReply, dict[str, str]] | None:
    """The reply (and headers) for a request the trigger does not route: 404 for another
    path, 405 for another method; None when the handler should answer. Azure's router does
    this itself; the local listener and Cloud Functions (which hand every path to the
    function) use this."""
    text = "text/plain; charset=utf-8"
    if path != trigger.path:
        return HttpReply(404, b"not found", text), {}
    if trigger.methods and method.upper() not in trigger.methods:
        return HttpReply(405, b"method not allowed", text), {"Allow": ", ".join(trigger.methods)}
    return None


@dataclass(frozen=True)
class InboundRequest:
    """A request the local listener received (`serve_locally`)."""

    method: str
    #: Without the query string.
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes


#: How a local listener answers one request: the reply and its extra headers.
Respond = Callable[[InboundRequest], tuple[HttpReply, Mapping[str, str]]]
TEXT = "text/plain; charset=utf-8"
#: The address inbound HTTP inputs listen on when set: a container's (the dapr build sets
#: 0.0.0.0, so its Service reaches the trigger); unset, loopback only.
LISTEN_HOST_VARIABLE = "PORTABIND_LISTEN_HOST"


def serve_locally(name: str, port: int, respond: Respond, stop: threading.Event) -> None:
    """Serve HTTP on 127.0.0.1:`port` (or the address `LISTEN_HOST_VARIABLE` names) until
    `stop` is set, answering each request with `respond` (a thread per request); a `respond`
    that raises gives 500. The local side of every inbound HTTP input: the HTTP trigger,
    Event Grid's webhook."""
    import os
    from http.server import ThreadingHTTPServer

    handler = functools.partial(_Handler, binding=name, respond=respond)
    host = os.environ.get(LISTEN_HOST_VARIABLE) or "127.0.0.1"
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as error:
        raise UserError(
            f"{name}: cannot listen on {host}:{port}: {error.strerror}",
            hint="pick a free port for it (the annotation portabind.io/port, or the "
            "binding's port field)",
        ) from None
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
    )
    thread.start()
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def handler_failed(name: str, error: Exception) -> HttpReply:
    """The 500 a local listener answers when the handler raised, as the clouds do."""
    log.debug("%s: handler failed", name, exc_info=True)
    return HttpReply(500, f"handler failed: {type(error).__name__}: {error}".encode(), TEXT)


class HttpInput(InputBinding[HttpMetadata]):
    """The local side of the HTTP trigger (`portabind run`): a server on 127.0.0.1 at the
    trigger's port answering requests to its path and methods with the handler's result
    (`http_reply`); a handler that raises gives 500, as the clouds do. Each component
    listens on its own port."""

    annotations: HttpAnnotations

    def __init__(
        self, name: str, metadata: HttpMetadata, *, annotations: HttpAnnotations | None = None
    ) -> None:
        super().__init__(name, metadata, annotations=annotations or HttpAnnotations())

    def trigger(self) -> Trigger:
        try:
            trigger = trigger_settings(self.name, self.annotations)
        except ValueError as error:
            raise UserError(f"{self.name}: {error}") from None
        if trigger is None:
            raise UserError(
                f"{self.name}: bindings.http receives requests only as a trigger",
                hint='set the component annotation portabind.io/trigger: "true" '
                "(a portabind extension; Dapr's http binding is output only)",
            )
        return trigger

    def listen(self, deliver: Callable[[BindingEvent], Any], stop: threading.Event) -> None:
        import uuid

        trigger = self.trigger()

        def respond(request: InboundRequest) -> tuple[HttpReply, Mapping[str, str]]:
            refused = refusal(trigger, request.method, request.path)
            if refused is not None:
                return refused
            event = request_event(
                self.name,
                method=request.method,
                path=request.path,
                headers=request.headers,
                query=request.query,
                body=request.body,
                request_id=uuid.uuid4().hex,
            )
            try:
                return http_reply(deliver(event)), {}
            except Exception as error:
                return handler_failed(self.name, error), {}

        serve_locally(self.name, trigger.port, respond, stop)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __init__(self, *args: Any, binding: str, respond: Respond) -> None:
        self.binding = binding
        self.respond = respond
        super().__init__(*args)  # handles the request

    def _serve(self) -> None:
        target = urlsplit(self.path)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._answer(HttpReply(411, b"length required", TEXT))
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = InboundRequest(
            self.command, target.path, target.query, list(self.headers.items()), body
        )
        try:
            reply, headers = self.respond(request)
        except Exception as error:
            reply, headers = handler_failed(self.binding, error), {}
        self._answer(reply, headers)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def _answer(self, reply: HttpReply, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s: " + format, self.binding, *args)


binding = Binding(
    metadata=HttpMetadata, annotations=HttpAnnotations, output=HttpOutput, input=HttpInput
)
