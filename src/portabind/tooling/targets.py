"""Build targets, and how tooling finds them: the one place tooling imports an adapter.

A target is an adapter package with a build part: `portabind.adapters.<name>.build` defines
`TARGET = Target(...)`. Targets are discovered by walking `portabind.adapters`, so a new one
(a folder with `runtime.py` and `build.py`) appears in `portabind build --target`, in the
support matrix and in validation without editing any list. An adapter without a build part
(`local`, the `portabind run` environment) is reached by name through `adapter`.

Each target declares one `Trigger` per binding type it gives a native trigger: what the
support matrix shows, the runtime entry the generated code calls (the `Function` method
itself, not its name as a string) and the build's writer for it.

A target that can be deployed has a deploy part too, `portabind.adapters.<name>.deploy`
defining `DEPLOYER = Deployer(...)` (`portabind.tooling.deployment`), found the same way.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from portabind.errors import UserError
from portabind.tooling.deployment import Deployer

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path
    from types import ModuleType

    from portabind.tooling.project import Project

_ADAPTERS = "portabind.adapters"
Writer = TypeVar("Writer")


@dataclass(frozen=True)
class Trigger(Generic[Writer]):
    """A binding type's native trigger on one target."""

    binding_type: str
    #: What the support matrix shows, e.g. "SQS" or "queue_trigger".
    native: str
    #: The runtime's handler factory (a method of the target's `Function`): given the input
    #: component's name it returns the callable the platform invokes.
    entry: Callable[..., Any]
    #: The build's writer for this trigger; its signature is the target's own.
    write: Writer
    #: Dapr gives the type no input direction: the trigger is opt-in with the annotation
    #: `portabind.io/trigger: "true"`.
    extension: bool = False


@dataclass(frozen=True)
class Target:
    """What `adapters/<name>/build.py` exports as `TARGET`."""

    name: str
    #: Writes the deployable artifact for a project into a directory; returns the files.
    build: Callable[[Project, Path], list[Path]]
    triggers: Sequence[Trigger[Any]]
    #: Input types without a native trigger here → the honest alternative to offer.
    fallbacks: Mapping[str, str] = field(default_factory=dict)

    def trigger(self, binding_type: str) -> Trigger[Any] | None:
        return next((t for t in self.triggers if t.binding_type == binding_type), None)


def adapter(name: str, part: str) -> ModuleType:
    """Module `part` of adapter `name` (`adapter("local", "runner")`)."""
    return importlib.import_module(f"{_ADAPTERS}.{name}.{part}")


def target_names() -> list[str]:
    """The build targets shipped, found from the file tree alone (nothing is imported, so the
    CLI can list them cheaply)."""
    package = importlib.import_module(_ADAPTERS)
    return sorted(
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if info.ispkg and importlib.util.find_spec(f"{_ADAPTERS}.{info.name}.build") is not None
    )


def target(name: str) -> Target:
    """The target `name`, its build module imported."""
    if name not in target_names():
        raise UserError(f"unknown target {name!r}", hint=f"targets: {', '.join(target_names())}")
    found = getattr(adapter(name, "build"), "TARGET", None)
    if not isinstance(found, Target) or found.name != name:
        raise TypeError(f"{_ADAPTERS}.{name}.build must define TARGET = Target({name!r}, ...)")
    return found


@functools.cache
def targets() -> dict[str, Target]:
    """Every build target shipped, by name."""
    return {name: target(name) for name in target_names()}


def deployable_names() -> list[str]:
    """The targets with a deploy part, found from the file tree alone (as `target_names`)."""
    return [
        name
        for name in target_names()
        if importlib.util.find_spec(f"{_ADAPTERS}.{name}.deploy") is not None
    ]


def deployer(name: str) -> Deployer:
    """The deploy part of target `name`, its module imported."""
    if name not in deployable_names():
        raise UserError(
            f"target {name!r} cannot be deployed by portabind",
            hint=f"targets it deploys: {', '.join(deployable_names())}; `portabind build "
            f"--target {name}` writes the artifact for the platform's own tools",
        )
    found = getattr(adapter(name, "deploy"), "DEPLOYER", None)
    if not isinstance(found, Deployer):
        raise TypeError(f"{_ADAPTERS}.{name}.deploy must define DEPLOYER = Deployer(...)")
    return found
