"""Local emulators of cloud services, started by `portabind run --emulate` and by the tests.

Each module wraps one emulator behind the same small surface: ``start()``, ``stop()``, an
endpoint property and context-manager use. Importing a module here is cheap: the emulator's own
package (moto, gcp-storage-emulator, ...) is imported only when ``start()`` runs, so the CLI and
generated code never pay for emulators they do not use.

Every emulator binds 127.0.0.1 on a free port, keeps its state in memory and is stopped by its
own handle (thread or PID), so a run can never leak a server onto a well-known port.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Protocol

from portabind.errors import PortabindError, UserError

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType, TracebackType

    from typing_extensions import Self

__all__ = [
    "LOCALHOST",
    "Emulator",
    "EmulatorError",
    "EmulatorFailed",
    "EmulatorUnavailable",
    "free_port",
    "port_accepts",
    "serve_until_signal",
    "stop_on_signals",
    "stop_process",
    "wait_for_port",
]

#: Emulators listen on loopback only: they have no authentication worth the name.
LOCALHOST = "127.0.0.1"


class Emulator:
    """The surface every emulator shares: `start()` (returning itself), `stop()`, and
    context-manager use that stops it however the block ends."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class EmulatorError(PortabindError):
    """Base class of the errors raised while starting a local emulator."""


class EmulatorUnavailable(UserError, EmulatorError):
    """The emulator is not installed here; the message says how to install it.

    A `UserError`, because installing it is the user's fix: the CLI prints it and exits 2,
    and the tests skip (or fail under CI) on it.
    """


class EmulatorFailed(EmulatorError):
    """The emulator is installed but did not come up (crashed or timed out)."""


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port on *host* that nothing listens on right now.

    The kernel picks it (bind to port 0). Another process could take it before the caller
    binds it; callers that launch a subprocess treat "address in use" as retryable.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(port: int, host: str = LOCALHOST, timeout: float = 0.25) -> bool:
    """True if a TCP connection to *host*:*port* succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int,
    host: str = LOCALHOST,
    *,
    timeout: float = 30.0,
    still_starting: Callable[[], bool] | None = None,
) -> float:
    """Block until *host*:*port* accepts connections; return the seconds it took.

    *still_starting* is polled between attempts so that a server process that has already
    died ends the wait at once instead of after the full timeout.

    Raises `TimeoutError` when the port is not open in time and `ChildProcessError` when
    *still_starting* returns False; callers turn both into an `EmulatorFailed` with their
    own context (which server, its log).
    """
    started = time.monotonic()
    deadline = started + timeout
    delay = 0.01
    while True:
        if port_accepts(port, host):
            return time.monotonic() - started
        if still_starting is not None and not still_starting():
            raise ChildProcessError(f"the server exited before {host}:{port} accepted connections")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{host}:{port} did not accept connections within {timeout:g} s")
        # Back off gently: most emulators are up within a second, so poll often at first.
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """Terminate an emulator's server process and wait for it; kill it if it is still there
    after *timeout* seconds. Nothing to do when it is None or has exited."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM, how emulators run on their own are stopped.
    Installed before they start, so that a signal sent once they listen is never missed."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stopping


class ServedEmulator(Protocol):
    """What `serve_until_signal` needs of an emulator: the gRPC servers' surface."""

    @property
    def address(self) -> str: ...

    def start(self) -> object: ...

    def stop(self) -> None: ...


def serve_until_signal(
    emulator: Callable[[str, int], ServedEmulator],
    *,
    title: str,
    address_variable: str,
    default_port: int,
    argv: list[str] | None = None,
) -> int:
    """The command line of an emulator module (`python -m portabind...emulators.pubsub`):
    `--host`/`--port`, its address alone on stdout (for scripts), until SIGINT or SIGTERM.
    A port already taken is exit 2 with one line, as any mistake of the user's."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {emulator.__module__}",
        description=f"Run portabind's in-memory Google Cloud {title} emulator (gRPC).",
    )
    parser.add_argument("--host", default=LOCALHOST, help=f"interface to bind ({LOCALHOST})")
    parser.add_argument(
        "--port",
        type=int,
        default=default_port,
        help=f"port to bind, 0 for any ({default_port})",
    )
    args = parser.parse_args(argv)
    stopping = stop_on_signals()
    server = emulator(args.host, args.port)
    try:
        server.start()
    except OSError as error:
        print(f"error: {error}. Choose another --port or stop what uses it.", file=sys.stderr)
        return 2
    try:
        print(server.address, flush=True)
        print(
            f"{title} emulator listening; set {address_variable}={server.address}. "
            "Stop with Ctrl-C.",
            file=sys.stderr,
            flush=True,
        )
        stopping.wait()
    finally:
        server.stop()
    return 0
