"""`secretstores.local.file`: secrets from a JSON file, as Dapr's: nested keys flattened with
`nestedSeparator` (default `:`), or with `multiValued` the top-level keys as secrets holding
their (flattened) keys. A relative `secretsFile` is looked up beside the component file."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from portabind.errors import SecretError, shorten
from portabind.metadata import BindingMetadata, Truthy, setting
from portabind.secretstores import SecretStore, StoreContext

#: The largest secrets file read; Dapr's are a few kilobytes.
MAX_SECRETS_FILE_BYTES = 1 << 20
#: The deepest nesting of objects a secrets file may have.
MAX_SECRETS_NESTING = 64


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


_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def _load(path: Path) -> dict[str, Any]:
    """The secrets file's JSON object. Only a regular file of at most `MAX_SECRETS_FILE_BYTES`
    is read: `/dev/zero` would otherwise be read until memory runs out. The reasons never
    quote the file, which holds secrets."""
    # Checked before opening: opening a FIFO would wait for a writer.
    if not stat.S_ISREG(path.stat().st_mode):
        raise ValueError("not a regular file")
    with path.open("rb") as file:
        data = file.read(MAX_SECRETS_FILE_BYTES + 1)
    if len(data) > MAX_SECRETS_FILE_BYTES:
        raise ValueError(f"larger than {MAX_SECRETS_FILE_BYTES >> 20} MB")
    try:
        content = json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError:
        raise ValueError("not JSON text") from None
    if not isinstance(content, dict):
        raise ValueError(
            f"a JSON {_JSON_KINDS.get(type(content), 'null')}, not an object of secrets"
        )
    if _nesting(content) > MAX_SECRETS_NESTING:
        raise ValueError(f"objects nested more than {MAX_SECRETS_NESTING} levels deep")
    return content


def _nesting(content: dict[str, Any]) -> int:
    """How deep objects nest in `content` (counted without recursion, which `_flatten`
    then stays within)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(content, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            deepest = max(deepest, depth)
            pending.extend((inner, depth + 1) for inner in value.values())
    return deepest


def read(settings: FileStore, context: StoreContext, name: str) -> dict[str, str]:
    component = context.component
    path = Path(settings.secrets_file)
    if not path.is_absolute() and not path.exists():
        path = component.source.parent / settings.secrets_file  # beside the component file
    try:
        content = _load(path)
    except (OSError, ValueError) as error:
        reason = str(error) if isinstance(error, ValueError) else error.strerror
        raise SecretError(
            f"cannot read secrets file {shorten(str(path))}: {reason or type(error).__name__}",
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
