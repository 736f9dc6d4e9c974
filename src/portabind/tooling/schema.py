"""The Dapr document schema (pydantic), used to validate component YAML.

Imported only by `portabind.tooling.project.load_documents`: building these models costs tens of
milliseconds, which a cloud function's cold start does not pay (it reads the build's JSON
snapshot of the already validated components instead).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from portabind import registry
from portabind.components import (
    ANNOTATION_PREFIX,
    Component,
    Resiliency,
    SecretKeyRef,
    Value,
    location,
)
from portabind.errors import ComponentError, UserError, ValidationFailed

if TYPE_CHECKING:
    from pathlib import Path


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SecretKeyRefModel(_Strict):
    name: str
    key: str | None = None


class MetadataItem(_Strict):
    name: str
    value: str | int | float | bool | None = None
    secret_key_ref: SecretKeyRefModel | None = Field(None, alias="secretKeyRef")
    env_ref: str | None = Field(None, alias="envRef")


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)
    namespace: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class ComponentSpec(_Strict):
    type: str = Field(min_length=1)
    version: str = "v1"
    init_timeout: str | None = Field(None, alias="initTimeout")
    ignore_errors: bool = Field(False, alias="ignoreErrors")
    metadata: list[MetadataItem] = Field(default_factory=list)


class Auth(_Strict):
    secret_store: str | None = Field(None, alias="secretStore")


class ComponentDocument(BaseModel):
    """`kind: Component`, as Dapr defines it (`pkg/apis/components/v1alpha1/types.go`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    api_version: str = Field("dapr.io/v1alpha1", alias="apiVersion")
    kind: Literal["Component"]
    metadata: ObjectMeta
    spec: ComponentSpec
    auth: Auth = Field(default_factory=Auth)
    scopes: list[str] = Field(default_factory=list)


class ResiliencyDocument(BaseModel):
    """`kind: Resiliency`; the policies are kept as Dapr writes them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    api_version: str = Field("dapr.io/v1alpha1", alias="apiVersion")
    kind: Literal["Resiliency"]
    metadata: ObjectMeta
    spec: dict[str, Any]
    scopes: list[str] = Field(default_factory=list)


def _document_error(path: Path, name: str | None, error: ValidationError) -> ValidationFailed:
    problems: list[UserError] = []
    for detail in error.errors():
        problems.append(
            ComponentError(detail["msg"], file=path, component=name, field=location(detail["loc"]))
        )
    return ValidationFailed(problems)


def _literal(value: str | float | bool | None) -> str | None:
    """A metadata value as the string Dapr passes to the component (YAML booleans and
    numbers included)."""
    if value is None:
        return None
    return "true" if value is True else "false" if value is False else str(value)


def document(path: Path, raw: dict[str, Any]) -> Component | Resiliency:
    """One YAML document of `path`, validated."""
    name = raw.get("metadata", {}).get("name") if isinstance(raw.get("metadata"), dict) else None
    kind = raw.get("kind")
    if kind == "Resiliency":
        try:
            resiliency = ResiliencyDocument.model_validate(raw)
        except ValidationError as error:
            raise _document_error(path, name, error) from None
        return Resiliency(resiliency.metadata.name, path, resiliency.spec, tuple(resiliency.scopes))
    if kind != "Component":
        raise ComponentError(
            f"kind {kind!r} is not supported; expected 'Component' or 'Resiliency'",
            file=path,
            component=name,
            field="kind",
        )
    try:
        component = ComponentDocument.model_validate(raw)
    except ValidationError as error:
        raise _document_error(path, name, error) from None
    values: dict[str, Value] = {}
    for item in component.spec.metadata:
        if item.name in values:
            raise ComponentError(
                "metadata field is given twice", file=path, component=name, field=item.name
            )
        ref = item.secret_key_ref
        values[item.name] = Value(
            literal=_literal(item.value),
            secret_ref=None if ref is None else SecretKeyRef(ref.name, ref.key),
            env_ref=item.env_ref,
        )
    annotations = {
        key.removeprefix(ANNOTATION_PREFIX): value
        for key, value in component.metadata.annotations.items()
        if key.startswith(ANNOTATION_PREFIX)
    }
    return Component(
        name=component.metadata.name,
        type=registry.canonical_type(component.spec.type),
        version=component.spec.version,
        source=path,
        values=values,
        annotations=annotations,
        secret_store=component.auth.secret_store,
        scopes=tuple(component.scopes),
    )
