"""`portabind init`: copy a template from the `portabind.templates` package data."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from portabind.errors import UserError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable
    from pathlib import Path


def templates() -> dict[str, Traversable]:
    root = resources.files("portabind.templates")
    return {
        entry.name: entry
        for entry in root.iterdir()
        if entry.is_dir() and not entry.name.startswith(("_", "."))
    }


def _copy(source: Traversable, target: Path, written: list[Path]) -> None:
    for entry in source.iterdir():
        if entry.name == "__pycache__":
            continue
        destination = target / entry.name
        if entry.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            _copy(entry, destination, written)
        else:
            destination.write_bytes(entry.read_bytes())
            written.append(destination)


def scaffold(template: str, target: Path) -> list[Path]:
    """Create a new app in `target` (which must be missing or empty) from `template`."""
    available = templates()
    if template not in available:
        raise UserError(
            f"no template named {template!r}",
            hint=f"templates: {', '.join(sorted(available))}",
        )
    if target.exists() and any(target.iterdir()):
        raise UserError(f"{target} is not empty", hint="pick a new directory")
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    _copy(available[template], target, written)
    return sorted(written)
