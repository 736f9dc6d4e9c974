"""portabind's own Google Cloud Secret Manager server, speaking the real gRPC API.

Not Google's (Google ships no Secret Manager emulator): a grpcio server implementing the
part of ``google.cloud.secretmanager.v1.SecretManagerService`` that reading secrets needs,
closely enough for the official ``google-cloud-secret-manager`` client, which creates the
secrets and reads them back (point it here through an insecure channel: see
`secretstores.gcp.secretmanager`'s ``PORTABIND_SECRETMANAGER_EMULATOR_HOST``). Requests and
responses are (de)serialized with the proto-plus types the client library ships, as the
Pub/Sub emulator does, so no generated code is needed. State is kept in memory for the
lifetime of the ``SecretManagerEmulator`` object.

Implemented: CreateSecret, GetSecret, ListSecrets, DeleteSecret, AddSecretVersion (checking
the payload's CRC32C when given), GetSecretVersion, AccessSecretVersion (a number or
``latest``, the newest enabled version; the payload with its CRC32C), DisableSecretVersion,
EnableSecretVersion, DestroySecretVersion. The other RPCs (UpdateSecret, ListSecretVersions,
rotation, IAM, locations) are answered UNIMPLEMENTED by grpc. Nothing checks credentials.

Run it on its own with ``python -m portabind.adapters.local.emulators.secretmanager --port 8086``.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import empty_pb2

from portabind.adapters.local.emulators import LOCALHOST, Emulator, serve_until_signal

if TYPE_CHECKING:
    from collections.abc import Callable

    from typing_extensions import Self

__all__ = ["SERVICE", "SecretManagerEmulator", "main"]

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"

_PROJECT = re.compile(r"projects/([^/]+)")
_SECRET = re.compile(r"projects/([^/]+)/secrets/([^/]+)")
_VERSION = re.compile(r"projects/([^/]+)/secrets/([^/]+)/versions/([^/]+)")
_SECRET_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
#: Secret Manager's limit on a version's payload.
_MAX_PAYLOAD = 64 * 1024


class _StatusError(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def _invalid(details: str) -> _StatusError:
    return _StatusError(grpc.StatusCode.INVALID_ARGUMENT, details)


def _not_found(name: str) -> _StatusError:
    return _StatusError(grpc.StatusCode.NOT_FOUND, f"{name} not found or has no versions.")


def _match(pattern: re.Pattern[str], name: str, what: str) -> re.Match[str]:
    found = pattern.fullmatch(name)
    if found is None:
        raise _invalid(f"The provided {what} name {name!r} is invalid.")
    return found


def _crc32c(data: bytes) -> int:
    import google_crc32c  # a dependency of google-cloud-secret-manager's own stack

    return int(google_crc32c.value(data))


@dataclass
class _Version:
    number: int
    data: bytes
    created: datetime
    state: str = "ENABLED"


@dataclass
class _Secret:
    secret: Any  # secretmanager_v1.types.Secret, as created
    versions: list[_Version] = field(default_factory=list)


class _Servicer:
    def __init__(self) -> None:
        self._secrets: dict[str, _Secret] = {}  # "projects/p/secrets/s" -> secret
        self._lock = threading.Lock()

    # -- secrets --------------------------------------------------------------------------
    def create_secret(self, request: Any, context: grpc.ServicerContext) -> Any:
        from google.cloud.secretmanager_v1 import types

        _match(_PROJECT, request.parent, "parent")
        if not _SECRET_ID.fullmatch(request.secret_id):
            raise _invalid(f"The provided secret_id {request.secret_id!r} is invalid.")
        name = f"{request.parent}/secrets/{request.secret_id}"
        secret = types.Secret(request.secret)
        secret.name = name
        secret.create_time = datetime.now(timezone.utc)
        if "replication" not in secret:
            raise _invalid("Secret.replication is required.")
        with self._lock:
            if name in self._secrets:
                raise _StatusError(grpc.StatusCode.ALREADY_EXISTS, f"Secret [{name}] exists.")
            self._secrets[name] = _Secret(secret)
        return secret

    def get_secret(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._secret(request.name).secret

    def list_secrets(self, request: Any, context: grpc.ServicerContext) -> Any:
        from google.cloud.secretmanager_v1 import types

        _match(_PROJECT, request.parent, "parent")
        prefix = request.parent + "/secrets/"
        with self._lock:
            found = [s.secret for n, s in sorted(self._secrets.items()) if n.startswith(prefix)]
        return types.ListSecretsResponse(secrets=found, total_size=len(found))

    def delete_secret(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._secret(request.name)
        with self._lock:
            self._secrets.pop(request.name, None)
        return empty_pb2.Empty()

    def _secret(self, name: str) -> _Secret:
        _match(_SECRET, name, "secret")
        with self._lock:
            found = self._secrets.get(name)
        if found is None:
            raise _StatusError(grpc.StatusCode.NOT_FOUND, f"Secret [{name}] not found.")
        return found

    # -- versions -------------------------------------------------------------------------
    def add_secret_version(self, request: Any, context: grpc.ServicerContext) -> Any:
        secret = self._secret(request.parent)
        data = bytes(request.payload.data)
        if len(data) > _MAX_PAYLOAD:
            raise _invalid(f"Secret payload is larger than {_MAX_PAYLOAD} bytes.")
        if "data_crc32c" in request.payload and request.payload.data_crc32c != _crc32c(data):
            raise _invalid("Checksum mismatch: the payload's data_crc32c is not its CRC32C.")
        with self._lock:
            version = _Version(len(secret.versions) + 1, data, datetime.now(timezone.utc))
            secret.versions.append(version)
        return self._version_message(request.parent, version)

    def get_secret_version(self, request: Any, context: grpc.ServicerContext) -> Any:
        parent, version = self._version(request.name)
        return self._version_message(parent, version)

    def access_secret_version(self, request: Any, context: grpc.ServicerContext) -> Any:
        from google.cloud.secretmanager_v1 import types

        parent, version = self._version(request.name)
        if version.state != "ENABLED":
            raise _StatusError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{parent}/versions/{version.number} is in {version.state} state.",
            )
        return types.AccessSecretVersionResponse(
            name=f"{parent}/versions/{version.number}",
            payload=types.SecretPayload(data=version.data, data_crc32c=_crc32c(version.data)),
        )

    def disable_secret_version(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._set_state(request.name, "DISABLED")

    def enable_secret_version(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._set_state(request.name, "ENABLED")

    def destroy_secret_version(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._set_state(request.name, "DESTROYED")

    def _set_state(self, name: str, state: str) -> Any:
        parent, version = self._version(name)
        with self._lock:
            if version.state == "DESTROYED":
                raise _StatusError(
                    grpc.StatusCode.FAILED_PRECONDITION, f"{name} is in DESTROYED state."
                )
            version.state = state
            if state == "DESTROYED":
                version.data = b""
        return self._version_message(parent, version)

    def _version(self, name: str) -> tuple[str, _Version]:
        project, secret_id, wanted = _match(_VERSION, name, "secret version").groups()
        parent = f"projects/{project}/secrets/{secret_id}"
        secret = self._secret(parent)
        with self._lock:
            versions = list(secret.versions)
        if wanted == "latest":
            enabled = [v for v in versions if v.state == "ENABLED"]
            if not enabled:
                raise _not_found(name)
            return parent, enabled[-1]
        if not wanted.isdigit():
            raise _invalid(f"The provided secret version name {name!r} is invalid.")
        number = int(wanted)
        if not 1 <= number <= len(versions):
            raise _not_found(name)
        return parent, versions[number - 1]

    @staticmethod
    def _version_message(parent: str, version: _Version) -> Any:
        from google.cloud.secretmanager_v1 import types

        return types.SecretVersion(
            name=f"{parent}/versions/{version.number}",
            create_time=version.created,
            state=getattr(types.SecretVersion.State, version.state),
        )

    def handler(self) -> grpc.GenericRpcHandler:
        from google.cloud.secretmanager_v1 import types as t

        empty = empty_pb2.Empty.SerializeToString
        version = t.SecretVersion.serialize
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "CreateSecret": _unary(
                    self.create_secret, t.CreateSecretRequest, t.Secret.serialize
                ),
                "GetSecret": _unary(self.get_secret, t.GetSecretRequest, t.Secret.serialize),
                "ListSecrets": _unary(
                    self.list_secrets, t.ListSecretsRequest, t.ListSecretsResponse.serialize
                ),
                "DeleteSecret": _unary(self.delete_secret, t.DeleteSecretRequest, empty),
                "AddSecretVersion": _unary(
                    self.add_secret_version, t.AddSecretVersionRequest, version
                ),
                "GetSecretVersion": _unary(
                    self.get_secret_version, t.GetSecretVersionRequest, version
                ),
                "AccessSecretVersion": _unary(
                    self.access_secret_version,
                    t.AccessSecretVersionRequest,
                    t.AccessSecretVersionResponse.serialize,
                ),
                "DisableSecretVersion": _unary(
                    self.disable_secret_version, t.DisableSecretVersionRequest, version
                ),
                "EnableSecretVersion": _unary(
                    self.enable_secret_version, t.EnableSecretVersionRequest, version
                ),
                "DestroySecretVersion": _unary(
                    self.destroy_secret_version, t.DestroySecretVersionRequest, version
                ),
            },
        )


def _unary(
    behavior: Callable[[Any, grpc.ServicerContext], Any],
    request_type: Any,
    serialize: Callable[[Any], bytes],
) -> grpc.RpcMethodHandler:
    def call(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return behavior(request, context)
        except _StatusError as error:
            context.abort(error.code, error.details)
            raise

    return grpc.unary_unary_rpc_method_handler(
        call, request_deserializer=request_type.deserialize, response_serializer=serialize
    )


class SecretManagerEmulator(Emulator):
    """An in-memory Secret Manager for the real client; secrets live as long as this object."""

    def __init__(self, host: str = LOCALHOST, port: int = 0) -> None:
        self._host = host
        self._requested_port = port
        self._servicer = _Servicer()
        self._server: grpc.Server | None = None
        self._port = 0

    def start(self) -> Self:
        """Bind and start serving; port 0 picks a free port (see ``address``)."""
        if self._server is not None:
            raise RuntimeError("The Secret Manager emulator is already running.")
        server = grpc.server(
            ThreadPoolExecutor(max_workers=8, thread_name_prefix="secretmanager-emulator"),
            handlers=(self._servicer.handler(),),
        )
        target = f"{self._host}:{self._requested_port}"
        try:
            port = int(server.add_insecure_port(target))
        except RuntimeError as error:  # grpcio reports a failed bind this way
            raise OSError(f"Secret Manager emulator cannot listen on {target}: {error}") from error
        server.start()
        self._server, self._port = server, port
        return self

    def stop(self) -> None:
        """Stop serving. Safe to call when not running."""
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    @property
    def address(self) -> str:
        """``host:port`` of the running server: the value for
        ``PORTABIND_SECRETMANAGER_EMULATOR_HOST``."""
        if self._server is None:
            raise RuntimeError("The Secret Manager emulator is not running; call start() first.")
        return f"{self._host}:{self._port}"


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGINT or SIGTERM; print its address on stdout."""
    return serve_until_signal(
        SecretManagerEmulator,
        title="Secret Manager",
        address_variable="PORTABIND_SECRETMANAGER_EMULATOR_HOST",
        default_port=8086,
        argv=argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
