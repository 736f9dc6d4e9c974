"""Every template, as `portabind init` scaffolds it, validates under --strict and builds for
each of its clouds; `init --list` and `init --help` name them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from portabind.tooling.cli import main
from portabind.tooling.scaffold import description, scaffold, templates

if TYPE_CHECKING:
    from pathlib import Path

CLOUDS = ("aws", "azure", "gcp")
#: The file each target's build writes that the platform starts from.
ENTRY = {"aws": "template.yaml", "azure": "function_app.py", "gcp": "main.py"}
#: The six kinds of trigger users start from.
EXPECTED = {
    "queue-worker",
    "stream-processor",
    "scheduled-job",
    "http-api",
    "storage-events",
    "fan-out",
}


def test_the_six_kinds_of_trigger_have_a_template() -> None:
    assert set(templates()) >= EXPECTED


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("name", sorted(templates()))
def test_each_profile_validates_strictly_and_builds_for_its_cloud(
    tmp_path: Path, name: str, cloud: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / name
    scaffold(name, app)
    components = app / "components" / cloud
    out = app / "out" / cloud

    assert main(["validate", str(app), "--components", str(components), "--strict"]) == 0
    assert main(["build", str(app), "--components", str(components), "--target", cloud,
                 "--out", str(out), "--strict"]) == 0  # fmt: skip
    assert (out / ENTRY[cloud]).is_file()
    assert "warning" not in capsys.readouterr().err
    assert all(_checked_hash(pyc) for pyc in out.rglob("*.pyc")), "a cache in the artifact"
    if cloud != "aws":
        assert not list(out.rglob("__pycache__"))


def _checked_hash(pyc: Path) -> bool:
    """Whether `pyc` is bytecode the AWS build compiles on purpose: hash-checked (PEP 552),
    so it stays valid when `sam build` copies the files with new mtimes."""
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    return flags == 0b11


@pytest.mark.parametrize("name", sorted(templates()))
def test_a_scaffold_has_its_readme_requirements_tests_and_ignores_build_output(
    tmp_path: Path, name: str
) -> None:
    written = scaffold(name, tmp_path / name)

    relative = {path.relative_to(tmp_path / name).as_posix() for path in written}
    assert {"app.py", "README.md", "requirements.txt", "pyproject.toml"} <= relative
    assert any(path.startswith("tests/test_") for path in relative)
    assert {f"components/{cloud}" for cloud in CLOUDS} <= {p.rsplit("/", 1)[0] for p in relative}
    assert "out/" in (tmp_path / name / ".gitignore").read_text().splitlines()


def test_init_list_prints_each_template_on_its_line_name_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["init", "--list"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == sorted(templates())
    for line, (name, template) in zip(lines, sorted(templates().items()), strict=True):
        assert line.endswith(description(template))
        assert description(template), name


def test_init_help_names_every_template(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["init", "--help"])

    shown = capsys.readouterr().out
    assert all(name in shown for name in templates())


def test_init_without_a_directory_is_one_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init"]) == 2

    error = capsys.readouterr().err
    assert error.startswith("error: init needs the new app's directory")
    assert "Traceback" not in error
