"""moto, run in-process, as the local stand-in for S3, SQS, SNS, DynamoDB and Kinesis.

One moto server answers every AWS service on one port (it dispatches on the request's
signing scope), so a single endpoint serves all AWS components of an app.
"""

from __future__ import annotations

import urllib.request
from typing import TYPE_CHECKING

from portabind.adapters.local.emulators import (
    LOCALHOST,
    Emulator,
    EmulatorFailed,
    EmulatorUnavailable,
    port_accepts,
)

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer
    from typing_extensions import Self

__all__ = ["MotoEmulator"]

_INSTALL_HINT = "install the local extra: pip install 'portabind[local]' (moto[server])"


class MotoEmulator(Emulator):
    """A moto server on 127.0.0.1, in a thread of this process.

    In-process because moto is a Python package: no interpreter start-up (≈0.3 s instead of
    ≈0.5 s for ``moto_server``) and the thread dies with the process, so nothing can leak.
    Note that moto keeps its state in module globals: every `MotoEmulator` in one process
    shares the same accounts, buckets and queues (use `reset()` or unique names).
    """

    def __init__(self, host: str = LOCALHOST, port: int = 0) -> None:
        # Port 0 lets the kernel choose while binding: no window for another process to grab it.
        self.host = host
        self._requested_port = port
        self._server: ThreadedMotoServer | None = None
        self._port: int | None = None

    def start(self) -> Self:
        """Start the server and return once it listens. Idempotent."""
        if self._server is not None:
            return self
        try:
            # Imported here: moto pulls in boto3, botocore, werkzeug and flask (~1 s of imports),
            # which `import portabind...emulators.aws` must not cost.
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise EmulatorUnavailable(
                f"moto is not importable ({exc})", hint=_INSTALL_HINT
            ) from exc
        if self._requested_port and port_accepts(self._requested_port, self.host):
            # ThreadedMotoServer.start() would wait forever on a port it cannot bind.
            raise EmulatorFailed(f"cannot start moto: {self.host}:{self._requested_port} is in use")
        server = ThreadedMotoServer(ip_address=self.host, port=self._requested_port, verbose=False)
        server.start()
        self._server = server
        self._port = server.get_host_and_port()[1]
        return self

    def stop(self) -> None:
        """Shut the server down and release its port. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        self._port = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("MotoEmulator is not running: call start() first")
        return self._port

    @property
    def endpoint(self) -> str:
        """The URL to give any AWS SDK client (``endpoint_url``) or Dapr's ``endpoint``."""
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Forget every resource in every service (moto's ``/moto-api/reset``)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
