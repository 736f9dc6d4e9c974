"""Dapr Component documents: the loader and the resolved view the rest of portabind uses.

A components directory holds `*.yaml`/`*.yml` files, each with one or more documents. Each
document is a `kind: Component` (bindings and secret stores) or a `kind: Resiliency`.
portabind-only settings live in `metadata.annotations` under the `portabind.io/` prefix, so
the same files stay valid for a real Dapr sidecar.

Reading YAML and validating documents is tooling (`portabind.tooling.project.load_components`):
a built function loads its components from the JSON snapshot the build wrote
(`portabind.snapshot`), so a cold start pays for neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from portabind.errors import ComponentError, UserError, ValidationFailed

if TYPE_CHECKING:
    import builtins  # `type` is a field of Component
    from collections.abc import Iterable, Mapping, Sequence, Set
    from pathlib import Path

    from pydantic_core import ErrorDetails

    from portabind.metadata import BindingMetadata

ANNOTATION_PREFIX = "portabind.io/"
#: Keys the Dapr runtime reads itself, not the binding (the README's "Components").
RUNTIME_KEYS = ("direction", "route")

M = TypeVar("M", bound="BindingMetadata")


class SecretKeyRef(NamedTuple):
    """A `secretKeyRef`: the secret `name` in the component's secret store, and the `key`
    inside it (multi-valued stores)."""

    name: str
    key: str | None = None


class Resiliency(NamedTuple):
    """A `kind: Resiliency` document; the policies are kept as Dapr writes them."""

    name: str
    source: Path
    spec: dict[str, Any]
    scopes: tuple[str, ...] = ()


class Value(NamedTuple):
    """One metadata value: a literal, or a reference resolved at run time."""

    literal: str | None = None
    secret_ref: SecretKeyRef | None = None
    env_ref: str | None = None

    @property
    def is_reference(self) -> bool:
        return self.literal is None


class Validated(NamedTuple):
    """A component's metadata as a build validated it: `fields`, the validated values as
    JSON-able data (`SettingsModel.plain_fields`), and the fields the function resolves and
    checks itself (references, secrets): attribute → (the key giving it, its kind,
    `SettingsModel.plain_kind`)."""

    fields: dict[str, Any]
    resolve: dict[str, tuple[str, str]]


@dataclass(frozen=True)
class Component:
    """A loaded component: where it came from and what it says."""

    name: str
    type: str
    version: str
    source: Path
    values: dict[str, Value]
    annotations: dict[str, str] = field(default_factory=dict)
    secret_store: str | None = None
    scopes: tuple[str, ...] = ()
    #: The metadata as its build validated it (`portabind.snapshot`), for a built function to
    #: read without validating again; None when loaded from YAML. Derived from the rest, so
    #: not compared.
    validated: Validated | None = field(default=None, compare=False)

    @property
    def direction(self) -> frozenset[str]:
        """Dapr's `direction` key: the directions this component is created for (empty: all
        the binding type supports)."""
        for key, value in self.values.items():
            if key.lower() == "direction" and value.literal:
                return frozenset(part.strip().lower() for part in value.literal.split(","))
        return frozenset()

    @property
    def route(self) -> str:
        value = self.values.get("route")
        return value.literal if value and value.literal else f"/{self.name}"

    def annotation(self, key: str, default: str | None = None) -> str | None:
        return self.annotations.get(key, default)

    def error(
        self, message: str, *, field: str | None = None, hint: str | None = None
    ) -> ComponentError:
        return ComponentError(
            message, file=self.source, component=self.name, field=field, hint=hint
        )

    def validated_metadata(self, model: builtins.type[M], texts: Mapping[str, str]) -> M:
        """The metadata as the build validated it (`validated`), with `texts`, the values
        resolved here by key, for the fields it resolves itself, their checks run: a failed
        one names the component, never a resolved value."""
        assert self.validated is not None, "loaded from YAML: validate it (parse_metadata)"
        resolve = self.validated.resolve
        resolved = {name: (kind, texts[key]) for name, (key, kind) in resolve.items()}
        try:
            return model.from_validated(self.validated.fields, resolved)
        except ValueError as error:
            raise self.error(unrevealed(str(error), texts.values())) from None

    def binding_values(self) -> dict[str, Value]:
        """The metadata the binding decodes (the runtime's own keys removed)."""
        return {k: v for k, v in self.values.items() if k.lower() not in RUNTIME_KEYS}

    def first_of(self, keys: Sequence[str]) -> tuple[str, Value] | None:
        """The first of `keys` the component gives (in any case), as spelled there, with its
        value: the entry Dapr reads for a field whose keys are `keys`, in its lookup order
        (`BindingMetadata.field_keys`)."""
        given = {key.lower(): key for key in self.binding_values()}
        for key in keys:
            spelled = given.get(key.lower())
            if spelled is not None:
                return spelled, self.values[spelled]
        return None


@dataclass(frozen=True)
class ComponentSet:
    """Everything one components directory (a profile) declares."""

    directory: Path
    components: dict[str, Component]
    resiliency: tuple[Resiliency, ...] = ()
    #: The app the set was loaded for (`--app-id`): what Dapr's `{appID}` and `{namespace}`
    #: tags in metadata values stand for (`portabind.secrets.expand_tags`).
    app_id: str = ""

    def bindings(self) -> list[Component]:
        return [c for c in self.components.values() if c.type.startswith("bindings.")]

    def secret_stores(self) -> dict[str, Component]:
        return {n: c for n, c in self.components.items() if c.type.startswith("secretstores.")}

    def get(self, name: str) -> Component:
        try:
            return self.components[name]
        except KeyError:
            import difflib  # only for a message: not on every start-up

            close = difflib.get_close_matches(name, self.components, n=1)
            hint = f"did you mean {close[0]!r}?" if close else None
            known = ", ".join(sorted(self.components)) or "none"
            raise UserError(
                f"no component named {name!r} in {self.directory} (components: {known})",
                hint=hint,
            ) from None


def location(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted field path."""
    return ".".join(str(part) for part in loc)


def case_duplicates(keys: Iterable[str]) -> list[list[str]]:
    """Keys that differ only in case, grouped. Dapr refuses them ("key … is duplicate in the
    metadata", `kitmd.DecodeMetadata`): which one it would read is not defined."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.lower(), []).append(key)
    return [group for group in groups.values() if len(group) > 1]


def parse_metadata(
    component: Component,
    model: type[M],
    values: Mapping[str, str],
) -> M:
    """Decode resolved string values into the binding's metadata model as Dapr decodes
    them: deprecated keys upgraded, keys the model does not read ignored (`validate` warns
    about them). Names the file, the component and the field on any error."""
    problems: list[UserError] = [
        component.error(
            f"metadata keys {' and '.join(map(repr, group))} differ only in case; Dapr refuses "
            "such a component",
            field=group[-1],
            hint="keep one of them",
        )
        for group in case_duplicates(values)
    ]
    secrets = _referenced_values(component, values)
    if not problems:
        from pydantic import ValidationError

        names = model.dapr_names()
        upgraded = model.upgrade(values)
        known = {k: v for k, v in upgraded.items() if k.lower() in names}
        unknown = {k.lower(): k for k in upgraded if k.lower() not in names}
        try:
            return model.model_validate(known)
        except ValidationError as error:
            for detail in error.errors():
                field_name = location(detail["loc"]) or None
                if detail["type"] == "missing":
                    # An ignored key close to the missing one is most likely its misspelling.
                    import difflib  # only for a message: not on every start-up

                    close = difflib.get_close_matches(str(field_name).lower(), unknown, n=1)
                    problems.append(
                        component.error(
                            "required field is missing",
                            field=field_name,
                            hint=f"did you mean {field_name!r} where you wrote "
                            f"{unknown[close[0]]!r}?"
                            if close
                            else None,
                        )
                    )
                else:
                    message = detail["msg"].removeprefix("Value error, ")
                    problems.append(
                        component.error(_unrevealing(message, detail, secrets), field=field_name)
                    )
    raise problems[0] if len(problems) == 1 else ValidationFailed(problems)


def _referenced_values(component: Component, values: Mapping[str, str]) -> set[str]:
    """The values that came from a secretKeyRef or an envRef, which no message may show."""
    return {
        values[key]
        for key, value in component.values.items()
        if key in values and (value.secret_ref is not None or value.env_ref is not None)
    }


def _unrevealing(message: str, detail: ErrorDetails, secrets: Set[str]) -> str:
    """`message`, unless it would show one of `secrets`: validators quote the value they
    refuse, and a resolved secret must never reach a terminal or a CI log."""
    refused = detail.get("input")
    if isinstance(refused, str) and refused in secrets:
        return _HIDDEN
    return unrevealed(message, secrets)


_HIDDEN = "the value its reference resolves to is not valid here (not shown: it is secret)"


def unrevealed(message: str, secrets: Iterable[str]) -> str:
    """`message`, unless one of `secrets` is in it."""
    return _HIDDEN if any(secret and secret in message for secret in secrets) else message


#: What a secret reference's value is while checking a component without resolving it: a
#: metadata model that parses a field's structure lets this through.
REFERENCE = "<reference>"


def placeholder_values(component: Component) -> dict[str, str]:
    """Values for checking a component without resolving its references (build, validate):
    a reference stands in as `REFERENCE`."""
    return {
        key: value.literal if value.literal is not None else REFERENCE
        for key, value in component.binding_values().items()
    }
