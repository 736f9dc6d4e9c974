"""A package that is not installed, as one message naming the portabind extra that brings it.

portabind imports each SDK only where it is used (`run --emulate` on an Azure profile imports
the Azure SDKs), so a missing extra surfaces as a `ModuleNotFoundError` deep in a command."""

from __future__ import annotations

import re
import traceback
from typing import TYPE_CHECKING

from portabind.errors import UserError
from portabind.tooling import bundle

if TYPE_CHECKING:
    from types import TracebackType

#: Where in portabind the import failed → the extra, when the package name does not say it
#: (`azure` is a namespace of many distributions; `grpc` is distributed as `grpcio`).
_LOCAL_RUN = "portabind.adapters.local"
_BINDINGS = "portabind.bindings."


def _extras_of_module(module: str) -> list[str]:
    """The extras requiring a distribution named like `module` or a prefix of its name
    (`google.cloud.pubsub_v1` → google-cloud-pubsub), the longest name first."""
    parts = re.split(r"[._-]", module)
    for length in range(len(parts), 0, -1):
        extras = bundle.extras_requiring("-".join(parts[:length]))
        if extras:
            return extras
    return []


def _extra_of_caller(trace: TracebackType | None) -> str | None:
    """The extra of the innermost portabind module the import was made from."""
    for frame, _ in reversed(list(traceback.walk_tb(trace))):
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith(_BINDINGS):
            return bundle.extra_of_family(module.removeprefix(_BINDINGS).split(".")[0])
        if module.startswith(_LOCAL_RUN):
            return "local"
    return None


def missing_package(error: ModuleNotFoundError) -> UserError:
    """The error a user reads for `error`: the package, and the extra to install."""
    package = error.name or "?"
    extras = _extras_of_module(package)
    caller = _extra_of_caller(error.__traceback__)
    if not extras and caller:
        extras = [caller]
    if not extras:
        return UserError(
            f"the Python package {package!r} is not installed",
            hint=f"pip install {package.split('.')[0]}, or the portabind extra of the "
            "feature you use (pip install 'portabind[all]' brings every one)",
        )
    return UserError(
        f"the Python package {package!r} is not installed; it comes with portabind's "
        f"{' or '.join(repr(e) for e in extras)} extra",
        hint=f"pip install 'portabind[{extras[0]}]'",
    )
