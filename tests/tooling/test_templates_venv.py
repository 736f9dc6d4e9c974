"""Each template scaffolded by a portabind installed from a wheel of this checkout, in a fresh
venv holding only that wheel (with the cloud extras the test client drives) and pytest: the
scaffold's own tests pass there, as they do for a new user.

Slow (a wheel build and a venv install, a few minutes on a cold pip cache), so the venv is a
server fixture: ``pytest -m "not server"`` leaves these tests out, and
``-m "server(name='templates-venv')"`` runs only them."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from portabind.tooling.scaffold import templates
from tests.helpers import require_server, server_fixture

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
#: The extras whose SDKs and platform libraries `portabind.testing` builds events with.
EXTRAS = "aws,azure,gcp"
_FIX = "network access to PyPI (pip builds the wheel and installs its dependencies)"
#: The venv's install (the cloud SDKs) alone can pass the suite's 300 s on a busy machine.
pytestmark = pytest.mark.timeout(1800)


def _pip(python: Path, *args: str) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        require_server("templates-venv", f"pip {args[0]} failed:\n{done.stderr[-2000:]}", _FIX)


@server_fixture("templates-venv", scope="session")
def installed_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with portabind from one wheel of this checkout, and pytest: its `bin`."""
    root = tmp_path_factory.mktemp("templates-venv")
    wheels = root / "wheels"
    _pip(Path(sys.executable), "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT))
    [wheel] = wheels.glob("portabind-*.whl")
    venv.create(root / "venv", with_pip=True)
    bin_dir = root / "venv" / "bin"
    _pip(bin_dir / "python", "install", "-q", f"portabind[{EXTRAS}] @ {wheel.as_uri()}", "pytest")
    yield bin_dir


@pytest.mark.parametrize("name", sorted(templates()))
def test_the_scaffolds_own_tests_pass_in_a_fresh_venv(
    installed_venv: Path, tmp_path: Path, name: str
) -> None:
    app = tmp_path / name
    subprocess.run([installed_venv / "portabind", "init", app, "--template", name], check=True)

    tested = subprocess.run(
        [installed_venv / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=app,
        capture_output=True,
        text=True,
        check=False,
    )

    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert " passed" in tested.stdout
    assert "skipped" not in tested.stdout
