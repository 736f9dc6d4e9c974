"""`portabind --version`, and the global options (`--debug`, `--strict`) anywhere on the line."""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING

import pytest

from portabind.tooling.cli import main
from portabind.tooling.scaffold import scaffold

if TYPE_CHECKING:
    from pathlib import Path


def test_version_names_the_installed_release(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out == f"portabind {importlib.metadata.version('portabind')}\n"


@pytest.fixture
def with_a_typo(tmp_path: Path) -> list[str]:
    """validate's arguments for a scaffold whose component has a misspelt field (a warning)."""
    app = tmp_path / "worker"
    scaffold("queue-worker", app)
    jobs = app / "components" / "aws" / "jobs.yaml"
    typo = "    - {name: queueName, value: jobs}\n    - {name: visibilityTimout, value: 5s}"
    jobs.write_text(jobs.read_text().replace("    - {name: queueName, value: jobs}", typo, 1))
    return ["validate", str(app), "--components", str(jobs.parent)]


@pytest.mark.parametrize("place", ["before", "after"])
def test_strict_before_or_after_the_command_makes_warnings_errors(
    with_a_typo: list[str], place: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--strict", *with_a_typo] if place == "before" else [*with_a_typo, "--strict"]

    assert main(argv) == 2
    assert "visibilityTimout" in capsys.readouterr().err


def test_without_strict_a_warning_does_not_stop(
    with_a_typo: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(with_a_typo) == 0
    assert "warning:" in capsys.readouterr().err


@pytest.mark.parametrize("place", ["before", "after"])
def test_debug_before_or_after_the_command_shows_the_traceback(
    tmp_path: Path, place: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = ["validate", str(tmp_path / "nowhere")]
    argv = ["--debug", *missing] if place == "before" else [*missing, "--debug"]

    assert main(argv) == 2
    assert "Traceback (most recent call last):" in capsys.readouterr().err
