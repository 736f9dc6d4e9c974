"""Azurite, Microsoft's Blob/Queue/Table emulator, run as a Node.js subprocess.

Azurite is an npm package, so it is found on disk rather than imported (`NpmTool`): see
`find_azurite`, and `ensure_azurite` for the one-time install `portabind run --emulate`
performs when npm is available.
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
from portabind.bindings.azure import ACCOUNT_KEY, ACCOUNT_NAME

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "ACCOUNT_KEY",
    "ACCOUNT_NAME",
    "AZURITE_VERSION",
    "INSTALL_COMMAND",
    "AzuriteEmulator",
    "ensure_azurite",
    "find_azurite",
]

#: The version pinned in tools/package.json; the one `ensure_azurite` installs.
AZURITE_VERSION = "3.35.0"
AZURITE = NpmTool(
    "the Azure Storage emulator (Azurite)",
    "azurite",
    AZURITE_VERSION,
    "azurite",
    "PORTABIND_AZURITE",
)
INSTALL_COMMAND = AZURITE.install_command
_REPO_ROOT = REPO_ROOT
# How many times to retry when another process grabbed one of the free ports we picked.
_PORT_RACE_ATTEMPTS = 3


def find_azurite() -> Path:
    """Locate the azurite executable, or raise `EmulatorUnavailable` saying how to install it
    (search order: `NpmTool.find`)."""
    return AZURITE.find(_REPO_ROOT)


def ensure_azurite() -> Path:
    """Return the azurite executable, installing it into ~/.cache/portabind/azurite if missing.

    Used by `portabind run --emulate` so a first run needs no manual step when npm exists.
    """
    return AZURITE.ensure(_REPO_ROOT)


class AzuriteEmulator(Emulator):
    """Azurite's Blob, Queue and Table services on 127.0.0.1, each on a free port.

    State is in memory (``--inMemoryPersistence``): a restart starts empty and nothing is
    written to the working directory. ``--skipApiVersionCheck`` lets a Python SDK newer than
    this Azurite talk to it; ``--loose`` tolerates headers Azurite does not implement.
    """

    def __init__(
        self,
        executable: Path | str | None = None,
        *,
        host: str = LOCALHOST,
        startup_timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.startup_timeout = startup_timeout
        self._executable = Path(executable) if executable is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._ports: dict[str, int] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Launch Azurite and return once all three ports accept connections. Idempotent."""
        if self._process is not None:
            return self
        executable = self._executable or find_azurite()
        for attempt in range(1, _PORT_RACE_ATTEMPTS + 1):
            try:
                self._launch(executable)
                return self
            except EmulatorFailed as exc:
                if attempt == _PORT_RACE_ATTEMPTS or "EADDRINUSE" not in str(exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _launch(self, executable: Path) -> None:
        ports = {name: free_port(self.host) for name in ("blob", "queue", "table")}
        # A private working directory for the log and anything else Azurite writes there (it
        # refuses --location together with --inMemoryPersistence, and writes to its cwd).
        workdir = tempfile.TemporaryDirectory(prefix="portabind-azurite-")
        log_path = Path(workdir.name, "azurite.log")
        command = [
            str(executable),
            "--silent",
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--blobHost", self.host, "--blobPort", str(ports["blob"]),
            "--queueHost", self.host, "--queuePort", str(ports["queue"]),
            "--tableHost", self.host, "--tablePort", str(ports["table"]),
        ]  # fmt: skip
        # Output goes to a file, not a pipe: nobody reads a pipe while the server runs, and a
        # full pipe would block Azurite.
        with log_path.open("wb") as log:
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=workdir.name,
                )
            except OSError as exc:
                workdir.cleanup()
                raise EmulatorUnavailable(
                    f"cannot execute {executable}: {exc}",
                    hint=f"reinstall Azurite: {INSTALL_COMMAND}",
                ) from exc
        self._process, self._workdir, self._ports = process, workdir, ports
        try:
            remaining = self.startup_timeout
            for port in ports.values():
                remaining -= wait_for_port(
                    port,
                    self.host,
                    timeout=max(remaining, 0.1),
                    still_starting=lambda: process.poll() is None,
                )
        except (TimeoutError, ChildProcessError) as exc:
            tail = self._log_tail()
            self.stop()
            raise EmulatorFailed(
                f"Azurite ({executable}) did not start: {exc}\n--- last lines of its log ---\n"
                f"{tail}"
            ) from exc

    def stop(self) -> None:
        """Terminate Azurite by its PID and wait for it to exit. Safe to call twice."""
        process, self._process = self._process, None
        stop_process(process)
        workdir, self._workdir = self._workdir, None
        if workdir is not None:
            workdir.cleanup()
        self._ports = {}

    def _log_tail(self, lines: int = 20) -> str:
        if self._workdir is None:
            return "(no log)"
        try:
            text = Path(self._workdir.name, "azurite.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("AzuriteEmulator is not running: call start() first")
        return self._process.pid

    # -- connection details ------------------------------------------------------------------

    def _endpoint(self, service: str) -> str:
        if service not in self._ports:
            raise RuntimeError("AzuriteEmulator is not running: call start() first")
        # Azurite uses path-style URLs: the account name is the first path segment.
        return f"http://{self.host}:{self._ports[service]}/{ACCOUNT_NAME}"

    @property
    def blob_endpoint(self) -> str:
        return self._endpoint("blob")

    @property
    def queue_endpoint(self) -> str:
        return self._endpoint("queue")

    @property
    def table_endpoint(self) -> str:
        return self._endpoint("table")

    @property
    def account_name(self) -> str:
        return ACCOUNT_NAME

    @property
    def account_key(self) -> str:
        return ACCOUNT_KEY

    @property
    def connection_string(self) -> str:
        """A full connection string, as Azure SDKs and the Functions host accept it."""
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
            f"QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )
