"""`secretstores.local.file`: secrets from a JSON file, as Dapr's: nested keys flattened with
`nestedSeparator` (default `:`), or with `multiValued` the top-level keys as secrets holding
their (flattened) keys. A relative `secretsFile` is looked up beside the component file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from portabind.errors import SecretError
from portabind.metadata import BindingMetadata, Truthy, setting
from portabind.secretstores import SecretStore, StoreContext


class FileStore(BindingMetadata):
    secrets_file: str = setting("secretsFile", description="the JSON file")
    nested_separator: str = setting("nestedSeparator", ":", description="joins nested keys")
    multi_valued: Truthy = setting("multiValued", False, description="top-level keys are secrets")


def _flatten(value: Any, separator: str, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        flat: dict[str, str] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, separator, f"{prefix}{separator}{key}" if prefix else key))
        return flat
    return {prefix: value if isinstance(value, str) else json.dumps(value)}


def read(settings: FileStore, context: StoreContext, name: str) -> dict[str, str]:
    component = context.component
    path = Path(settings.secrets_file)
    if not path.is_absolute() and not path.exists():
        path = component.source.parent / settings.secrets_file  # beside the component file
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SecretError(
            f"cannot read secrets file {path}: {type(error).__name__}",
            file=component.source,
            component=component.name,
            field="secretsFile",
        ) from None
    separator = settings.nested_separator or ":"
    if settings.multi_valued:
        value = content.get(name)
        if value is None:
            return {}
        return _flatten(value, separator) if isinstance(value, dict) else {name: str(value)}
    flat = _flatten(content, separator)
    return {name: flat[name]} if name in flat else {}


store = SecretStore(
    FileStore, read, hint=lambda settings, name: f"add {name!r} to {settings.secrets_file}"
)
