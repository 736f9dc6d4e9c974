"""The Dapr document schema (pydantic), used to validate component YAML.

Imported only by `portabind.tooling.project.load_documents`: building these models costs tens of
milliseconds, which a cloud function's cold start does not pay (it reads the build's JSON
snapshot of the already validated components instead).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from portabind import registry
from portabind.components import (
    ANNOTATION_PREFIX,
    Component,
    Resiliency,
    SecretKeyRef,
    Value,
    location,
)
from portabind.errors import ComponentError, UserError, ValidationFailed, shorten
from portabind.tooling.notices import Skipped

if TYPE_CHECKING:
    from pathlib import Path

#: The only apiVersion of Dapr's Component and Resiliency documents.
DAPR_API_VERSION = "dapr.io/v1alpha1"
#: The longest name (a Kubernetes object name, as Dapr's documents are).
MAX_NAME_CHARACTERS = 253
#: The longest metadata value or annotation: room for a certificate chain written inline.
MAX_VALUE_CHARACTERS = 64 * 1024


# A YAML key with nothing after it (`metadata:`, `scopes:`) is null; Kubernetes and Dapr read
# it as empty.
NULL_AS_EMPTY_LIST = BeforeValidator(lambda value: [] if value is None else value)
NULL_AS_EMPTY_MAP = BeforeValidator(lambda value: {} if value is None else value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Name = Annotated[str, Field(max_length=MAX_NAME_CHARACTERS)]
Text = Annotated[str, Field(max_length=MAX_VALUE_CHARACTERS)]


class SecretKeyRefModel(_Strict):
    name: Name
    key: Name | None = None


class MetadataItem(_Strict):
    name: Name
    value: Text | int | float | bool | None = None
    secret_key_ref: SecretKeyRefModel | None = Field(None, alias="secretKeyRef")
    env_ref: Name | None = Field(None, alias="envRef")


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARACTERS)
    namespace: Name | None = None
    annotations: Annotated[dict[Name, Text], NULL_AS_EMPTY_MAP] = Field(default_factory=dict)
    labels: Annotated[dict[Name, Text], NULL_AS_EMPTY_MAP] = Field(default_factory=dict)


class ComponentSpec(_Strict):
    type: str = Field(min_length=1, max_length=MAX_NAME_CHARACTERS)
    version: Name = "v1"
    init_timeout: str | None = Field(None, alias="initTimeout")
    ignore_errors: bool = Field(False, alias="ignoreErrors")
    metadata: Annotated[list[MetadataItem], NULL_AS_EMPTY_LIST] = Field(default_factory=list)


class Auth(_Strict):
    secret_store: Name | None = Field(None, alias="secretStore")


class ComponentDocument(BaseModel):
    """`kind: Component`, as Dapr defines it (`pkg/apis/components/v1alpha1/types.go`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    api_version: str = Field("dapr.io/v1alpha1", alias="apiVersion")
    kind: Literal["Component"]
    metadata: ObjectMeta
    spec: ComponentSpec
    auth: Annotated[Auth, NULL_AS_EMPTY_MAP] = Field(default_factory=Auth)
    scopes: Annotated[list[Name], NULL_AS_EMPTY_LIST] = Field(default_factory=list)


class ResiliencyDocument(BaseModel):
    """`kind: Resiliency`; the policies are kept as Dapr writes them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    api_version: str = Field("dapr.io/v1alpha1", alias="apiVersion")
    kind: Literal["Resiliency"]
    metadata: ObjectMeta
    spec: dict[str, Any]
    scopes: Annotated[list[Name], NULL_AS_EMPTY_LIST] = Field(default_factory=list)


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


def document(
    path: Path, raw: dict[str, Any]
) -> tuple[Component | Resiliency | None, list[UserError]]:
    """One YAML document of `path`, validated, with what loading it warns about. Documents
    Dapr's loader passes over (other kinds and apiVersions: Kubernetes objects,
    Configuration, Subscription, …) give None and a `Skipped` notice."""
    metadata = raw.get("metadata")
    found_name = metadata.get("name") if isinstance(metadata, dict) else None
    name = found_name if isinstance(found_name, str) else None
    kind = raw.get("kind")
    api_version = raw.get("apiVersion", DAPR_API_VERSION)
    if kind not in ("Component", "Resiliency") or api_version != DAPR_API_VERSION:
        what = f"kind {shorten(repr(kind))}" if kind else "a document without a kind"
        return None, [
            Skipped(
                f"{what} ({shorten(str(api_version))}): portabind reads {DAPR_API_VERSION} "
                "Component and Resiliency documents",
                file=path,
                component=name,
            )
        ]
    if kind == "Resiliency":
        try:
            resiliency = ResiliencyDocument.model_validate(raw)
        except ValidationError as error:
            raise _document_error(path, name, error) from None
        found = Resiliency(
            resiliency.metadata.name, path, resiliency.spec, tuple(resiliency.scopes)
        )
        return found, []
    try:
        component = ComponentDocument.model_validate(raw)
    except ValidationError as error:
        raise _document_error(path, name, error) from None
    values: dict[str, Value] = {}
    repeated: dict[str, int] = {}
    for item in component.spec.metadata:
        if item.name in values:
            # Dapr fills a map from the list: the last item of a name wins.
            repeated[item.name] = repeated.get(item.name, 1) + 1
            del values[item.name]
        ref = item.secret_key_ref
        values[item.name] = Value(
            literal=_literal(item.value),
            secret_ref=None if ref is None else SecretKeyRef(ref.name, ref.key),
            env_ref=item.env_ref,
        )
    warnings: list[UserError] = [
        ComponentError(
            f"metadata field is given {times} times; the last one is used, as in Dapr",
            file=path,
            component=name,
            field=key,
            hint="remove the others",
        )
        for key, times in repeated.items()
    ]
    annotations = {
        key.removeprefix(ANNOTATION_PREFIX): value
        for key, value in component.metadata.annotations.items()
        if key.startswith(ANNOTATION_PREFIX)
    }
    loaded = Component(
        name=component.metadata.name,
        type=registry.canonical_type(component.spec.type),
        version=component.spec.version,
        source=path,
        values=values,
        annotations=annotations,
        secret_store=component.auth.secret_store,
        scopes=tuple(component.scopes),
    )
    return loaded, warnings
