"""The container side of a Dapr build: the app served to a daprd sidecar over Dapr's app
protocol (HTTP, or gRPC with `--app-protocol grpc`), its outputs sent through that sidecar.

Here portabind is the app and daprd the sidecar, the reverse of `portabind run --app-port`; both
read and write events with `portabind.appprotocol`, so an event reads the same either way.

- **Inputs Dapr delivers**: daprd asks `OPTIONS /<route>` of every input component and, on a
  2xx, `POST`s each event there; the answer is 200 when the handler returns and 500 when it
  raises, which daprd turns into the component's retry or redelivery. Over gRPC, daprd asks
  `AppCallback.ListInputBindings` for the inputs and calls `OnBindingEvent` per event; the
  answer is OK when the handler returns and INTERNAL when it raises. The other `AppCallback`
  methods answer as an app with no topics and no service methods: no subscriptions, and
  UNIMPLEMENTED. gRPC and the `dapr` package's protos load only then.
- **Inputs Dapr cannot deliver** (the HTTP trigger, and the extensions Dapr gives no input
  direction: S3, SNS, DynamoDB, blob, Cloud Storage, Cosmos DB): the build names them with
  `--listen`, and each runs as portabind's own listener in this process, as under
  `portabind run`. Their secrets arrive as the environment variables `secret_env_name` names.
- **Outputs** go to the sidecar, `POST /v1.0/bindings/<name>` on `DAPR_HTTP_PORT` whatever the
  app protocol (daprd serves its HTTP API beside the gRPC one), so daprd
  applies the outbound Resiliency policies and the component as the cluster defines it.
  Request metadata is written under Dapr's names (`key` → `blobName` for Azure Blob
  Storage). `data` that is JSON is sent as that JSON value; other bytes as a JSON string,
  which daprd hands the binding as JSON (quoted): Dapr's HTTP API has no raw body.

Run as `python -m portabind.adapters.dapr.runtime --port PORT [--app-protocol http|grpc]
[--listen NAME ...]` from the build's directory (the image's entrypoint).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import threading
import urllib.error
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portabind.appprotocol import TOKEN_HEADER, event_from_grpc, event_from_http, http_path
from portabind.binding import OutputBinding
from portabind.bundled import BundledFunction
from portabind.errors import BindingError
from portabind.events import BindingResponse, Metadata
from portabind.resiliency import INBOUND
from portabind.runtime import Runtime

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import grpc

    from portabind.events import BindingEvent

#: daprd's HTTP port when `DAPR_HTTP_PORT` is unset (the sidecar injector always sets it).
DEFAULT_DAPR_HTTP_PORT = 3500
#: Dapr's app protocols the entrypoint serves (`dapr.io/app-protocol`).
APP_PROTOCOLS = ("http", "grpc")
#: Seconds the gRPC channel gives the events in hand to finish and be answered once the pod is
#: stopping (Kubernetes waits 30 s after SIGTERM before it kills the container).
GRPC_STOP_GRACE = 10.0
#: Request metadata portabind accepts under its own name, by binding type: Dapr's name for
#: it, written when the request does not give Dapr's already.
DAPR_REQUEST_NAMES: dict[str, dict[str, str]] = {
    "bindings.azure.blobstorage": {"key": "blobName"},
}


def dapr_request_metadata(binding_type: str, metadata: Mapping[str, str]) -> dict[str, str]:
    """`metadata` as daprd's binding reads it: portabind's conveniences under Dapr's names."""
    given = {key.lower() for key in metadata}
    renames = DAPR_REQUEST_NAMES.get(binding_type, {})
    return {
        renames[key] if key in renames and renames[key].lower() not in given else key: value
        for key, value in metadata.items()
    }


def request_body(operation: str, data: bytes, metadata: Mapping[str, str]) -> bytes:
    """The JSON body of `POST /v1.0/bindings/<name>` (Dapr's `OutputBindingRequest`)."""
    payload: Any = None
    if data:
        try:
            payload = json.loads(data)
        except ValueError:  # not JSON (nor UTF-8): the closest Dapr's HTTP API carries
            payload = data.decode("utf-8", errors="replace")
    body = {"operation": operation, "metadata": dict(metadata)}
    if payload is not None:
        body["data"] = payload
    return json.dumps(body).encode()


class SidecarOutput(OutputBinding[Any]):
    """An output binding invoked through the daprd sidecar."""

    def __init__(self, name: str, binding_type: str, endpoint: str, token: str | None) -> None:
        super().__init__(name, None)
        self._binding_type = binding_type
        self._url = f"{endpoint}/v1.0/bindings/{name}"
        self._token = token

    def invoke(self, operation: str, data: bytes, metadata: Metadata) -> BindingResponse:
        body = request_body(operation, data, dapr_request_metadata(self._binding_type, metadata))
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers[TOKEN_HEADER] = self._token
        request = urllib.request.Request(self._url, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request) as response:
                data = response.read()
                # 204: the binding returned nothing at all (no data, no metadata).
                returned = None if response.status == HTTPStatus.NO_CONTENT else data
                return BindingResponse(returned, _response_metadata(response.headers))
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", errors="replace")
            raise BindingError(
                self.name, operation, f"the sidecar answered {error.code}: {detail}"
            ) from None
        except urllib.error.URLError as error:
            raise BindingError(
                self.name, operation, f"the sidecar at {self._url} is unreachable: {error.reason}"
            ) from None


def _response_metadata(headers: Any) -> Metadata:
    """daprd returns each response metadata entry as a `metadata.<key>` header."""
    prefix = "metadata."
    return Metadata(
        {k[len(prefix) :]: v for k, v in headers.items() if k.lower().startswith(prefix)}
    )


class SidecarRuntime(Runtime):
    """The components with every output bound to the sidecar's binding of the same name."""

    def __init__(self, runtime: Runtime, environ: Mapping[str, str]) -> None:
        super().__init__(runtime.components, environ=environ)
        port = environ.get("DAPR_HTTP_PORT") or str(DEFAULT_DAPR_HTTP_PORT)
        self._endpoint = f"http://127.0.0.1:{port}"
        self._token = environ.get("DAPR_API_TOKEN") or None

    def output(self, name: str) -> OutputBinding[Any]:
        component, _ = self.binding(name)
        return SidecarOutput(name, component.type, self._endpoint, self._token)


class Function(BundledFunction):
    """A built app in its container, beside daprd."""

    def delivered(self, component: str) -> Callable[[BindingEvent], Any]:
        """Handles one event daprd delivers for input `component`; raises when the handler
        fails."""
        return self.app.handle

    def listener(self, component: str) -> Callable[[threading.Event], None]:
        """Runs portabind's own listener of `component` until the event is set, each event
        under the component's inbound Resiliency policies (daprd applies those of the inputs
        it delivers; these it never sees)."""
        listening = self.runtime.input(component)

        def listen(stop: threading.Event) -> None:
            def deliver(event: BindingEvent) -> Any:
                handle = functools.partial(self.app.handle, event)
                return self.runtime.resiliency.run(component, INBOUND, handle, stop=stop)

            listening.listen(deliver, stop)

        return listen

    def routes(self) -> dict[str, str]:
        """The request path of every input daprd delivers: each handled component's route."""
        return {
            http_path(self.runtime.components.get(name).route): name for name in self.app.handlers
        }

    def server(self, port: int, delivered: Sequence[str]) -> ThreadingHTTPServer:
        """The app channel daprd talks to, on 127.0.0.1:`port`, for the inputs `delivered`."""
        routes = {path: name for path, name in self.routes().items() if name in delivered}
        token = self.environ.get("APP_API_TOKEN") or None
        function = self

        class AppChannel(BaseHTTPRequestHandler):
            def _answer(self, status: HTTPStatus, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _route(self) -> str | None:
                if token is not None and self.headers.get(TOKEN_HEADER) != token:
                    self._answer(HTTPStatus.UNAUTHORIZED)
                    return None
                name = routes.get(self.path.split("?", 1)[0])
                if name is None:
                    self._answer(HTTPStatus.NOT_FOUND)
                return name

            def do_OPTIONS(self) -> None:
                if self._route() is not None:
                    self._answer(HTTPStatus.OK)

            def do_POST(self) -> None:
                name = self._route()
                if name is None:
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event = event_from_http(name, body, dict(self.headers.items()))
                try:
                    function.delivered(name)(event)
                except Exception as error:  # the handler failed: daprd retries or redelivers
                    self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, str(error).encode())
                    return
                self._answer(HTTPStatus.OK)

            def log_message(self, format: str, *args: Any) -> None:
                return  # one line per event is noise in a pod's log

        # daprd shares the pod's loopback: nothing outside the pod reaches the app channel.
        return ThreadingHTTPServer(("127.0.0.1", port), AppChannel)

    def grpc_server(self, port: int, delivered: Sequence[str]) -> grpc.Server:
        """The app channel daprd talks to over gRPC (Dapr's `AppCallback` service and its
        health check, the `dapr` package's generated servicers), on 127.0.0.1:`port`, for
        the inputs `delivered`. Not started."""
        from concurrent.futures import ThreadPoolExecutor

        import grpc
        from dapr.proto.runtime.v1 import appcallback_pb2_grpc
        from dapr.proto.runtime.v1.appcallback_pb2 import (
            BindingEventResponse,
            HealthCheckResponse,
            ListInputBindingsResponse,
            ListTopicSubscriptionsResponse,
        )

        token = self.environ.get("APP_API_TOKEN") or None
        function = self

        def authorize(context: grpc.ServicerContext) -> None:
            sent = dict(context.invocation_metadata()).get(TOKEN_HEADER)
            if token is not None and sent != token:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, f"wrong or missing {TOKEN_HEADER}")

        class AppCallback(appcallback_pb2_grpc.AppCallbackServicer):
            """Service invocation and topic events answer UNIMPLEMENTED, the generated
            servicer's default: a bindings app has neither."""

            def ListTopicSubscriptions(
                self, request: Any, context: grpc.ServicerContext
            ) -> ListTopicSubscriptionsResponse:
                authorize(context)
                return ListTopicSubscriptionsResponse()

            def ListInputBindings(
                self, request: Any, context: grpc.ServicerContext
            ) -> ListInputBindingsResponse:
                authorize(context)
                return ListInputBindingsResponse(bindings=delivered)

            def OnBindingEvent(
                self, request: Any, context: grpc.ServicerContext
            ) -> BindingEventResponse:
                authorize(context)
                if request.name not in delivered:
                    context.abort(grpc.StatusCode.UNIMPLEMENTED, f"no handler for {request.name!r}")
                try:
                    function.delivered(request.name)(event_from_grpc(request))
                except Exception as error:  # the handler failed: daprd retries or redelivers
                    context.abort(grpc.StatusCode.INTERNAL, str(error))
                return BindingEventResponse()

        class HealthCheck(appcallback_pb2_grpc.AppCallbackHealthCheckServicer):
            def HealthCheck(
                self, request: Any, context: grpc.ServicerContext
            ) -> HealthCheckResponse:
                authorize(context)
                return HealthCheckResponse()

        server = grpc.server(
            ThreadPoolExecutor(thread_name_prefix="app-channel"),
            options=[("grpc.so_reuseport", 0)],  # a port in use is an error, not a shared port
        )
        appcallback_pb2_grpc.add_AppCallbackServicer_to_server(AppCallback(), server)  # type: ignore[no-untyped-call]
        appcallback_pb2_grpc.add_AppCallbackHealthCheckServicer_to_server(HealthCheck(), server)  # type: ignore[no-untyped-call]
        # daprd shares the pod's loopback: nothing outside the pod reaches the app channel.
        server.add_insecure_port(f"127.0.0.1:{port}")
        return server

    def open_channel(
        self, app_protocol: str, port: int, delivered: Sequence[str]
    ) -> Callable[[], None]:
        """Starts serving the app channel over `app_protocol`; returns what stops it."""
        if app_protocol == "grpc":
            grpc_server = self.grpc_server(port, delivered)
            grpc_server.start()
            return lambda: grpc_server.stop(grace=GRPC_STOP_GRACE).wait()
        http_server = self.server(port, delivered)
        threading.Thread(target=http_server.serve_forever, daemon=True).start()

        def close() -> None:
            http_server.shutdown()
            http_server.server_close()

        return close


def serve(
    directory: Path,
    port: int,
    listen: Sequence[str],
    stop: threading.Event,
    app_protocol: str = "http",
) -> None:
    """Serve the build in `directory` to daprd over `app_protocol`, and run the listeners
    `listen`, until `stop`."""
    function = Function.load(directory)
    function.runtime = SidecarRuntime(function.runtime, function.environ)
    function.app.attach(function.runtime)
    delivered = [name for name in function.app.handlers if name not in listen]
    close = function.open_channel(app_protocol, port, delivered)
    for name in listen:
        threading.Thread(target=function.listener(name), args=(stop,), daemon=True).start()
    try:
        # In slices: a signal handler (SIGTERM) runs in this thread between them.
        while not stop.wait(0.5):
            pass
    finally:
        close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="the app port daprd calls")
    parser.add_argument(
        "--app-protocol", choices=APP_PROTOCOLS, default="http", help="how daprd calls the app"
    )
    parser.add_argument(
        "--listen", action="append", default=[], help="an input portabind listens to itself"
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    # Kubernetes stops a pod with SIGTERM: stop taking events and exit 0. An event in hand
    # then gets no answer (over gRPC, once GRPC_STOP_GRACE has passed), which daprd treats
    # as a failure and delivers again.
    signal.signal(signal.SIGTERM, lambda _signal, _frame: stop.set())
    serve(Path(os.getcwd()), args.port, args.listen, stop, args.app_protocol)


if __name__ == "__main__":
    main()
