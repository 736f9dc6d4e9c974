"""`portabind init` scaffolds a project that loads and validates."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from portabind.errors import UserError
from portabind.tooling.project import check_project, load_project
from portabind.tooling.scaffold import scaffold, templates

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("profile", ["aws", "azure", "gcp"])
def test_every_template_profile_builds_a_valid_project(tmp_path: Path, profile: str) -> None:
    for name in templates():
        target = tmp_path / name
        written = scaffold(name, target)
        assert target / "app.py" in written
        project = load_project(target, target / "components" / profile)
        check_project(project, resolve_secrets=False)
        assert set(project.app.handlers) <= set(project.components.components)


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="is not empty"):
        scaffold("queue-worker", tmp_path)
