"""A user's project: the app module plus one components profile, loaded and checked."""

from __future__ import annotations

import difflib
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
from portabind.tooling.notices import Skipped
from portabind.tooling.targets import check_annotations, target
from portabind.tooling.usage import Use, app_uses

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence, Set

    from portabind.metadata import BindingMetadata

#: Dapr's building blocks, the first part of every component type (dapr
#: `pkg/components/category.go`). portabind implements bindings and secret stores.
BUILDING_BLOCKS = (
    "bindings",
    "secretstores",
    "pubsub",
    "state",
    "workflow",
    "workflowbackend",
    "middleware",
    "configuration",
    "crypto",
    "lock",
    "nameresolution",
    "conversation",
)


@dataclass(frozen=True)
class Project:
    directory: Path
    app: App
    app_ref: str
    components: ComponentSet
    #: The app id a component's `scopes` must name for it to load (`--app-id`).
    app_id: str = ""
    #: What loading found besides errors: warnings and `Skipped` notices.
    notices: tuple[UserError, ...] = ()
    #: Every place the app names a component.
    uses: tuple[Use, ...] = ()

    @property
    def app_module_file(self) -> Path:
        return app_source(self.directory, self.app_ref)


def app_source(directory: Path, app_ref: str) -> Path:
    """The file of the app module `app_ref` names (`module:attr`)."""
    return directory / (app_ref.split(":", 1)[0].replace(".", "/") + ".py")


def load_documents(path: Path) -> tuple[list[Component | Resiliency], list[UserError]]:
    """Every Dapr document in one YAML file, validated, and what loading them warns about
    (other kinds of documents are skipped, as Dapr's loader skips them)."""
    from portabind.tooling import bounded_yaml, schema

    raw_documents = bounded_yaml.load_all(path)
    loaded: list[Component | Resiliency] = []
    notices: list[UserError] = []
    for raw in raw_documents:
        if raw is None:
            continue
        if not isinstance(raw, dict):
            raise ComponentError(
                f"expected a Dapr document (a mapping with apiVersion, kind, metadata, spec), "
                f"found {type(raw).__name__}",
                file=path,
            )
        document, found = schema.document(path, raw)
        notices += found
        if document is not None:
            loaded.append(document)
    return loaded, notices


def load_components(
    directory: Path | str, *, app_id: str | None = None, used: Set[str] = frozenset()
) -> ComponentSet:
    """Load one components directory (see `read_components`), its notices left unsaid."""
    return read_components(directory, app_id=app_id, used=used)[0]


def read_components(
    directory: Path | str, *, app_id: str | None = None, used: Set[str] = frozenset()
) -> tuple[ComponentSet, list[UserError]]:
    """Load one components directory as Dapr's loader does, reporting every bad file at once;
    returns the components with the warnings and `Skipped` notices. A component `scopes`
    keeps from `app_id` is left out (with no `app_id`, none is); so is a component portabind
    has no implementation for that no name in `used` (the names the app uses) refers to."""
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
    # Every component that loads in Dapr, whether portabind implements it or not, claims
    # its name.
    named: dict[str, Component] = {}
    available = registry.available_types()
    components: dict[str, Component] = {}
    resiliency: list[Resiliency] = []
    problems: list[UserError] = []
    notices: list[UserError] = []
    for path in files:
        try:
            documents, found = load_documents(path)
        except ValidationFailed as failed:
            problems.extend(failed.errors)
            continue
        except UserError as error:
            problems.append(error)
            continue
        notices += found
        for document in documents:
            if isinstance(document, Resiliency):
                scoped_away = _scoped_away(document, app_id)
                if scoped_away is None:
                    resiliency.append(document)
                else:
                    notices.append(scoped_away)
                continue
            if document.name in named:
                problems.append(
                    document.error(
                        f"component name is already used in {named[document.name].source}",
                        field="metadata.name",
                    )
                )
                continue
            # As daprd's loader: the name check first, then the scopes.
            scoped_away = _scoped_away(document, app_id)
            if scoped_away is not None:
                notices.append(scoped_away)
                continue
            named[document.name] = document
            try:
                left_out = _left_out(document, used, available)
            except UserError as error:
                problems.append(error)
                continue
            if left_out is None:
                components[document.name] = document
            else:
                notices.append(left_out)
    if problems:
        raise problems[0] if len(problems) == 1 else ValidationFailed(problems)
    return ComponentSet(directory, components, tuple(resiliency), app_id or ""), notices


def _scoped_away(document: Component | Resiliency, app_id: str | None) -> Skipped | None:
    """Why Dapr would not load `document` for app `app_id` (its `scopes` leave it out), or
    None. Without an app id, nothing is scoped away."""
    if app_id is None or not document.scopes or app_id in document.scopes:
        return None
    kind = "a Resiliency document " if isinstance(document, Resiliency) else ""
    return Skipped(
        f"{kind}scoped to {', '.join(document.scopes)}; this app's id is {app_id!r} (--app-id)",
        file=document.source,
        component=document.name,
    )


def _left_out(component: Component, used: Set[str], available: Sequence[str]) -> UserError | None:
    """Why the loader leaves `component` out, or None to load it (`available`: the binding
    types portabind has). A type outside Dapr's building blocks raises: Dapr would refuse
    it, and it is likely a misspelt type."""
    block = component.type.split(".", 1)[0]
    if block not in BUILDING_BLOCKS:
        raise component.error(
            f"{component.type!r} is not a Dapr component type: it does not start with a "
            "building block (bindings., secretstores., state., pubsub., …)",
            field="spec.type",
            hint=_nearest_type(component.type, available),
        )
    if component.name in used or block == "secretstores":
        return None
    if block != "bindings":
        return Skipped(
            f"a {block} component: portabind implements bindings and secret stores, and "
            "nothing in the app uses it",
            file=component.source,
            component=component.name,
        )
    if component.type in available:
        return None
    # A warning, not a `Skipped` notice: a binding type portabind lacks may be a misspelt one.
    return component.error(
        f"portabind has no binding type {component.type!r}, and nothing in the app uses "
        "it: left out",
        field="spec.type",
        hint=_nearest_type(component.type, available),
    )


def _nearest_type(type_string: str, available: Sequence[str]) -> str:
    """A hint naming the binding type `type_string` most likely means: itself with the
    building block it lacks (`aws.s3`), else one spelt almost alike."""
    prefixed = f"bindings.{type_string}"
    close = (
        [prefixed]
        if prefixed in available
        else difflib.get_close_matches(type_string, available, n=1, cutoff=0.8)
    )
    listing = "`portabind bindings` lists the binding types"
    return f"did you mean {close[0]!r}? {listing}" if close else listing


def components_dir(directory: Path, components: Path | None) -> Path:
    """`--components` if given, else `<project>/components`."""
    return components if components is not None else directory / "components"


def default_app_id(directory: Path | str) -> str:
    """The app id when `--app-id` is not given: the project directory's name."""
    return Path(directory).resolve().name


def load_project(
    directory: Path | str,
    components: Path | str | None = None,
    app_ref: str = DEFAULT_APP,
    *,
    app_optional: bool = False,
    app_id: str | None = None,
) -> Project:
    """The app, then the components it sees: those whose `scopes` name `app_id` (default:
    the directory's name), as Dapr loads them for that app. With `app_optional`, a project
    without its app module has an App with no handlers (`run --app-port`: the app is
    another process, in any language)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"project directory {directory} does not exist")
    module = app_source(directory, app_ref)
    app = App() if app_optional and not module.is_file() else load_app(directory, app_ref)
    uses = app_uses(app, module)
    app_id = app_id or default_app_id(directory)
    component_set, notices = read_components(
        components_dir(directory, Path(components) if components else None),
        app_id=app_id,
        used={use.component for use in uses},
    )
    return Project(directory, app, app_ref, component_set, app_id, tuple(notices), tuple(uses))


def metadata_warnings(component: Component, model: type[BindingMetadata]) -> list[UserError]:
    """What a Dapr sidecar accepts in the component's metadata but is likely a mistake: a
    key the binding does not read (with the nearest it does), a deprecated key, a key that
    changes nothing here, several keys for one field (the one Dapr reads first is used)."""
    names = model.dapr_names()
    no_effect = {key.lower(): why for key, why in model.no_effect.items()}
    deprecated = {key.lower(): instead for key, instead in model.deprecated.items()}
    spelled = {**{key.lower(): key for key in model.no_effect}, **names}
    given = list(component.binding_values())
    warnings: list[UserError] = []
    for key in given:
        lowered = key.lower()
        if lowered in deprecated:
            warnings.append(
                component.error(f"deprecated by Dapr: {deprecated[lowered]}", field=key)
            )
        elif lowered in no_effect:
            warnings.append(
                component.error(
                    f"has no effect on {component.type}: {no_effect[lowered]}", field=key
                )
            )
        elif lowered not in names:
            close = difflib.get_close_matches(lowered, spelled, n=1)
            warnings.append(
                component.error(
                    f"unknown metadata field for {component.type}; ignored (Dapr ignores it too)",
                    field=key,
                    hint=(f"did you mean {spelled[close[0]]!r}? " if close else "")
                    + f"valid fields: {', '.join(sorted(set(names.values())))}",
                )
            )
    lowered_given = {key.lower(): key for key in given}
    for canonical, keys in model.field_keys().items():
        present = [lowered_given[key.lower()] for key in keys if key.lower() in lowered_given]
        if len(present) > 1:
            warnings.append(
                component.error(
                    f"{' and '.join(map(repr, present))} "
                    f"{'both' if len(present) == 2 else 'all'} set {canonical}: "
                    f"{present[0]!r} is used, as Dapr reads it first",
                    field=present[-1],
                    hint="keep one of them",
                )
            )
    return warnings


def _use_problems(project: Project) -> list[UserError]:
    """The app's uses of components that cannot work: a name no component has, a component
    that is not a binding, a direction the component is not created for."""
    problems: list[UserError] = []
    for use in project.uses:
        component = project.components.components.get(use.component)
        if component is None:
            problems.append(_missing(project, use))
            continue
        if not component.type.startswith("bindings."):
            problems.append(
                AppError(
                    f"{use.where} names component {use.component!r}, a "
                    f"{component.type.split('.', 1)[0]} component ({component.type}): handlers, "
                    "Output and invoke_binding take bindings"
                )
            )
            continue
        try:
            binding = registry.binding_for(component)
        except UserError:
            continue  # reported with the component
        if use.direction == "output" and binding.output is None:
            problems.append(
                AppError(
                    f"{use.where} invokes {use.component!r}, but {component.type} is input-only",
                    hint="an input binding calls a handler; it cannot be invoked",
                )
            )
        elif component.direction and use.direction not in component.direction:
            problems.append(
                component.error(
                    f"{use.where} uses it as an {use.direction} binding, but its direction is "
                    f"{', '.join(sorted(component.direction))}",
                    field="direction",
                    hint=f"add {use.direction} to direction, or use another component",
                )
            )
    return problems


def _missing(project: Project, use: Use) -> UserError:
    """A use of a name no loaded component has; the hint says why, if the loader left a
    component of that name out."""
    left_out = next(
        (
            notice
            for notice in project.notices
            if isinstance(notice, ComponentError) and notice.component == use.component
        ),
        None,
    )
    if left_out is not None:
        hint = f"it was left out: {left_out.detail}"
    else:
        known = [c.name for c in project.components.bindings()]
        close = difflib.get_close_matches(use.component, known, n=1)
        hint = (f"did you mean {close[0]!r}? " if close else "") + (
            f"components there: {', '.join(known) or 'none'}"
        )
    return AppError(
        f"{use.where} names component {use.component!r}, which is not in "
        f"{project.components.directory}",
        hint=hint,
    )


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
    the warnings, loading's first (`portabind.tooling.notices`). With `resolve_secrets`,
    references must resolve too (run, validate); a build leaves them as references."""
    problems: list[UserError] = []
    warnings: list[UserError] = list(project.notices)
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
            warnings += metadata_warnings(component, binding.metadata)
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
    problems += _use_problems(project)
    if problems:
        raise problems[0] if len(problems) == 1 else ValidationFailed(problems)
    if build_target is not None:
        warnings += target(build_target).cannot_express(project)
    return warnings
