"""`portabind init`: copy a template from the `portabind.templates` package data.

Each template is a folder (its app, components per cloud, README.md, tests); `_shared/` holds
what every scaffold gets besides (pytest settings, requirements.txt, .gitignore)."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from portabind.errors import UserError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable
    from pathlib import Path


#: Files stored under another name: package data globs and wheels leave dotfiles out.
_RENAMED = {"gitignore": ".gitignore"}
_SHARED = "_shared"


def templates() -> dict[str, Traversable]:
    root = resources.files("portabind.templates")
    return {
        entry.name: entry
        for entry in root.iterdir()
        if entry.is_dir() and not entry.name.startswith(("_", "."))
    }


def description(template: Traversable) -> str:
    """The template's one-line description: the first line of its README after the title."""
    lines = template.joinpath("README.md").read_text(encoding="utf-8").splitlines()
    return next((line.strip() for line in lines[1:] if line.strip()), "")


def _copy(source: Traversable, target: Path, written: list[Path]) -> None:
    for entry in source.iterdir():
        if entry.name == "__pycache__":
            continue
        destination = target / _RENAMED.get(entry.name, entry.name)
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
    if target.is_symlink() and not target.exists():
        raise UserError(
            f"{target} is a symbolic link to a path that does not exist",
            hint="pick a new directory, or remove the link",
        )
    if target.exists() and not target.is_dir():
        raise UserError(f"{target} exists and is not a directory", hint="pick a new directory")
    if target.exists() and any(target.iterdir()):
        raise UserError(f"{target} is not empty", hint="pick a new directory")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a parent that is a file (`notes.txt/app`), no permission
        raise UserError(
            f"cannot create {target}: {error.strerror}", hint="pick a new directory"
        ) from None
    written: list[Path] = []
    _copy(resources.files("portabind.templates").joinpath(_SHARED), target, written)
    _copy(available[template], target, written)
    return sorted(written)
