"""gcp-storage-emulator, run in-process, as the local stand-in for Google Cloud Storage.

Clients find it through ``STORAGE_EMULATOR_HOST`` (google-cloud-storage honours it and then
needs no credentials). The Pub/Sub emulator lives in `pubsub.py`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from portabind.adapters.local.emulators import (
    LOCALHOST,
    Emulator,
    EmulatorFailed,
    EmulatorUnavailable,
    free_port,
    port_accepts,
    wait_for_port,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["StorageEmulator"]

_INSTALL_HINT = "install the local extra: pip install 'portabind[local]' (gcp-storage-emulator)"


class StorageEmulator(Emulator):
    """A Cloud Storage JSON/XML API server on 127.0.0.1, in a thread of this process.

    Objects are kept in memory. The server handles one request at a time, which is plenty
    for local runs and tests.
    """

    def __init__(
        self, host: str = LOCALHOST, port: int | None = None, *, startup_timeout: float = 10.0
    ) -> None:
        self.host = host
        self.startup_timeout = startup_timeout
        self._requested_port = port
        self._port: int | None = None
        # gcp_storage_emulator is untyped; its Server is held as Any on purpose.
        self._server: Any = None

    def start(self) -> Self:
        """Start the server and return once its port accepts connections. Idempotent."""
        if self._server is not None:
            return self
        try:
            # Imported here so that importing this module stays free of the emulator's
            # dependencies (fs, google-crc32c, ...).
            from gcp_storage_emulator.server import create_server
        except ImportError as exc:
            raise EmulatorUnavailable(
                f"gcp-storage-emulator is not importable ({exc})", hint=_INSTALL_HINT
            ) from exc
        # The library binds the port given (it cannot report a kernel-chosen one), so pick one.
        port = self._requested_port or free_port(self.host)
        if port_accepts(port, self.host):
            raise EmulatorFailed(f"cannot start the GCS emulator: {self.host}:{port} is in use")
        server = create_server(self.host, port, in_memory=True)
        # Server.start() waits, without a timeout, for a bind that may fail inside the server
        # thread; run it on a helper thread and bound the wait by probing the port ourselves.
        threading.Thread(target=server.start, name="gcs-emulator-start", daemon=True).start()
        try:
            wait_for_port(port, self.host, timeout=self.startup_timeout)
        except TimeoutError as exc:
            raise EmulatorFailed(f"the GCS emulator did not start: {exc}") from exc
        self._server, self._port = server, port
        return self

    def stop(self) -> None:
        """Shut the server down and close its socket. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        self._port = None

    def reset(self) -> None:
        """Delete every bucket and object."""
        if self._server is None:
            raise RuntimeError("StorageEmulator is not running: call start() first")
        self._server.wipe()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("StorageEmulator is not running: call start() first")
        return self._port

    @property
    def endpoint(self) -> str:
        """The value for ``STORAGE_EMULATOR_HOST`` (a URL, scheme included)."""
        return f"http://{self.host}:{self.port}"
