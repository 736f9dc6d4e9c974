"""A user's project: the app module plus one components profile, loaded and checked."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from portabind import registry
from portabind.app import App
from portabind.components import ComponentSet, load_components, parse_metadata, placeholder_values
from portabind.errors import AppError, UserError, ValidationFailed
from portabind.secrets import SecretResolver

if TYPE_CHECKING:
    from collections.abc import Mapping

    from portabind.runtime import Runtime

DEFAULT_APP = "app:app"


@dataclass(frozen=True)
class Project:
    directory: Path
    app: App
    app_ref: str
    components: ComponentSet

    @property
    def app_module_file(self) -> Path:
        return self.directory / (self.app_ref.split(":", 1)[0].replace(".", "/") + ".py")


def load_app(directory: Path, app_ref: str = DEFAULT_APP) -> App:
    """Import `module:attr` from the project directory."""
    module_name, _, attribute = app_ref.partition(":")
    attribute = attribute or "app"
    source = directory / (module_name.replace(".", "/") + ".py")
    if not source.is_file():
        raise AppError(
            f"app module {source} does not exist",
            hint="create it, or name another with --app module:attribute",
        )
    sys.path.insert(0, str(directory.resolve()))
    try:
        sys.modules.pop(module_name, None)  # a fresh import each load (tests load many apps)
        module = importlib.import_module(module_name)
    except UserError:
        raise
    except Exception as error:  # the user's module failed at import: show where
        raise AppError(f"importing {source} failed: {type(error).__name__}: {error}") from error
    finally:
        sys.path.remove(str(directory.resolve()))
    app = getattr(module, attribute, None)
    if not isinstance(app, App):
        raise AppError(
            f"{source} has no portabind.App named {attribute!r}",
            hint="define `app = portabind.App()` or pass --app module:attribute",
        )
    return app


def components_dir(directory: Path, components: Path | None) -> Path:
    """`--components` if given, else `<project>/components`."""
    return components if components is not None else directory / "components"


def load_project(
    directory: Path | str, components: Path | str | None = None, app_ref: str = DEFAULT_APP
) -> Project:
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"project directory {directory} does not exist")
    component_set = load_components(
        components_dir(directory, Path(components) if components else None)
    )
    return Project(directory, load_app(directory, app_ref), app_ref, component_set)


def check_project(
    project: Project, *, resolve_secrets: bool, environ: Mapping[str, str] | None = None
) -> None:
    """Every problem in the project at once (design.md: validate before running or
    deploying). With `resolve_secrets`, references must resolve too (run, validate); a build
    leaves them as references."""
    problems: list[UserError] = []
    resolver = SecretResolver(project.components, environ)
    for component in project.components.bindings():
        try:
            binding = registry.binding_for(component)
            values = (
                resolver.values(component) if resolve_secrets else placeholder_values(component)
            )
            parse_metadata(component, binding.metadata, values)
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
        # `portabind.io/trigger` opts an output-only type into a cloud's native trigger.
        extension = (component.annotation("trigger") or "").lower() == "true"
        if component.name in project.app.handlers and binding.input is None and not extension:
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


def load_bundle(
    directory: Path | str,
    *,
    app_ref: str = DEFAULT_APP,
    components: str = "components",
    environ: Mapping[str, str] | None = None,
) -> tuple[App, Runtime]:
    """The app and components a cloud target's build bundled in `directory`, the app
    attached to a runtime over them (what each target's generated entry module loads).
    The components come from the build's snapshot (`portabind.snapshot`), else the YAML."""
    from portabind import snapshot
    from portabind.runtime import Runtime

    root = Path(directory)
    # The build's snapshot when it matches the YAML beside it: no YAML parsing and no
    # pydantic document models on a cold start.
    component_set = snapshot.load(root / components) or load_components(root / components)
    app = load_app(root, app_ref)
    runtime = Runtime(component_set, environ=environ)
    app.attach(runtime)
    return app, runtime
