"""A user's project: the app module plus one components profile, loaded and checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from portabind import registry
from portabind.app import App
from portabind.bundled import DEFAULT_APP, load_app
from portabind.components import (
    Component,
    ComponentSet,
    Resiliency,
    parse_metadata,
    placeholder_values,
)
from portabind.errors import AppError, ComponentError, UserError, ValidationFailed
from portabind.resiliency import policies
from portabind.secrets import PlatformOnly, SecretResolver
from portabind.secretstores import store_for
from portabind.tooling.targets import check_annotations, target

if TYPE_CHECKING:
    from collections.abc import Mapping

    from portabind.metadata import BindingMetadata


@dataclass(frozen=True)
class Project:
    directory: Path
    app: App
    app_ref: str
    components: ComponentSet

    @property
    def app_module_file(self) -> Path:
        return app_source(self.directory, self.app_ref)


def app_source(directory: Path, app_ref: str) -> Path:
    """The file of the app module `app_ref` names (`module:attr`)."""
    return directory / (app_ref.split(":", 1)[0].replace(".", "/") + ".py")


def load_documents(path: Path) -> list[Component | Resiliency]:
    """Every document in one YAML file, validated."""
    import yaml

    from portabind.tooling import schema

    try:
        raw_documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ComponentError(f"malformed YAML{where}: {problem}", file=path) from None
    except OSError as error:
        raise ComponentError(f"cannot read file: {error.strerror}", file=path) from None
    loaded: list[Component | Resiliency] = []
    for raw in raw_documents:
        if raw is None:
            continue
        if not isinstance(raw, dict):
            raise ComponentError(
                f"expected a Dapr document (a mapping with apiVersion, kind, metadata, spec), "
                f"found {type(raw).__name__}",
                file=path,
            )
        loaded.append(schema.document(path, raw))
    return loaded


def load_components(directory: Path | str) -> ComponentSet:
    """Load one components directory, reporting every bad file at once."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(
            f"components directory {directory} does not exist",
            hint="pass --components DIR (for example components/aws)",
        )
    files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        profiles = sorted(p.name for p in directory.iterdir() if p.is_dir())
        hint = (
            f"it has profiles: {', '.join(profiles)}; pass --components {directory / profiles[0]}"
            if profiles
            else "add Dapr Component YAML files to it"
        )
        raise UserError(f"no component files (*.yaml) in {directory}", hint=hint)
    components: dict[str, Component] = {}
    resiliency: list[Resiliency] = []
    problems: list[UserError] = []
    for path in files:
        try:
            documents = load_documents(path)
        except ValidationFailed as failed:
            problems.extend(failed.errors)
            continue
        except UserError as error:
            problems.append(error)
            continue
        for document in documents:
            if isinstance(document, Resiliency):
                resiliency.append(document)
            elif document.name in components:
                problems.append(
                    document.error(
                        f"component name is already used in {components[document.name].source}",
                        field="metadata.name",
                    )
                )
            else:
                components[document.name] = document
    if problems:
        raise problems[0] if len(problems) == 1 else ValidationFailed(problems)
    return ComponentSet(directory, components, tuple(resiliency))


def components_dir(directory: Path, components: Path | None) -> Path:
    """`--components` if given, else `<project>/components`."""
    return components if components is not None else directory / "components"


def load_project(
    directory: Path | str,
    components: Path | str | None = None,
    app_ref: str = DEFAULT_APP,
    *,
    app_optional: bool = False,
) -> Project:
    """With `app_optional`, a project without its app module has an App with no handlers
    (`run --app-port`: the app is another process, in any language)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"project directory {directory} does not exist")
    component_set = load_components(
        components_dir(directory, Path(components) if components else None)
    )
    if app_optional and not app_source(directory, app_ref).is_file():
        app = App()
    else:
        app = load_app(directory, app_ref)
    return Project(directory, app, app_ref, component_set)


def _resolved(
    resolver: SecretResolver, component: Component, warnings: list[UserError] | None
) -> dict[str, str]:
    """The component's values, references resolved; with `warnings` (validate), a
    reference only the platform resolves is a warning and its placeholder is checked."""
    if warnings is None:
        return resolver.values(component)
    values = placeholder_values(component)
    for key in values:
        try:
            values.update(resolver.values(component, {key}))
        except PlatformOnly as only:
            warnings.append(only)
    return values


def inline_secrets(component: Component, model: type[BindingMetadata]) -> list[UserError]:
    """A value written inline in a field the model marks secret: a warning naming the field,
    never the value."""
    names, secret = model.dapr_names(), model.secret_names()
    return [
        component.error(
            "a secret is written inline (it ends up in every copy of this file)",
            field=key,
            hint="give it as a secretKeyRef to a secret store component, or an envRef",
        )
        for key, value in component.values.items()
        if value.literal and names.get(key.lower()) in secret
    ]


def check_project(
    project: Project,
    *,
    resolve_secrets: bool,
    environ: Mapping[str, str] | None = None,
    build_target: str | None = None,
    platform_secrets: bool = False,
) -> list[UserError]:
    """Every problem in the project at once, found before anything runs or deploys; returns
    the warnings (annotations only another target than `build_target` reads). With
    `resolve_secrets`, references must resolve too (run, validate); a build leaves them as
    references."""
    problems: list[UserError] = []
    warnings: list[UserError] = []
    try:
        policies(project.components.resiliency)
    except ValidationFailed as failed:
        problems.extend(failed.errors)
    except UserError as error:
        problems.append(error)
    resolver = SecretResolver(project.components, environ)
    for store_name in {c.secret_store for c in project.components.bindings() if c.secret_store}:
        store = project.components.components.get(store_name)
        if store is None or not store.type.startswith("secretstores."):
            continue  # each reference to it says so
        try:
            kind = store_for(store)
            kind.settings(store)
            warnings += inline_secrets(store, kind.metadata)
        except ValidationFailed as failed:
            problems.extend(failed.errors)
        except UserError as error:
            problems.append(error)
    for component in project.components.bindings():
        try:
            binding = registry.binding_for(component)
            values = (
                _resolved(resolver, component, warnings if platform_secrets else None)
                if resolve_secrets
                else placeholder_values(component)
            )
            warnings += inline_secrets(component, binding.metadata)
            parse_metadata(component, binding.metadata, values)
            annotations = check_annotations(component, build_target)
        except ValidationFailed as failed:
            problems.extend(failed.errors)
            continue
        except UserError as error:
            problems.append(error)
            continue
        unsupported = component.direction - binding.directions
        if unsupported:
            problems.append(
                component.error(
                    f"{component.type} has no {', '.join(sorted(unsupported))} direction",
                    field="direction",
                    hint=f"it supports: {', '.join(sorted(binding.directions))}",
                )
            )
        warnings += annotations.warnings
        # `portabind.io/trigger` opts an output-only type into a cloud's native trigger.
        if (
            component.name in project.app.handlers
            and binding.input is None
            and not annotations.extension
        ):
            problems.append(
                component.error(
                    f"a handler is registered for it, but {component.type} is output-only",
                    hint="handlers take input bindings; call output bindings with "
                    'app.invoke_binding (or annotate portabind.io/trigger: "true" to use a '
                    "cloud trigger portabind adds, docs/aws.md)",
                )
            )
    for name, registration in project.app.handlers.items():
        if name not in project.components.components:
            known = ", ".join(c.name for c in project.components.bindings()) or "none"
            problems.append(
                AppError(
                    f"{project.app_module_file}: handler {registration.function.__qualname__} is "
                    f"registered for component {name!r}, which is not in "
                    f"{project.components.directory}",
                    hint=f"components there: {known}",
                )
            )
    if problems:
        raise problems[0] if len(problems) == 1 else ValidationFailed(problems)
    if build_target is not None:
        warnings += target(build_target).cannot_express(project)
    return warnings
