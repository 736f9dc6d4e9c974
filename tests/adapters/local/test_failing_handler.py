"""A failing handler under `portabind run`: one line at the app's own file:line, the whole
traceback with --debug, and --exit-after counting it like any other delivery."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from portabind.adapters.local.console import Console
from portabind.adapters.local.emulators import free_port
from portabind.tooling.scaffold import scaffold

if TYPE_CHECKING:
    from pathlib import Path

HANDLER = "def on_job(job):\n    return job['n'] ** 2\n"


def failure_in(path: Path) -> KeyError:
    """The error the handler in `path` raises, with its real traceback."""
    path.write_text(HANDLER)
    scope: dict[str, object] = {}
    exec(compile(HANDLER, str(path), "exec"), scope)
    handler = scope["on_job"]
    assert callable(handler)
    try:
        handler({})
    except KeyError as error:
        return error
    raise AssertionError("did not fail")


def test_a_failure_shows_the_apps_line(tmp_path: Path) -> None:
    stream = io.StringIO()
    Console(stream).failed("on_job", failure_in(tmp_path / "app.py"))

    [line] = stream.getvalue().splitlines()
    assert line == f"✗ on_job  KeyError: 'n' at {tmp_path / 'app.py'}:2 (left for redelivery)"


def test_with_debug_a_failure_shows_the_whole_traceback(tmp_path: Path) -> None:
    stream = io.StringIO()
    Console(stream, debug=True).failed("on_job", failure_in(tmp_path / "app.py"))

    shown = stream.getvalue()
    assert "Traceback (most recent call last):" in shown
    assert f'File "{tmp_path / "app.py"}", line 2, in on_job' in shown


@pytest.mark.server(name="moto")  # `run --emulate` starts moto in the subprocess
@pytest.mark.parametrize("debug", [False, True])
def test_exit_after_ends_the_run_after_a_failed_delivery(tmp_path: Path, debug: bool) -> None:
    app = tmp_path / "worker"
    scaffold("queue-worker", app)
    command = ["run", ".", "--components", "components/aws", "--emulate"]
    command += ["--send", 'jobs={"id": "a2"}', "--exit-after", "1"]
    command += ["--dapr-http-port", str(free_port()), "--dapr-grpc-port", str(free_port())]

    done = subprocess.run(
        [sys.executable, "-m", "portabind.tooling.cli", *command, *(["--debug"] if debug else [])],
        cwd=app,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert "✗ on_job  KeyError: 'n' at app.py:17" in done.stdout
    assert ("Traceback (most recent call last):" in done.stdout) is debug
