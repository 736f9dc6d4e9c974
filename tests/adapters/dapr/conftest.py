"""Fixtures of the Dapr target's tests: the project of tests/adapters/dapr/shop.py, and its
build."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.adapters.dapr.shop import COMPONENTS, write_project
from tests.helpers import portabind

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "shop", COMPONENTS)


@pytest.fixture
def built(project: Path, tmp_path: Path) -> Path:
    """The project built for the dapr target."""
    out = tmp_path / "out"
    result = portabind("build", project, "--target", "dapr", "--out", out)
    assert result.returncode == 0, result.stderr
    return out
