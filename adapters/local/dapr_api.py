"""Dapr's HTTP API for output bindings, served by `portabind run` on 127.0.0.1.

The sidecar's contract, so code written against a real `daprd` (the Dapr SDKs, `curl`)
works unchanged:

- `POST|PUT /v1.0/bindings/<name>` with `{"data", "metadata", "operation"}`. `data` is
  re-serialised as JSON, so a string keeps its quotes and a missing `data` becomes `null`.
  Request metadata reaches the binding as sent; portabind then compares its keys
  case-insensitively, as everywhere (docs/events.md), where daprd's bindings compare them
  exactly.
- 200 with the raw response data; 204 only when the binding returned nothing at all (no
  data, no metadata). One `metadata.<key>` header per response metadata entry, on errors
  too (an http output's `statusCode`). 400 `ERR_MALFORMED_REQUEST`; 500
  `ERR_INVOKE_OUTPUT_BINDING` with daprd's messages.
- `GET /v1.0/healthz` and `/v1.0/healthz/outbound` (204); `GET /v1.0/metadata`.
- With an API token (`DAPR_API_TOKEN`), a request without the matching `dapr-api-token`
  header gets 401; the health routes are exempt, as in daprd.

Robustness: a malformed request (bad `Content-Length`, bad chunking, JSON nested too deep
for Python's parser, numbers out of float64 range) gets a 4xx answer, never a dropped
connection; bodies over the limit (`--dapr-http-max-request-size`) are refused unread; a
connection silent for `idle_timeout` is closed; at most `MAX_CONNECTIONS` are served at once,
further ones wait in the listen backlog.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from portabind.appprotocol import TOKEN_HEADER
from portabind.errors import BindingError, UserError
from portabind.events import Metadata

if TYPE_CHECKING:
    from collections.abc import Mapping

    from portabind.events import BindingResponse
    from portabind.runtime import Runtime

HOST = "127.0.0.1"
BINDINGS_PATH = "/v1.0/bindings/"
HEALTH_PATHS = frozenset({"/v1.0/healthz", "/v1.0/healthz/outbound"})
METADATA_PATH = "/v1.0/metadata"
_GET_PATHS = HEALTH_PATHS | {METADATA_PATH}
#: daprd's defaults: a 4 MB request body; Dapr's own ports.
DEFAULT_MAX_REQUEST_MB = 4
DEFAULT_HTTP_PORT = 3500
DEFAULT_GRPC_PORT = 50001
#: Seconds a connection may stay silent (mid-request or idle between requests).
IDLE_TIMEOUT = 30.0
#: How long a closing connection reads and drops what its client still sends (Go's
#: net/http waits as long), so the client reads the answer before the connection resets.
LINGER_SECONDS = 0.5
#: Connections served at once; each holds one thread while open.
MAX_CONNECTIONS = 64
_JSON = "application/json"
#: A response metadata entry becomes a header as Go's net/http writes one: a value's CR and
#: LF turned to spaces (a value can neither end the head nor add a header), its text as
#: UTF-8; an entry whose key is not a header token is left out.
_NEWLINES_TO_SPACES = str.maketrans("\r\n", "  ")
_HEADER_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def metadata_headers(metadata: Mapping[str, str]) -> list[str]:
    """The `metadata.<key>` header lines of response metadata."""
    return [
        f"metadata.{key}: {value.translate(_NEWLINES_TO_SPACES)}"
        for key, value in metadata.items()
        if _HEADER_TOKEN.fullmatch(key)
    ]


#: The standard library's limits on a request head: the length of a line, the number of headers.
_MAX_LINE = 65536
_MAX_HEADERS = 100
_HTTP_VERSION = re.compile(r"HTTP/(\d{1,10})\.(\d{1,10})")


@dataclass(frozen=True)
class ApiConfig:
    """How the sidecar APIs (HTTP and gRPC) present themselves and guard their door."""

    app_id: str = "portabind"
    api_token: str | None = None
    app_port: int | None = None
    app_protocol: str = "http"
    max_request_bytes: int = DEFAULT_MAX_REQUEST_MB << 20
    idle_timeout: float = IDLE_TIMEOUT


class ApiFailure(Exception):
    """An API error with daprd's status, error code and message, and the response metadata
    daprd sends with it."""

    def __init__(
        self, status: HTTPStatus, code: str, message: str, metadata: Metadata | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.metadata = metadata if metadata is not None else Metadata()


def malformed(reason: str) -> ApiFailure:
    return ApiFailure(
        HTTPStatus.BAD_REQUEST, "ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {reason}"
    )


def _parse_request(body: bytes) -> tuple[bytes, Metadata, str]:
    """The binding payload, metadata and operation of an output binding request."""
    try:
        request = _DECODER.decode(body.decode())  # UTF-8 only, as Go's decoder reads JSON
        if not isinstance(request, dict):
            raise ValueError(f"expected a JSON object, got {type(request).__name__}")
        metadata = request.get("metadata") or {}
        if not isinstance(metadata, dict) or not all(
            isinstance(value, str) for value in metadata.values()
        ):
            raise ValueError("metadata must be an object of strings")
        operation = request.get("operation") or ""
        if not isinstance(operation, str):
            raise ValueError("operation must be a string")
        data = go_json(request.get("data")).encode()
    except RecursionError:
        raise malformed("JSON nested too deeply") from None
    except OverflowError:  # a number beyond float64, which daprd refuses as well
        raise malformed("a number is out of float64 range") from None
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError included
        raise malformed(str(error)) from None
    return data, Metadata(metadata), operation


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name}")  # Go's decoder knows no NaN or Infinity


#: Made once: `json.loads` with an option builds a decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


#: What Go's encoder escapes inside strings besides JSON's own escapes.
_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def _go_number(value: float) -> str:
    """Go's float64 encoding: shortest digits, fixed notation for 1e-6 <= |x| < 1e21, else
    exponent with at least one digit (`1e-7`, `1e+21`)."""
    if value != 0 and not 1e-6 <= abs(value) < 1e21:
        mantissa, _, exponent = repr(value).partition("e")
        if len(exponent) == 3 and exponent.startswith("-0"):  # Go writes e-7, not e-07
            exponent = "-" + exponent[2]
        return f"{mantissa}e{exponent}"
    text = format(Decimal(repr(value)), "f")
    return text.removesuffix(".0") if "." in text else text


def go_json(value: Any) -> str:
    """`data` as the sidecar's `json.Marshal` writes it after decoding the request into Go's
    `any`: compact, object keys sorted, every number a float64, `<>&` escaped. A string
    keeps its quotes; an absent `data` is `null`."""
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{go_json(k)}:{go_json(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).translate(_GO_ESCAPES)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return _go_number(float(value))


def invoke_output(
    runtime: Runtime, name: str, operation: str, data: bytes, metadata: Metadata
) -> BindingResponse:
    """Run one output binding request as the sidecar does; raises `ApiFailure` on any error,
    with the response metadata the binding returned with it."""

    def failure(reason: str, returned: Metadata | None = None) -> ApiFailure:
        return ApiFailure(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            "ERR_INVOKE_OUTPUT_BINDING",
            f"error invoking output binding {name}: {reason}",
            returned,
        )

    if not operation:
        raise failure("operation field is missing from request")
    if name not in runtime.names("output"):
        raise failure(f"couldn't find output binding {name}")
    try:
        client = runtime.output(name)
    except UserError as error:  # the component is wrong (a bad field, a missing secret)
        raise failure(error.message) from None
    if operation not in client.operations:
        raise failure(
            f"binding {name} does not support operation {operation}. supported operations:"
            + " ".join(client.operations)
        )
    try:
        return client.invoke(operation, data, metadata)
    except BindingError as error:
        raise failure(error.detail, error.response.metadata if error.response else None) from None
    except UserError as error:
        raise failure(error.message) from None
    except Exception as error:  # the service or SDK failed: the caller gets daprd's 500
        raise failure(f"{type(error).__name__}: {error}") from None


def runtime_version() -> str:
    return f"portabind-{version('portabind')}"


def capabilities(runtime: Runtime) -> dict[str, list[str]]:
    """daprd's capabilities per component name: INPUT_BINDING, OUTPUT_BINDING."""
    found: dict[str, list[str]] = {}
    for direction in ("input", "output"):
        for name in runtime.names(direction):
            found.setdefault(name, []).append(f"{direction.upper()}_BINDING")
    return found


def metadata_document(runtime: Runtime, config: ApiConfig) -> dict[str, Any]:
    """`GET /v1.0/metadata` as daprd answers it (empty fields are left out, as Go's
    `omitempty` does)."""
    abilities = capabilities(runtime)
    components = []
    for component in runtime.components.components.values():
        entry: dict[str, Any] = {
            "name": component.name,
            "type": component.type,
            "version": component.version,
        }
        if abilities.get(component.name):
            entry["capabilities"] = abilities[component.name]
        components.append(entry)
    connection: dict[str, Any] = {"protocol": config.app_protocol, "channelAddress": HOST}
    if config.app_port is not None:
        connection["port"] = config.app_port
    return {
        "id": config.app_id,
        "runtimeVersion": runtime_version(),
        "components": components,
        "extended": {"daprRuntimeVersion": runtime_version()},
        "appConnectionProperties": connection,
        "actorRuntime": {"runtimeStatus": "DISABLED", "hostReady": False},
    }


def _content_length(value: str, limit: int) -> int:
    if not value.isdigit() or not value.isascii():  # Go refuses signs, spaces, hex alike
        raise ApiFailure(
            HTTPStatus.BAD_REQUEST, "ERR_MALFORMED_REQUEST", f"bad Content-Length {value[:40]!r}"
        )
    length = int(value)
    if length > limit:
        raise _too_large(limit)
    return length


@functools.lru_cache(maxsize=1)
def _http_date(second: int) -> str:
    """The `Date` header, formatted once a second."""
    return formatdate(second, usegmt=True)


def _too_large(limit: int) -> ApiFailure:
    return malformed(
        f"the body exceeds the limit of {limit} bytes (raise it with "
        "--dapr-http-max-request-size MB)"
    )


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as SDK clients expect of the sidecar
    # An unparsable request line is answered with a status line too (not HTTP/0.9's bare body).
    default_request_version = "HTTP/1.0"
    # Small answers go out at once: with Nagle's algorithm a keep-alive client's delayed ACK
    # costs each call about 40 ms.
    disable_nagle_algorithm = True
    wbufsize = -1  # head and body leave in one write, flushed after each request

    #: The request line as read by `handle_one_request`, before `parse_request`.
    raw_requestline: bytes
    #: The request's headers, names lower-cased; the first of repeated ones counts.
    fields: dict[str, str]

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.config.idle_timeout)  # per read, idle or not

    def parse_request(self) -> bool:
        """The request line and headers, with the standard library's limits (a line of 64 KB,
        100 headers) and keep-alive and `Expect: 100-continue` handling. The headers go into
        a plain dict: the standard library's e-mail parser cost about a third of what the
        server spent on a request. Anything but `METHOD PATH HTTP/1.x` is 400 (505 for a
        later major version)."""
        self.close_connection = True
        self.request_version = self.default_request_version
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        version = _HTTP_VERSION.fullmatch(words[2]) if len(words) == 3 else None
        if version is None or version[1] != "1":
            if version is not None and int(version[1]) > 1:
                self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"HTTP/{version[1]}")
            else:
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request line {self.requestline!r}")
            return False
        self.command, self.path, self.request_version = words
        if self.path.startswith("//"):  # as the standard library: one leading slash
            self.path = "/" + self.path.lstrip("/")
        fields: dict[str, str] = {}
        for _ in range(_MAX_HEADERS + 1):
            line = self.rfile.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            name, colon, value = str(line, "iso-8859-1").partition(":")
            if not colon or not name or name != name.strip():  # Go refuses these too
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad header line {line[:80]!r}")
                return False
            fields.setdefault(name.lower(), value.strip())
        else:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
            return False
        self.fields = fields
        connection = fields.get("connection", "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive"
        )
        if self.request_version != "HTTP/1.0" and fields.get("expect", "").lower() == (
            "100-continue"
        ):
            return self.handle_expect_100()
        return True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the console reports output calls itself."""

    def _send(
        self,
        status: HTTPStatus,
        body: bytes | None = None,
        metadata: Metadata | None = None,
        content_type: str = _JSON,
    ) -> None:
        """The answer in one write, its head composed at once rather than header by header
        (`send_response` and `send_header` cost as much as reading the request)."""
        lines = [
            f"{self.protocol_version} {status.value} {status.phrase}",
            f"Server: {self.version_string()}",
            f"Date: {_http_date(int(time.time()))}",
        ]
        lines += metadata_headers(metadata or {})
        if body is not None:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body or b'')}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.wfile.write(head + body if body and self.command != "HEAD" else head)

    def _error(self, failure: ApiFailure) -> None:
        body = {"errorCode": failure.code, "message": failure.message}
        self._send(failure.status, json.dumps(body).encode(), failure.metadata)

    def _read_body(self) -> bytes:
        """The request body, within the size limit. On any failure the connection closes:
        the rest of the request cannot be told apart from the next one."""
        limit = self.server.config.max_request_bytes
        try:
            if self.fields.get("transfer-encoding", "").lower() == "chunked":
                return self._read_chunked(limit)
            length = _content_length(self.fields.get("content-length") or "0", limit)
        except ApiFailure:
            self.close_connection = True
            raise
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True
            raise malformed("the body ended before Content-Length bytes")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise malformed("bad chunked encoding") from None
            if size < 0:
                raise malformed("bad chunked encoding")
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers carry nothing the API reads
                return bytes(body)
            if len(body) + size > limit:
                raise _too_large(limit)
            body += self.rfile.read(size)
            self.rfile.readline(1024)

    def _authorised(self, path: str) -> bool:
        token = self.server.config.api_token
        if not token or self.fields.get(TOKEN_HEADER) == token:
            return True
        return self.command == "GET" and path in HEALTH_PATHS

    def _route(self) -> None:
        path = self.path.split("?", 1)[0]
        if not self._authorised(path):
            self.close_connection = True  # the body stays unread
            self._send(HTTPStatus.UNAUTHORIZED, b"invalid api token\n", content_type="text/plain")
            return
        try:
            if self.command in ("POST", "PUT") and path.startswith(BINDINGS_PATH):
                self._output(path.removeprefix(BINDINGS_PATH), self._read_body())
            elif self.command == "GET" and path in HEALTH_PATHS:
                self._send(HTTPStatus.NO_CONTENT)
            elif self.command == "GET" and path == METADATA_PATH:
                document = metadata_document(self.server.runtime, self.server.config)
                self._send(HTTPStatus.OK, json.dumps(document).encode())
            else:
                self._read_body()  # keep the connection usable for the next request
                known = path.startswith(BINDINGS_PATH) or path in _GET_PATHS
                self._send(HTTPStatus.METHOD_NOT_ALLOWED if known else HTTPStatus.NOT_FOUND, b"")
        except ApiFailure as failure:
            self._error(failure)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _route

    def _output(self, name: str, body: bytes) -> None:
        if not name or "/" in name:
            self._send(HTTPStatus.NOT_FOUND, b"")
            return
        data, metadata, operation = _parse_request(body)
        response = invoke_output(self.server.runtime, name, operation, data, metadata)
        if response.data is None and not response.metadata:
            self._send(HTTPStatus.NO_CONTENT)  # daprd: the binding returned no response
        else:
            self._send(HTTPStatus.OK, response.data or b"", response.metadata)


class _Server(ThreadingHTTPServer):
    """One thread per open connection, at most `MAX_CONNECTIONS` of them: the accept loop
    waits for a free slot, so further connections queue in the listen backlog."""

    daemon_threads = True
    request_queue_size = socket.SOMAXCONN

    def __init__(self, port: int, runtime: Runtime, config: ApiConfig) -> None:
        self.runtime = runtime
        self.config = config
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._stopping = threading.Event()
        super().__init__((HOST, port), _Handler)

    def shutdown_request(self, request: Any) -> None:
        """Close a connection as Go's net/http does one whose request body went unread
        (refused, too large): the answer is out and the write side shut, then what the
        client still sends is read and dropped for up to `LINGER_SECONDS`, so the close
        does not reset the connection under a client still writing its body, before it
        has read the answer."""
        try:
            request.shutdown(socket.SHUT_WR)
            request.settimeout(LINGER_SECONDS)
            deadline = time.monotonic() + LINGER_SECONDS
            while time.monotonic() < deadline and request.recv(65536):
                pass
        except OSError:  # the client went first, or stayed silent: nothing left to wait for
            pass
        self.close_request(request)

    def process_request(self, request: Any, client_address: Any) -> None:
        while not self._slots.acquire(timeout=0.2):
            if self._stopping.is_set():
                self.shutdown_request(request)
                return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request is not worth a traceback on the console."""
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            logging.getLogger(__name__).error("Dapr HTTP API: %s: %s", type(error).__name__, error)

    def stop(self) -> None:
        self._stopping.set()
        self.shutdown()
        self.server_close()


class DaprApi:
    """The HTTP API server on a background thread; `start()`, then `stop()`."""

    def __init__(self, runtime: Runtime, port: int, config: ApiConfig | None = None) -> None:
        self._runtime = runtime
        self._requested_port = port
        self._config = config if config is not None else ApiConfig()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self._server = _Server(self._requested_port, self._runtime, self._config)
        except OSError as error:
            raise UserError(
                f"cannot serve the Dapr HTTP API on {HOST}:{self._requested_port}: "
                f"{error.strerror}",
                hint="stop what uses the port (a Dapr sidecar?) or pass --dapr-http-port",
            ) from None
        # stop() waits for the loop's next poll: 0.05 s rather than socketserver's 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="dapr-http-api",
            daemon=True,
        )
        self._thread.start()

    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError("the Dapr API is not running")
        return f"http://{HOST}:{self._server.server_address[1]}"

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
