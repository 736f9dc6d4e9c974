"""Helpers shared by the local target's tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


@pytest.fixture
def write_component() -> Callable[..., Path]:
    """`write_component(directory, name, type, **metadata)` writes `<directory>/<name>.yaml`
    (one Dapr Component; region us-east-1 unless given) and returns its path."""

    def write(directory: Path, name: str, type_: str, **metadata: str) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.yaml"
        values = {"region": "us-east-1", **metadata}
        items = "".join(f"    - name: {k}\n      value: {v}\n" for k, v in values.items())
        path.write_text(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\n"
            f"metadata:\n  name: {name}\nspec:\n  type: {type_}\n  version: v1\n"
            f"  metadata:\n{items}"
        )
        return path

    return write
