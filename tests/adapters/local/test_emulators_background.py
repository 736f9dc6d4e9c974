"""`portabind emulators up | status | down`: emulators in a process of their own, whose queued
messages outlive a runner killed with SIGKILL; a stale state file; mistakes."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from portabind.adapters.local.console import Console
from portabind.adapters.local.emulate import (
    STATE_FILE,
    EmulatorRecord,
    Emulators,
    EmulatorsState,
    process_alive,
)
from portabind.adapters.local.emulators import free_port, port_accepts
from portabind.adapters.local.runner import RunOptions, run
from portabind.tooling.project import load_components, load_project
from tests.helpers import PORTABIND, portabind, require_server, server_fixture

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

#: Blocks on the first delivery it sees (until killed), handles the next one: the runner that
#: took the message dies holding it. Both files live beside app.py.
BLOCKING_APP = """\
import time
from pathlib import Path

from portabind import App, BindingEvent

app = App()
HERE = Path(__file__).parent


@app.binding("jobs")
def on_job(event: BindingEvent) -> None:
    started = HERE / "started"
    if not started.exists():
        started.write_bytes(event.data)
        time.sleep(600)
    (HERE / "handled").write_bytes(event.data)
"""

MESSAGE = '{"job": "survives"}'


@pytest.fixture
def project(tmp_path: Path, write_component: Callable[..., Path]) -> Path:
    """An app on an SQS queue whose unacknowledged messages come back after 1 s."""
    (tmp_path / "app.py").write_text(BLOCKING_APP)
    component = write_component(
        tmp_path / "components", "jobs", "bindings.aws.sqs", queueName="jobs"
    )
    component.write_text(
        component.read_text().replace(
            "  name: jobs\n",
            '  name: jobs\n  annotations:\n    portabind.io/visibilityTimeout: "1"\n',
        )
    )
    return tmp_path


@server_fixture("moto")
def emulators_up(project: Path) -> Iterator[EmulatorsState]:
    """`portabind emulators up` in the project; `down` afterwards, whatever the test did."""
    if importlib.util.find_spec("moto") is None:
        require_server("moto", "the moto package is not installed", "make venv")
    result = portabind("emulators", "up", cwd=project)
    assert result.returncode == 0, result.stderr
    state = EmulatorsState.model_validate_json((_state_file(project)).read_text())
    try:
        yield state
    finally:
        portabind("emulators", "down", cwd=project)


def _state_file(project: Path) -> Path:
    return project / ".portabind" / "emulators" / STATE_FILE


def _record_up(
    state_dir: Path, pid: int, emulator: str, endpoint: str, url: str, uses: str
) -> None:
    """A state file as `up` (process `pid`) writes it: one emulator serving `endpoint` at
    `url`, for component `uses`."""
    record = EmulatorRecord(endpoints={endpoint: url}, environ={}, components=[uses])
    state = EmulatorsState(pid=pid, components="elsewhere", emulators={emulator: record})
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / STATE_FILE).write_text(state.model_dump_json())


def _run_args(project: Path, *extra: str) -> list[str]:
    ports = ("--dapr-http-port", str(free_port()), "--dapr-grpc-port", str(free_port()))
    return [str(PORTABIND), "run", str(project), "--emulate", *ports, *extra]


def _wait_for(path: Path, process: subprocess.Popen[Any], log: Path) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the runner never handled the message:\n{log.read_text()}")
        time.sleep(0.05)


def test_a_queued_message_outlives_a_runner_killed_while_handling_it(
    project: Path, emulators_up: EmulatorsState
) -> None:
    log = project / "first-run.log"
    with log.open("wb") as output:
        first = subprocess.Popen(
            _run_args(project, "--send", f"jobs={MESSAGE}"),
            cwd=project,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(project / "started", first, log)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert "using those of `portabind emulators up`" in log.read_text()

    second = subprocess.run(
        _run_args(project, "--exit-after", "1"),
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert second.returncode == 0, second.stdout + second.stderr
    assert (project / "handled").read_text() == MESSAGE
    assert f"pid {emulators_up.pid}" in second.stdout


def test_down_stops_the_process_and_frees_its_ports(
    project: Path, emulators_up: EmulatorsState
) -> None:
    status = portabind("emulators", "status", cwd=project)
    assert status.returncode == 0
    assert emulators_up.emulators["moto"].endpoints["moto"] in status.stdout
    again = portabind("emulators", "up", cwd=project)
    assert again.returncode == 2
    assert f"already up (pid {emulators_up.pid}" in again.stderr

    result = portabind("emulators", "down", cwd=project)

    assert result.returncode == 0, result.stderr
    assert not process_alive(emulators_up.pid)
    assert not any(port_accepts(port) for port in emulators_up.emulators["moto"].ports())
    assert not _state_file(project).exists()
    assert portabind("emulators", "status", cwd=project).returncode == 1


def _dead_pid() -> int:
    process = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(process.stdout)


def test_a_stale_state_file_is_ignored_by_run_and_removed_by_down(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if importlib.util.find_spec("moto") is None:
        require_server("moto", "the moto package is not installed", "make venv")
    stale = _state_file(project)
    stale.parent.mkdir(parents=True)
    pid = _dead_pid()
    endpoint = f"http://127.0.0.1:{free_port()}"
    stale.write_text(
        json.dumps(
            {
                "pid": pid,
                "components": str(project / "components"),
                "emulators": {
                    "moto": {"endpoints": {"moto": endpoint}, "environ": {}, "components": ["jobs"]}
                },
            }
        )
    )
    (project / "started").write_text("")  # the app handles the first delivery at once
    options = RunOptions(
        emulate=True,
        sends=[("jobs", MESSAGE.encode())],
        exit_after=1,
        dapr_port=free_port(),
        app_port=None,
    )

    assert run(load_project(project), options) == 0

    output = capsys.readouterr().out
    assert f"(pid {pid}) that no longer run: starting them here" in output
    assert endpoint not in output
    assert (project / "handled").read_text() == MESSAGE
    result = portabind("emulators", "down", cwd=project)
    assert result.returncode == 0
    assert "no longer ran: removed it" in result.stdout
    assert not stale.exists()


#: `up`'s process in small: an emulator child of its own (a port that listens, as Azurite's
#: node process), whose port it prints, then waits.
LEADER_WITH_A_CHILD = """\
import subprocess, sys, time
child = "import socket, time; s = socket.create_server(('127.0.0.1', 0)); "
child += "print(s.getsockname()[1], flush=True); time.sleep(600)"
subprocess.Popen([sys.executable, "-c", child])
time.sleep(600)
"""


def test_down_stops_what_an_up_killed_with_sigkill_left_running(project: Path) -> None:
    leader = subprocess.Popen(
        [sys.executable, "-c", LEADER_WITH_A_CHILD],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # as `up` starts its process
    )
    assert leader.stdout is not None
    port = int(leader.stdout.readline())
    url = f"http://127.0.0.1:{port}"
    _record_up(_state_file(project).parent, leader.pid, "azurite", "azurite.queue", url, "jobs")
    leader.kill()
    leader.wait()
    assert port_accepts(port)  # its emulator outlived it

    result = portabind("emulators", "down", cwd=project)

    assert result.returncode == 0, result.stderr
    assert "no longer ran: removed it; stopped what it had started" in result.stdout
    assert not port_accepts(port)
    assert not _state_file(project).exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["emulators", "up", "--components", "missing"], "components directory"),
        (["emulators", "up", "--components", "no-emulator"], "no component in no-emulator uses"),
        (["emulators", "sideways"], "invalid choice: 'sideways'"),
        (["emulators"], "the following arguments are required: ACTION"),
    ],
)
def test_mistakes_exit_2_with_one_message(
    tmp_path: Path,
    write_component: Callable[..., Path],
    arguments: list[str],
    message: str,
) -> None:
    write_component(tmp_path / "no-emulator", "cache", "bindings.redis", redisHost="x:6379")

    result = portabind(*arguments, cwd=tmp_path)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".portabind").exists()


def test_down_and_status_with_nothing_up_say_so(tmp_path: Path) -> None:
    down = portabind("emulators", "down", cwd=tmp_path)
    status = portabind("emulators", "status", cwd=tmp_path)

    assert (down.returncode, status.returncode) == (0, 1)
    assert down.stdout.startswith("no emulators are up")
    assert status.stdout.startswith("no emulators are up")


def test_a_state_directory_elsewhere_is_named_by_state_dir(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("state")
    (elsewhere / STATE_FILE).write_text("not json")

    status = portabind("emulators", "status", "--state-dir", elsewhere, cwd=project)
    down = portabind("emulators", "down", "--state-dir", elsewhere, cwd=project)

    assert status.returncode == 2
    assert f"{elsewhere / STATE_FILE} is not a state file" in status.stderr
    assert down.returncode == 0
    assert not (elsewhere / STATE_FILE).exists()


def test_invoke_reads_the_emulators_of_state_dir(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if importlib.util.find_spec("moto") is None:
        require_server("moto", "the moto package is not installed", "make venv")
    elsewhere = tmp_path_factory.mktemp("state")
    pid = _dead_pid()
    _record_up(elsewhere, pid, "moto", "moto", f"http://127.0.0.1:{free_port()}", "jobs")
    ports = ("--dapr-http-port", str(free_port()))

    result = portabind(
        "invoke", "jobs", "create", "--data", MESSAGE, "--emulate", "--state-dir", elsewhere,
        *ports, cwd=project,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert f"(pid {pid}) that no longer run: starting them here" in result.stderr


def test_an_emulator_up_did_not_start_is_started_by_the_run_with_a_warning(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if importlib.util.find_spec("moto") is None:
        require_server("moto", "the moto package is not installed", "make venv")
    # A live `up` (this process, a port that answers) whose emulators lack the run's moto.
    state_dir = tmp_path_factory.mktemp("state")
    with socket.create_server(("127.0.0.1", 0)) as listening:
        gcs = f"http://127.0.0.1:{listening.getsockname()[1]}"
        _record_up(state_dir, os.getpid(), "gcs", "gcs", gcs, "photos")
        output = io.StringIO()
        emulators = Emulators(Console(output), state_dir)
        try:
            emulators.start(load_components(project / "components"))
        finally:
            emulators.stop()

    assert (
        "moto for jobs is not among the emulators of `portabind emulators up`" in output.getvalue()
    )
    assert list(emulators.started) == ["moto"]
    assert emulators.endpoints["moto"] == emulators.started["moto"].endpoints["moto"]
