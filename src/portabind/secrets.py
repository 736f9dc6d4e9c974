"""Resolving `secretKeyRef` and `envRef` values, as the Dapr runtime does before a
component's Init.

Stores: `secretstores.local.env` (optional `prefix`) and `secretstores.local.file`
(`secretsFile`, `nestedSeparator`, `multiValued`). On a cloud target the build turns each
reference into a platform secret reference that the platform hands the function as an
environment variable named by `secret_env_name`; that variable wins over the store.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portabind.errors import SecretError

if TYPE_CHECKING:
    from collections.abc import Mapping, Set

    from portabind.components import Component, ComponentSet, SecretKeyRef

_REFUSED_ENV = ("DAPR_", "APP_API_TOKEN")


def secret_env_name(component: str, field: str) -> str:
    """The environment variable a cloud target uses to hand a resolved secret to the
    function: `PORTABIND_SECRET_<COMPONENT>_<FIELD>`, upper-case, non-alphanumerics as `_`."""
    clean = re.sub(r"[^A-Za-z0-9]+", "_", f"{component}_{field}").strip("_").upper()
    return f"PORTABIND_SECRET_{clean}"


def _flatten(value: Any, separator: str, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        flat: dict[str, str] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, separator, f"{prefix}{separator}{key}" if prefix else key))
        return flat
    return {prefix: value if isinstance(value, str) else json.dumps(value)}


class SecretResolver:
    """Resolves the references of the components in one set."""

    def __init__(self, components: ComponentSet, environ: Mapping[str, str] | None = None) -> None:
        self._components = components
        self._environ = os.environ if environ is None else environ
        self._file_cache: dict[str, dict[str, dict[str, str]]] = {}

    def values(self, component: Component, keys: Set[str] | None = None) -> dict[str, str]:
        """The component's binding metadata (or only `keys` of it) as plain strings, every
        reference resolved."""
        resolved: dict[str, str] = {}
        for key, value in component.binding_values().items():
            if keys is not None and key not in keys:
                continue
            from_platform = self._environ.get(secret_env_name(component.name, key))
            if from_platform is not None and value.is_reference:
                resolved[key] = from_platform
            elif value.literal is not None:
                resolved[key] = value.literal
            elif value.secret_ref is not None:
                resolved[key] = self._secret(component, key, value.secret_ref)
            elif value.env_ref is not None:
                if value.env_ref.startswith(_REFUSED_ENV):
                    raise component.error(
                        f"envRef {value.env_ref!r} is refused (DAPR_* and APP_API_TOKEN are "
                        "reserved)",
                        field=key,
                    )
                resolved[key] = self._environ.get(value.env_ref, "")
            else:
                resolved[key] = ""
        return resolved

    def _secret(self, component: Component, key: str, ref: SecretKeyRef) -> str:
        store_name = component.secret_store
        if not store_name:
            raise SecretError(
                f"secretKeyRef {ref.name!r} needs a secret store, and auth.secretStore is not set",
                file=component.source,
                component=component.name,
                field=key,
                hint="add `auth: {secretStore: <name>}` naming a secretstores.local.env or "
                "secretstores.local.file component",
            )
        store = self._components.components.get(store_name)
        if store is None or not store.type.startswith("secretstores."):
            raise SecretError(
                f"auth.secretStore names {store_name!r}, which is not a secret store component "
                "in this directory",
                file=component.source,
                component=component.name,
                field=key,
            )
        secret_key = ref.key or ref.name
        secret = self._lookup(store, ref.name)
        if secret_key not in secret or secret[secret_key] == "":
            raise SecretError(
                f"secret {ref.name!r} (key {secret_key!r}) not found in secret store "
                f"{store_name!r} ({store.type})",
                file=component.source,
                component=component.name,
                field=key,
                hint=self._hint(store, ref.name),
            )
        return secret[secret_key]

    def _hint(self, store: Component, name: str) -> str:
        if store.type == "secretstores.local.env":
            prefix = store.values.get("prefix")
            return f"set the environment variable {(prefix.literal if prefix else '') or ''}{name}"
        return f"add {name!r} to the secrets file of {store.name!r}"

    def _lookup(self, store: Component, name: str) -> dict[str, str]:
        settings = {k.lower(): v.literal or "" for k, v in store.values.items()}
        if store.type == "secretstores.local.env":
            variable = settings.get("prefix", "") + name
            if variable.startswith(_REFUSED_ENV):
                return {}
            value = self._environ.get(variable)
            return {name: value} if value is not None else {}
        if store.type == "secretstores.local.file":
            return self._from_file(store, settings).get(name, {})
        raise SecretError(
            f"secret store type {store.type!r} is not supported; use secretstores.local.env or "
            "secretstores.local.file",
            file=store.source,
            component=store.name,
            field="spec.type",
        )

    def _from_file(self, store: Component, settings: dict[str, str]) -> dict[str, dict[str, str]]:
        if store.name in self._file_cache:
            return self._file_cache[store.name]
        raw_path = settings.get("secretsfile")
        if not raw_path:
            raise SecretError(
                "secretsFile is required",
                file=store.source,
                component=store.name,
                field="secretsFile",
            )
        path = Path(raw_path)
        if not path.is_absolute() and not path.exists():
            path = store.source.parent / raw_path  # relative to the component file
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SecretError(
                f"cannot read secrets file {path}: {error}",
                file=store.source,
                component=store.name,
                field="secretsFile",
            ) from None
        separator = settings.get("nestedseparator") or ":"
        secrets: dict[str, dict[str, str]] = {}
        if settings.get("multivalued", "").lower() in ("true", "1", "yes", "on", "t", "y"):
            for key, value in content.items():
                secrets[key] = (
                    _flatten(value, separator) if isinstance(value, dict) else {key: str(value)}
                )
        else:
            for key, value in _flatten(content, separator).items():
                secrets[key] = {key: value}
        self._file_cache[store.name] = secrets
        return secrets
