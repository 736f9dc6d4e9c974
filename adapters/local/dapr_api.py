"""Dapr's HTTP API for output bindings, served by `portabind run` on 127.0.0.1.

Exactly the sidecar's contract (dapr-bindings.md §1.2), so code written against a real
`daprd` (the Dapr SDKs, `curl`) works unchanged:

- `POST|PUT /v1.0/bindings/<name>` with `{"data", "metadata", "operation"}`. `data` is
  re-serialised as JSON, so a string keeps its quotes and a missing `data` becomes `null`.
- 200 with the raw response data and one `metadata.<key>` header per response metadata
  entry; 204 when the binding returned no data; 400 `ERR_MALFORMED_REQUEST`; 500
  `ERR_INVOKE_OUTPUT_BINDING` with Dapr's messages.
- `GET /v1.0/healthz` (204) and `GET /v1.0/metadata` (the loaded components).
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from portabind.errors import BindingError, UserError
from portabind.events import Metadata

if TYPE_CHECKING:
    from portabind.events import BindingResponse
    from portabind.runtime import Runtime

HOST = "127.0.0.1"
BINDINGS_PATH = "/v1.0/bindings/"
_JSON = "application/json"


class _Failure(Exception):
    """An API error with Dapr's status, error code and message."""

    def __init__(self, status: HTTPStatus, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _parse_request(body: bytes) -> tuple[bytes, Metadata, str]:
    """The binding payload, metadata and operation of an output binding request."""
    try:
        request = json.loads(body, parse_constant=_refuse_constant)
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
    except ValueError as error:
        raise _Failure(
            HTTPStatus.BAD_REQUEST,
            "ERR_MALFORMED_REQUEST",
            f"failed deserializing HTTP body: {error}",
        ) from None
    return go_json(request.get("data")).encode(), Metadata(metadata), operation


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name}")  # Go's decoder knows no NaN or Infinity


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


def invoke_output(runtime: Runtime, name: str, body: bytes) -> BindingResponse:
    """Run one output binding request as the sidecar does; raises `_Failure` on any error."""
    data, metadata, operation = _parse_request(body)

    def failure(reason: str) -> _Failure:
        return _Failure(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            "ERR_INVOKE_OUTPUT_BINDING",
            f"error invoking output binding {name}: {reason}",
        )

    if not operation:
        raise failure("operation field is missing from request")
    if name not in runtime.names("output"):
        raise failure(f"couldn't find output binding {name}")
    client = runtime.output(name)
    if operation not in client.operations:
        raise failure(
            f"binding {name} does not support operation {operation}. supported operations:"
            + " ".join(client.operations)
        )
    try:
        return client.invoke(operation, data, metadata)
    except BindingError as error:
        raise failure(error.detail) from None
    except UserError as error:
        raise failure(error.message) from None
    except Exception as error:  # the service or SDK failed: the caller gets Dapr's 500
        raise failure(f"{type(error).__name__}: {error}") from None


def _metadata_document(runtime: Runtime) -> dict[str, Any]:
    """`GET /v1.0/metadata`, shaped like the sidecar's answer."""
    return {
        "id": "portabind",
        "runtimeVersion": f"portabind-{version('portabind')}",
        "enabledFeatures": [],
        "components": [
            {"name": c.name, "type": c.type, "version": c.version, "capabilities": []}
            for c in runtime.components.components.values()
        ],
        "extended": {},
        "subscriptions": [],
        "httpEndpoints": [],
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as SDK clients expect of the sidecar

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the console reports output calls itself."""

    def _send(
        self,
        status: HTTPStatus,
        body: bytes | None = None,
        headers: Metadata | None = None,
    ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(f"metadata.{key}", value)
        if body is not None:
            self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _error(self, failure: _Failure) -> None:
        body = {"errorCode": failure.code, "message": failure.message}
        self._send(failure.status, json.dumps(body).encode())

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _output(self) -> None:
        body = self._body()
        name = self.path.split("?", 1)[0].removeprefix(BINDINGS_PATH)
        if not self.path.startswith(BINDINGS_PATH) or not name or "/" in name:
            self._send(HTTPStatus.NOT_FOUND, b"")
            return
        try:
            response = invoke_output(self.server.runtime, name, body)
        except _Failure as failure:
            self._error(failure)
            return
        if response.data is None:
            self._send(HTTPStatus.NO_CONTENT, headers=response.metadata)
        else:
            self._send(HTTPStatus.OK, response.data, response.metadata)

    do_POST = _output
    do_PUT = _output

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/v1.0/healthz":
            self._send(HTTPStatus.NO_CONTENT)
        elif path == "/v1.0/metadata":
            self._send(HTTPStatus.OK, json.dumps(_metadata_document(self.server.runtime)).encode())
        else:
            self._send(HTTPStatus.NOT_FOUND, b"")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, runtime: Runtime) -> None:
        self.runtime = runtime
        super().__init__((HOST, port), _Handler)


class DaprApi:
    """The API server on a background thread; `start()`, then `stop()`."""

    def __init__(self, runtime: Runtime, port: int) -> None:
        self._runtime = runtime
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self._server = _Server(self._requested_port, self._runtime)
        except OSError as error:
            raise UserError(
                f"cannot serve the Dapr HTTP API on {HOST}:{self._requested_port}: "
                f"{error.strerror}",
                hint="stop what uses the port (a Dapr sidecar?) or pass --dapr-port",
            ) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="dapr-http-api", daemon=True
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
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
