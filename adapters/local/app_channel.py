"""The sidecar's side of Dapr's app protocol: `portabind run --app-port` delivering input
events to an app on 127.0.0.1, over HTTP or gRPC (`--app-protocol`), as daprd does. What an
event looks like on the wire is `portabind.appprotocol`'s; this module does the talking.

A delivery that fails (a non-2xx answer, a gRPC error status, a dead connection) raises
`AppDeliveryFailed`, so the listener leaves the message for redelivery. An app that is not
there, or speaks the other protocol, stops the run before any message is read.
"""

from __future__ import annotations

import http.client
import time
from typing import TYPE_CHECKING, Protocol

from portabind import appprotocol
from portabind.adapters.local.emulators import LOCALHOST, port_accepts
from portabind.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from portabind.components import Component
    from portabind.events import BindingEvent

#: Dapr's app channel timeouts: discovery (OPTIONS, ListInputBindings), then each delivery.
PROBE_TIMEOUT = 3.0
DELIVERY_TIMEOUT = 60.0
#: Seconds to wait for the app's port at start-up (daprd, too, waits for the app), unless
#: `--app-wait-seconds` says otherwise.
APP_WAIT = 5.0
PROTOCOLS = ("http", "grpc")


class AppDeliveryFailed(Exception):
    """The app refused an event (non-2xx, a gRPC error) or could not be reached."""


class AppChannel(Protocol):
    port: int

    def subscriptions(self, inputs: Sequence[Component]) -> list[str]:
        """The names of the input components whose events the app takes."""

    def label(self, component: Component) -> str:
        """How the console names the app's handler of `component`."""

    def deliver(self, component: Component, event: BindingEvent) -> None:
        """Hand one event to the app; raises `AppDeliveryFailed` unless it took it."""

    def close(self) -> None: ...


def connect(protocol: str, port: int, token: str | None, wait: float = APP_WAIT) -> AppChannel:
    """The channel to the app on 127.0.0.1:`port`, once something listens there (within
    `wait` seconds)."""
    deadline = time.monotonic() + wait
    while not port_accepts(port):
        if time.monotonic() >= deadline:
            raise UserError(
                f"no app listens on {LOCALHOST}:{port} (--app-port) after {wait:g} s",
                hint="start the app first (or wait longer: --app-wait-seconds), or drop "
                "--app-port to run the handlers in-process",
            )
        time.sleep(0.1)
    if protocol == "grpc":
        return GrpcAppChannel(port, token)
    return HttpAppChannel(port, token)


def _wrong_protocol(port: int, protocol: str, error: object) -> UserError:
    other = "grpc" if protocol == "http" else "http"
    return UserError(
        f"the app on {LOCALHOST}:{port} does not answer Dapr's {protocol} app protocol ({error})",
        hint=f"if it is a {other} app, pass --app-protocol {other}",
    )


class HttpAppChannel:
    """`POST /<route>` per event; `OPTIONS /<route>` to discover subscriptions."""

    def __init__(self, port: int, token: str | None) -> None:
        self.port = port
        self._token = token

    def _request(
        self, method: str, path: str, timeout: float, body: bytes, headers: dict[str, str]
    ) -> int:
        connection = http.client.HTTPConnection(LOCALHOST, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def subscriptions(self, inputs: Sequence[Component]) -> list[str]:
        """Dapr's discovery: 2xx or 405 to `OPTIONS /<route>` means yes, and so does
        `direction: input` (probed all the same: the answer proves the app speaks HTTP)."""
        taken = []
        headers = appprotocol.http_headers({}, self._token)
        for component in inputs:
            path = appprotocol.http_path(component.route)
            try:
                status = self._request("OPTIONS", path, PROBE_TIMEOUT, b"", headers)
            except (OSError, http.client.HTTPException) as error:
                raise _wrong_protocol(self.port, "http", error) from None
            if "input" in component.direction or appprotocol.subscribed(status):
                taken.append(component.name)
        return taken

    def label(self, component: Component) -> str:
        return f"POST :{self.port}{appprotocol.http_path(component.route)}"

    def deliver(self, component: Component, event: BindingEvent) -> None:
        path = appprotocol.http_path(component.route)
        headers = appprotocol.http_headers(event.metadata, self._token)
        try:
            status = self._request("POST", path, DELIVERY_TIMEOUT, event.data, headers)
        except (OSError, http.client.HTTPException) as error:
            raise AppDeliveryFailed(f"the app on port {self.port} failed: {error!r}") from None
        if not 200 <= status < 300:
            raise AppDeliveryFailed(f"the app answered HTTP {status}")

    def close(self) -> None:
        """Nothing stays open: each request has its own connection."""


class GrpcAppChannel:
    """`AppCallback.ListInputBindings` to discover, `AppCallback.OnBindingEvent` per event."""

    def __init__(self, port: int, token: str | None) -> None:
        import grpc
        from dapr.proto.runtime.v1.appcallback_pb2_grpc import AppCallbackStub

        self.port = port
        self._rpc_error = grpc.RpcError
        self._channel = grpc.insecure_channel(f"{LOCALHOST}:{port}")
        self._stub = AppCallbackStub(self._channel)  # type: ignore[no-untyped-call]
        self._metadata = appprotocol.call_metadata(token)

    def subscriptions(self, inputs: Sequence[Component]) -> list[str]:
        from google.protobuf.empty_pb2 import Empty

        try:
            listed = self._stub.ListInputBindings(
                Empty(), timeout=PROBE_TIMEOUT, metadata=self._metadata
            )
        except self._rpc_error as error:
            raise _wrong_protocol(self.port, "grpc", _status(error)) from None
        wanted = set(listed.bindings)
        return [component.name for component in inputs if component.name in wanted]

    def label(self, component: Component) -> str:
        return f"OnBindingEvent :{self.port} {component.name}"

    def deliver(self, component: Component, event: BindingEvent) -> None:
        request = appprotocol.binding_event_request(event)
        try:
            self._stub.OnBindingEvent(request, timeout=DELIVERY_TIMEOUT, metadata=self._metadata)
        except self._rpc_error as error:
            raise AppDeliveryFailed(f"the app answered {_status(error)}") from None

    def close(self) -> None:
        self._channel.close()


def _status(error: Exception) -> str:
    """`CODE: details` of a failed call (grpc.RpcError raised by a call is also a Call)."""
    code, details = getattr(error, "code", None), getattr(error, "details", None)
    if code is None or details is None:
        return str(error)
    return f"{code().name}: {details()}"
