"""What validation says besides errors: warnings, and the documents the loader skips.

Both are `UserError`s, so they name the file, the component and the field as errors do and
print in the same format. A warning is something a Dapr sidecar would accept that is likely
a mistake (an unknown key, a key given twice, a key that changes nothing here); `--strict`
makes warnings errors. A `Skipped` notice says the loader left a document out, as Dapr's
loader does (a Kubernetes object, a component of another building block nothing uses, one
scoped to another app): it is never an error, since such a directory is as Dapr expects it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from portabind.errors import ComponentError, ValidationFailed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from portabind.errors import UserError


class Skipped(ComponentError):
    """A document the loader leaves out, and why."""


class StrictFailure(ValidationFailed):
    """Warnings under `--strict`."""

    def __init__(self, warnings: list[UserError]) -> None:
        super().__init__(warnings)
        self.hint = "--strict makes every warning an error; fix them, or drop --strict"


def report(notices: Sequence[UserError], *, strict: bool) -> None:
    """Print each notice once on stderr (`warning: …`, `skipped: …`); with `strict`, raise
    the warnings as one error instead."""
    warnings = [notice for notice in notices if not isinstance(notice, Skipped)]
    for notice in notices:
        if isinstance(notice, Skipped) or not strict:
            label = "skipped" if isinstance(notice, Skipped) else "warning"
            print(f"{label}: {notice.render()}", file=sys.stderr)
    if strict and warnings:
        raise StrictFailure(warnings)
