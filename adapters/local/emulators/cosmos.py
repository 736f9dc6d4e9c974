"""The Cosmos DB server of npm `@vercel/cosmosdb-server`, run as a Node.js subprocess: the
Cosmos DB SQL API over HTTPS with a self-signed certificate, in memory, accepting any key.

It has no change feed, no stored procedures and no throughput settings; the cosmosdb input
listener polls by `_ts` (`portabind.bindings.azure.cosmosdb`). Clients connect with the
emulator's well-known key and without certificate verification (`COSMOS_KEY`).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from portabind.adapters.local.emulators import (
    LOCALHOST,
    Emulator,
    EmulatorFailed,
    EmulatorUnavailable,
    free_port,
    stop_process,
    wait_for_port,
)
from portabind.adapters.local.emulators.npm import REPO_ROOT, NpmTool
from portabind.bindings.azure import COSMOS_KEY

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["COSMOS_KEY", "COSMOS_SERVER", "CosmosEmulator"]

#: The version pinned in tools/package.json.
COSMOS_SERVER = NpmTool(
    "the Cosmos DB server (@vercel/cosmosdb-server)",
    "@vercel/cosmosdb-server",
    "1.0.1",
    "cosmosdb-server",
    "PORTABIND_COSMOSDB_SERVER",
)


class CosmosEmulator(Emulator):
    """The server on 127.0.0.1 at a free port; `endpoint` is its https URL."""

    def __init__(self, executable: Path | None = None, *, startup_timeout: float = 30.0) -> None:
        self._executable = executable
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: tempfile._TemporaryFileWrapper[bytes] | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        if self._process is None:
            raise RuntimeError("CosmosEmulator is not running: call start() first")
        return f"https://{LOCALHOST}:{self.port}"

    def start(self) -> Self:
        if self._process is not None:
            return self
        executable = self._executable or COSMOS_SERVER.ensure(REPO_ROOT)
        self.port = free_port()
        # Output goes to a file nobody must drain (a full pipe would block the server).
        self._log = tempfile.NamedTemporaryFile(prefix="portabind-cosmos-", suffix=".log")  # noqa: SIM115
        command = [str(executable), "-p", str(self.port), "--host", LOCALHOST]
        try:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
            )
        except OSError as error:
            raise EmulatorUnavailable(
                f"cannot execute {executable}: {error}",
                hint=f"reinstall it: {COSMOS_SERVER.install_command}",
            ) from error
        process = self._process
        try:
            wait_for_port(
                self.port,
                timeout=self.startup_timeout,
                still_starting=lambda: process.poll() is None,
            )
        except (TimeoutError, ChildProcessError) as error:
            tail = Path(self._log.name).read_text(errors="replace")[-2000:]
            self.stop()
            raise EmulatorFailed(f"the Cosmos DB server did not start: {error}\n{tail}") from error
        return self

    def stop(self) -> None:
        """Terminate the server by its PID and wait for it. Safe to call twice."""
        process, self._process = self._process, None
        stop_process(process)
        log, self._log = self._log, None
        if log is not None:
            log.close()
