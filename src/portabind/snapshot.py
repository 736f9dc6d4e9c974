"""A JSON snapshot of a loaded `ComponentSet`, written by a cloud build beside the YAML files.

A function's cold start reads it with `json` and plain dataclasses instead of parsing YAML
and validating it again with pydantic (the build validated it already). It holds what the
YAML says, references included as references: a secret's value is never in it. Beside
each component's values it holds their validated form (`validated`): the metadata model's
fields as validation left them, but those the function resolves itself (references and
secrets), which it checks when it reads them (`SettingsModel.from_validated`). A component
whose fields cannot be written so has none, and the function validates it as the tooling
does.

The snapshot names each YAML file it was made from with its SHA-256; when a file in the
directory no longer matches (edited after the build), the YAML is read instead.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from portabind.components import (
    Component,
    ComponentSet,
    Resiliency,
    SecretKeyRef,
    Validated,
    Value,
)
from portabind.errors import UserError

if TYPE_CHECKING:
    from pathlib import Path

FILE_NAME = "portabind-components.json"
VERSION = 1


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _value(value: Value) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    if value.literal is not None:
        encoded["value"] = value.literal
    if value.secret_ref is not None:
        encoded["secretKeyRef"] = {"name": value.secret_ref.name, "key": value.secret_ref.key}
    if value.env_ref is not None:
        encoded["envRef"] = value.env_ref
    return encoded


def dumps(components: ComponentSet) -> str:
    """The snapshot of `components` (loaded from YAML files in `components.directory`)."""
    document = {
        "version": VERSION,
        "appId": components.app_id,
        "files": {path.name: _digest(path) for path in _yaml_files(components.directory)},
        "components": [
            {
                "name": c.name,
                "type": c.type,
                "version": c.version,
                "source": c.source.name,
                "values": {key: _value(value) for key, value in c.values.items()},
                "annotations": c.annotations,
                "secretStore": c.secret_store,
                "scopes": list(c.scopes),
                "validated": _encoded(validated(c)),
            }
            for c in components.components.values()
        ],
        "resiliency": [
            {"name": r.name, "source": r.source.name, "spec": r.spec, "scopes": list(r.scopes)}
            for r in components.resiliency
        ],
    }
    return json.dumps(document, indent=1) + "\n"


def validated(component: Component) -> Validated | None:
    """The component's metadata validated (with references as placeholders); None when it
    does not validate or a field cannot be read back without validation."""
    from portabind import registry
    from portabind.components import parse_metadata, placeholder_values
    from portabind.metadata import Secret
    from portabind.secrets import has_tags
    from portabind.secretstores import store_for

    kind = component.type.partition(".")[0]
    if kind not in ("bindings", "secretstores"):
        return None
    values = placeholder_values(component)
    try:
        model = (
            registry.binding_for(component).metadata
            if kind == "bindings"
            else store_for(component).metadata
        )
        parsed = parse_metadata(component, model, values)
    except UserError:  # not checked by the build (no handler uses it): checked when used
        return None
    upgraded = model.upgrade(values)
    keys_of = model.field_keys()
    resolve: dict[str, tuple[str, str]] = {}
    for attribute, declared in model.settings.items():
        given = component.first_of(keys_of[declared.name])
        if given is None:
            continue
        key, value = given
        at_run_time = value.is_reference or has_tags(value.literal or "")
        if not (at_run_time or isinstance(getattr(parsed, attribute), Secret)):
            continue
        field_kind = model.plain_kind(attribute)
        if field_kind is None or upgraded.get(key) != values[key]:
            return None
        resolve[attribute] = (key, field_kind)
    fields = parsed.plain_fields(frozenset(resolve))
    if fields is None:
        return None
    return Validated(fields, resolve)


def _encoded(validated: Validated | None) -> dict[str, Any] | None:
    if validated is None:
        return None
    resolve = {name: list(pair) for name, pair in validated.resolve.items()}
    return {"fields": validated.fields, "resolve": resolve}


def write(components: ComponentSet, directory: Path) -> Path:
    """Write the snapshot into `directory` (where the YAML files were copied to)."""
    path = directory / FILE_NAME
    path.write_text(dumps(components), encoding="utf-8")
    return path


def _component(directory: Path, raw: dict[str, Any]) -> Component:
    values = {}
    for key, value in raw["values"].items():
        ref = value.get("secretKeyRef")
        values[key] = Value(
            literal=value.get("value"),
            secret_ref=None if ref is None else SecretKeyRef(ref["name"], ref["key"]),
            env_ref=value.get("envRef"),
        )
    return Component(
        name=raw["name"],
        type=raw["type"],
        version=raw["version"],
        source=directory / raw["source"],
        values=values,
        annotations=raw["annotations"],
        secret_store=raw["secretStore"],
        scopes=tuple(raw["scopes"]),
        validated=_read_validated(raw.get("validated")),
    )


def _read_validated(raw: dict[str, Any] | None) -> Validated | None:
    if raw is None:
        return None
    resolve = {name: (key, kind) for name, (key, kind) in raw["resolve"].items()}
    return Validated(raw["fields"], resolve)


def load(directory: Path) -> ComponentSet | None:
    """The ComponentSet the snapshot in `directory` holds; None when there is no snapshot or
    the YAML files there are not the ones it was made from."""
    path = directory / FILE_NAME
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if document.get("version") != VERSION:
        raise UserError(
            f"{path}: snapshot version {document.get('version')!r} is not one this portabind "
            f"reads (version {VERSION})",
            hint="rebuild the artifact with this portabind's `portabind build`, or delete the "
            "file to load the YAML components instead",
        )
    files = {p.name: p for p in _yaml_files(directory)}
    if set(files) != set(document["files"]) or any(
        _digest(files[name]) != digest for name, digest in document["files"].items()
    ):
        return None
    components = [_component(directory, raw) for raw in document["components"]]
    resiliency = [
        Resiliency(r["name"], directory / r["source"], r["spec"], tuple(r["scopes"]))
        for r in document["resiliency"]
    ]
    named = {c.name: c for c in components}
    return ComponentSet(directory, named, tuple(resiliency), document.get("appId", ""))
