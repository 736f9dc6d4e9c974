"""Dapr's gRPC API (`dapr.proto.runtime.v1.Dapr`) for output bindings, served by
`portabind run` on 127.0.0.1 (`--dapr-grpc-port`, 50001 as daprd), which is where the Dapr
SDKs' `invoke_binding` goes.

`InvokeBinding` and `GetMetadata` do what the HTTP API's routes do (the same request
handling, errors and metadata document); every other method answers UNIMPLEMENTED, the
generated servicer's default. As in daprd, response metadata is also sent as
`metadata.<key>` headers, on errors too, and with an API token every call must carry it as
`dapr-api-token` call metadata (UNAUTHENTICATED otherwise).

The servicer is the one generated from Dapr's protos that the `dapr` package ships; this
module is imported only when a run serves gRPC, so neither grpc nor dapr loads otherwise.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import grpc
from dapr.proto.runtime.v1 import dapr_pb2_grpc
from dapr.proto.runtime.v1.binding_pb2 import InvokeBindingResponse
from dapr.proto.runtime.v1.metadata_pb2 import (
    AppConnectionProperties,
    GetMetadataResponse,
    RegisteredComponents,
)

from portabind.adapters.local.dapr_api import (
    HOST,
    MAX_CONNECTIONS,
    ApiConfig,
    ApiFailure,
    invoke_output,
    metadata_document,
)
from portabind.appprotocol import TOKEN_HEADER
from portabind.errors import UserError
from portabind.events import Metadata

if TYPE_CHECKING:
    from collections.abc import Callable

    from dapr.proto.runtime.v1.binding_pb2 import InvokeBindingRequest
    from dapr.proto.runtime.v1.metadata_pb2 import GetMetadataRequest

    from portabind.runtime import Runtime

#: What gRPC allows in a header: lower-case keys of these characters, printable ASCII values.
_HEADER_KEY = re.compile(r"[0-9a-z_.-]+")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]*")


def _headers(metadata: Metadata) -> tuple[tuple[str, str], ...]:
    """Response metadata as daprd's `metadata.<key>` headers (gRPC lower-cases keys)."""
    pairs = ((f"metadata.{key.lower()}", value) for key, value in metadata.items())
    return tuple(
        (key, value)
        for key, value in pairs
        if _HEADER_KEY.fullmatch(key) and _HEADER_VALUE.fullmatch(value)
    )


def _send_headers(context: grpc.ServicerContext, metadata: Metadata) -> None:
    """Response metadata as headers ahead of the answer, only when there is some: sent on
    their own they are a batch of their own (one more round through grpc's threads), where
    the answer alone leaves in one batch with the default headers and the status."""
    headers = _headers(metadata)
    if headers:
        context.send_initial_metadata(headers)


class _Dapr(dapr_pb2_grpc.DaprServicer):
    def __init__(self, runtime: Runtime, config: ApiConfig) -> None:
        self._runtime = runtime
        self._config = config

    def InvokeBinding(
        self, request: InvokeBindingRequest, context: grpc.ServicerContext
    ) -> InvokeBindingResponse:
        metadata = Metadata(dict(request.metadata))
        try:
            response = invoke_output(
                self._runtime, request.name, request.operation, bytes(request.data), metadata
            )
        except ApiFailure as failure:
            _send_headers(context, failure.metadata)
            context.abort(grpc.StatusCode.INTERNAL, failure.message)
        _send_headers(context, response.metadata)
        return InvokeBindingResponse(data=response.data or b"", metadata=dict(response.metadata))

    def GetMetadata(
        self, request: GetMetadataRequest, context: grpc.ServicerContext
    ) -> GetMetadataResponse:
        document = metadata_document(self._runtime, self._config)
        connection = document["appConnectionProperties"]
        return GetMetadataResponse(
            id=document["id"],
            runtime_version=document["runtimeVersion"],
            extended_metadata=document["extended"],
            registered_components=[
                RegisteredComponents(**component) for component in document["components"]
            ],
            app_connection_properties=AppConnectionProperties(
                port=connection.get("port", 0),
                protocol=connection["protocol"],
                channel_address=connection["channelAddress"],
            ),
        )


class _TokenCheck(grpc.ServerInterceptor):  # type: ignore[misc]
    """daprd's API token check: every call carries `dapr-api-token` (no exemptions on gRPC)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def intercept_service(
        self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        sent = [value for key, value in details.invocation_metadata if key == TOKEN_HEADER]
        if sent and sent[0] == self._token:
            return continuation(details)
        message = (
            "authentication error: api token mismatch"
            if sent
            else "missing api token in request metadata"
        )

        def refuse(request: Any, context: grpc.ServicerContext) -> None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        return grpc.unary_unary_rpc_method_handler(refuse)


class DaprGrpcApi:
    """The gRPC API server; `start()`, then `stop()`."""

    def __init__(self, runtime: Runtime, port: int, config: ApiConfig) -> None:
        interceptors = [_TokenCheck(config.api_token)] if config.api_token else []
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=MAX_CONNECTIONS, thread_name_prefix="dapr-grpc-api"),
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", config.max_request_bytes),
                ("grpc.so_reuseport", 0),  # a port in use is an error, not a shared port
            ],
        )
        servicer = _Dapr(runtime, config)
        dapr_pb2_grpc.add_DaprServicer_to_server(servicer, self._server)  # type: ignore[no-untyped-call]
        self._requested_port = port
        self.port = port

    def start(self) -> None:
        try:
            self.port = self._server.add_insecure_port(f"{HOST}:{self._requested_port}")
        except RuntimeError:
            self.port = 0
        if not self.port:
            raise UserError(
                f"cannot serve the Dapr gRPC API on {HOST}:{self._requested_port}: "
                "the port is in use",
                hint="stop what uses the port (a Dapr sidecar?) or pass --dapr-grpc-port",
            )
        self._server.start()

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def stop(self) -> None:
        self._server.stop(grace=1.0).wait()
