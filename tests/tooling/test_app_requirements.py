"""The app's own requirements.txt reaches every build's requirements.txt: the function imports
what the app imports. A pin that contradicts portabind's own range is one error showing both."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from portabind.tooling.cli import main
from portabind.tooling.scaffold import scaffold

if TYPE_CHECKING:
    from pathlib import Path


def build(app: Path, cloud: str) -> int:
    components = app / "components" / cloud
    out = app / "out" / cloud
    return main(["build", str(app), "--components", str(components), "--target", cloud,
                 "--out", str(out)])  # fmt: skip


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_the_apps_requirements_are_added_and_narrow_portabinds(tmp_path: Path, cloud: str) -> None:
    app = tmp_path / "worker"
    scaffold("queue-worker", app)
    with (app / "requirements.txt").open("a") as requirements:
        requirements.write("requests>=2.31  # the app calls an API\npydantic==2.8.2\nportabind\n")

    assert build(app, cloud) == 0

    lines = (app / "out" / cloud / "requirements.txt").read_text().splitlines()
    assert "requests>=2.31" in lines
    assert "pydantic>=2.6,==2.8.2" in lines
    assert not any(line.startswith("portabind") for line in lines)


def test_a_scaffolds_requirements_add_nothing(tmp_path: Path) -> None:
    app = tmp_path / "worker"
    scaffold("queue-worker", app)
    (tmp_path / "bare").mkdir()
    scaffold("queue-worker", tmp_path / "bare" / "worker")
    (tmp_path / "bare" / "worker" / "requirements.txt").unlink()

    assert build(app, "aws") == 0
    assert build(tmp_path / "bare" / "worker", "aws") == 0

    assert (app / "out/aws/requirements.txt").read_text() == (
        tmp_path / "bare/worker/out/aws/requirements.txt"
    ).read_text()


def test_a_pin_outside_portabinds_range_shows_both_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "worker"
    scaffold("queue-worker", app)
    with (app / "requirements.txt").open("a") as requirements:
        requirements.write("pydantic==1.10.0\n")

    assert build(app, "aws") == 2

    error = capsys.readouterr().err
    assert f"{app / 'requirements.txt'}:4: 'pydantic==1.10.0' conflicts with" in error
    assert "'pydantic>=2.6'" in error
    assert "Traceback" not in error
