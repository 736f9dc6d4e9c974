"""Build targets, and how tooling finds them: the one place tooling imports an adapter.

A target is an adapter package with a build part: `portabind.adapters.<name>.build` defines
`TARGET = Target(...)`. Targets are discovered by walking `portabind.adapters`, so a new one
(a folder with `runtime.py` and `build.py`) appears in `portabind build --target`, in the
support matrix and in validation without editing any list. An adapter without a build part
(`local`, the `portabind run` environment) is reached by name through `adapter`.

Each target declares one `Trigger` per binding type it gives a native trigger: what the
support matrix shows, the runtime entry the generated code calls (the `Function` method
itself, not its name as a string) and the build's writer for it.

A target's build can take settings of its own (`BuildOption`s, e.g. the dapr target's
`--app-protocol`): `portabind build` offers each as a flag, passes it to the build function as a
keyword argument, and refuses it for a target that does not declare it.

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

from portabind import registry
from portabind.errors import ComponentError, UserError, ValidationFailed
from portabind.tooling.deployment import Deployer

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path
    from types import ModuleType
    from typing import Concatenate

    from portabind.annotations import Annotations, ParsedAnnotations
    from portabind.components import Component
    from portabind.tooling.project import Project

_ADAPTERS = "portabind.adapters"
Writer = TypeVar("Writer")
#: A value a runtime entry takes as a keyword argument (written into generated code).
EntryOption = bool | int | str


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
    #: The keyword arguments `entry` takes for a component: what the build decides from its
    #: annotations (the generated entry passes them, and so does the test client), so the
    #: deployed function does not read annotations again.
    options: Callable[[Component, ParsedAnnotations], Mapping[str, EntryOption]] = (
        lambda _component, _annotations: {}
    )


@dataclass(frozen=True)
class BuildOption:
    """A setting one target's build takes: `portabind build --target T --NAME VALUE`."""

    #: The flag without its dashes (`app-protocol`).
    name: str
    choices: tuple[str, ...]
    default: str
    help: str

    @property
    def keyword(self) -> str:
        """The build function's keyword argument for it (`app_protocol`)."""
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class Target:
    """What `adapters/<name>/build.py` exports as `TARGET`."""

    name: str
    #: Writes the deployable artifact for a project into a directory; returns the files. It
    #: takes each of `options` as a keyword argument (`BuildOption.keyword`).
    build: Callable[Concatenate[Project, Path, ...], list[Path]]
    triggers: Sequence[Trigger[Any]]
    #: Input types without a native trigger here → the honest alternative to offer.
    fallbacks: Mapping[str, str] = field(default_factory=dict)
    #: The `portabind.io/` annotations its build reads: by binding type, and for every type.
    annotations: Mapping[str, Sequence[type[Annotations]]] = field(default_factory=dict)
    common_annotations: Sequence[type[Annotations]] = ()
    #: What the build cannot express of the project (Resiliency policies the platform has no
    #: setting for), as warnings naming each policy; `build` prints them.
    cannot_express: Callable[[Project], list[UserError]] = lambda _project: []
    #: The settings of its own its build takes (`portabind build --target NAME --OPTION`).
    options: Sequence[BuildOption] = ()

    def chosen_options(self, given: Mapping[str, str]) -> dict[str, str]:
        """The build's keyword arguments: the options `given` by name, the defaults of the
        others. An option this target does not declare, or a value not among its choices,
        raises."""
        declared = {option.name: option for option in self.options}
        for name, value in given.items():
            option = declared.get(name)
            if option is None:
                takes = ", ".join(f"--{known}" for known in declared) or "no option of its own"
                takers = [target for target, _ in build_options().get(name, [])]
                raise UserError(
                    f"--{name} is not an option of the {self.name} build (it takes {takes})",
                    hint=f"only the {' and '.join(takers)} build takes --{name}"
                    if takers
                    else None,
                )
            if value not in option.choices:
                raise UserError(
                    f"--{name} {value!r} is not one of {', '.join(option.choices)}",
                    hint=option.help,
                )
        return {
            option.keyword: given.get(option.name, option.default) for option in declared.values()
        }

    def trigger(self, binding_type: str) -> Trigger[Any] | None:
        return next((t for t in self.triggers if t.binding_type == binding_type), None)

    def annotation_models(self, component: Component) -> tuple[type[Annotations], ...]:
        """The models of the annotations this target reads for the component: its binding's
        own, this target's common ones and those of its type."""
        own = registry.binding_for(component).annotations
        return tuple(
            dict.fromkeys(
                (
                    *((own,) if own else ()),
                    *self.common_annotations,
                    *self.annotations.get(component.type, ()),
                )
            )
        )

    def parse_annotations(self, component: Component) -> ParsedAnnotations:
        """The component's annotations as this target reads them. Keys only other targets
        read are left alone here; `check_annotations` checks the whole namespace."""
        from portabind.annotations import parse_annotations

        return parse_annotations(component, self.annotation_models(component), partial=True)

    def entry_options(self, trigger: Trigger[Any], component: Component) -> dict[str, EntryOption]:
        """The keyword arguments of `trigger.entry` for the component."""
        return dict(trigger.options(component, self.parse_annotations(component)))


def cannot_express(
    component: Component, target: str, kind: str, policy: str, why: str
) -> ComponentError:
    """The warning for an inbound Resiliency policy (or a part of it) a target cannot
    express: it names the policy, what the target does instead, and is not an error."""
    return component.error(
        f"the {target} build cannot express the inbound {kind} policy {policy!r}: {why}"
    )


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


def build_options() -> dict[str, list[tuple[str, BuildOption]]]:
    """Every target's build options by name, each with the target declaring it."""
    found: dict[str, list[tuple[str, BuildOption]]] = {}
    for name, declaring in targets().items():
        for option in declaring.options:
            found.setdefault(option.name, []).append((name, option))
    return found


@dataclass(frozen=True)
class AnnotationCheck:
    """What `check_annotations` found besides errors."""

    #: Annotations the build target ignores because only other targets read them.
    warnings: list[UserError]
    #: `portabind.io/trigger` turns on a trigger portabind adds to an output-only type.
    extension: bool


def check_annotations(component: Component, build_target: str | None = None) -> AnnotationCheck:
    """Every `portabind.io/` annotation of the component against what its binding and every
    target declare: a value of the wrong kind, or a key nobody declares (with the nearest
    declared one), raises. A key is known when the binding or any target reads it; for a
    build, those only other targets read are warnings."""
    # Here, not at the top: the annotation models build pydantic models, which the CLI's
    # other commands (and its start) do without.
    from portabind.annotations import (
        ExtensionTrigger,
        field_name,
        parse_annotations,
        unknown_annotations,
    )

    readers: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    problems: dict[tuple[str | None, str], ComponentError] = {}
    extension = False
    own = registry.binding_for(component).annotations
    for name, declaring in targets().items():
        models = declaring.annotation_models(component)
        for model in models:
            for key, spelled in model.dapr_names().items():
                names[key] = spelled
                readers.setdefault(key, set()).add("" if model is own else name)
        try:
            parsed = parse_annotations(component, models, partial=True)
        except (ValidationFailed, ComponentError) as failed:
            # The binding's own model is read for every target: report its errors once.
            errors = failed.errors if isinstance(failed, ValidationFailed) else [failed]
            problems.update(
                ((e.field, e.message), e) for e in errors if isinstance(e, ComponentError)
            )
            continue
        extension |= any(
            isinstance(model, ExtensionTrigger) and model.trigger for model in parsed.instances()
        )
    for unknown in unknown_annotations(component, names):
        assert isinstance(unknown, ComponentError)
        problems[(unknown.field, unknown.message)] = unknown
    if problems:
        found: list[UserError] = list(problems.values())
        raise found[0] if len(found) == 1 else ValidationFailed(found)
    warnings: list[UserError] = []
    for key in component.annotations:
        used_by = readers[key.lower()]
        if build_target is not None and "" not in used_by and build_target not in used_by:
            warnings.append(
                component.error(
                    f"the {build_target} build ignores this annotation: only "
                    f"{', '.join(sorted(used_by))} read{'s' if len(used_by) == 1 else ''} it",
                    field=field_name(key),
                )
            )
    return AnnotationCheck(warnings, extension)


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
