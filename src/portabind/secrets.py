"""Resolving `secretKeyRef` and `envRef` values, and Dapr's tags in metadata values
(`expand_tags`), as the Dapr runtime does before a component's Init.

A reference is read from the secret store component `auth.secretStore` names, through the
store's module (`portabind.secretstores`). On a cloud target the build turns each reference
into a platform secret reference that the platform hands the function as an environment
variable named by `secret_env_name`; that variable wins over the store. A reference to a
store that resolves only on its platform (Kubernetes' built-in one, or one not in the
directory) raises `PlatformOnly`: `validate` warns about it, `run` cannot go on without it.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from portabind.errors import SecretError

if TYPE_CHECKING:
    from collections.abc import Mapping, Set

    from portabind.components import Component, ComponentSet, SecretKeyRef

_REFUSED_ENV = ("DAPR_", "APP_API_TOKEN")

#: The tags daprd replaces in every metadata value when it loads a component (dapr/dapr
#: `pkg/runtime/meta`): a new UUID for each `{uuid}`, the `POD_NAME` variable (Kubernetes
#: sets it), `NAMESPACE` (default "default") joined to the app id, the app id.
TAGS = ("{uuid}", "{podName}", "{namespace}", "{appID}")


def has_tags(text: str) -> bool:
    """Whether a value holds a tag, so that it is only known when the component loads."""
    return "{" in text and any(tag in text for tag in TAGS)


def expand_tags(text: str, app_id: str, environ: Mapping[str, str]) -> str:
    """`text` with Dapr's tags replaced as daprd replaces them (ValueError: `{podName}`
    without `POD_NAME`, which daprd refuses too)."""
    if not has_tags(text):
        return text
    if "{uuid}" in text:
        import uuid  # here, not at the top: it imports `platform`, a cold start's cost

        while "{uuid}" in text:
            text = text.replace("{uuid}", str(uuid.uuid4()), 1)
    if "{podName}" in text:
        pod = environ.get("POD_NAME", "")
        if not pod:
            raise ValueError("refers to {podName}, and POD_NAME is not set (Kubernetes sets it)")
        text = text.replace("{podName}", pod)
    namespace = environ.get("NAMESPACE", "default")
    return text.replace("{namespace}", f"{namespace}.{app_id}").replace("{appID}", app_id)


class PlatformOnly(SecretError):
    """A reference only the platform resolves (its store is not one this machine reads)."""


def secret_env_name(component: str, field: str) -> str:
    """The environment variable a cloud target uses to hand a resolved secret to the
    function: `PORTABIND_SECRET_<COMPONENT>_<FIELD>`, upper-case, non-alphanumerics as `_`."""
    clean = re.sub(r"[^A-Za-z0-9]+", "_", f"{component}_{field}").strip("_").upper()
    return f"PORTABIND_SECRET_{clean}"


class SecretResolver:
    """Resolves the references of the components in one set."""

    def __init__(self, components: ComponentSet, environ: Mapping[str, str] | None = None) -> None:
        self._components = components
        self._environ = os.environ if environ is None else environ

    def values(self, component: Component, keys: Set[str] | None = None) -> dict[str, str]:
        """The component's binding metadata (or only `keys` of it) as plain strings, every
        reference resolved and every tag replaced."""
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
            try:
                resolved[key] = expand_tags(resolved[key], self._components.app_id, self._environ)
            except ValueError as error:
                raise component.error(str(error), field=key) from None
        return resolved

    def _secret(self, component: Component, key: str, ref: SecretKeyRef) -> str:
        # Here, not at the top: a built function reads its secrets from the environment the
        # platform fills (above), so its cold start never loads the stores.
        from portabind.secretstores import StoreContext, store_for

        store_name = component.secret_store
        if not store_name:
            raise PlatformOnly(
                f"secretKeyRef {ref.name!r} names no secret store (auth.secretStore): in a "
                "Kubernetes cluster Dapr reads it from the built-in kubernetes store; here it "
                "does not resolve",
                file=component.source,
                component=component.name,
                field=key,
                hint="add `auth: {secretStore: <name>}` naming a secret store component",
            )
        store = self._components.components.get(store_name)
        if store is None or not store.type.startswith("secretstores."):
            raise PlatformOnly(
                f"auth.secretStore names {store_name!r}, which is not a secret store component "
                "in this directory: it resolves only where that store exists",
                file=component.source,
                component=component.name,
                field=key,
            )
        kind = store_for(store)
        if kind.read is None:
            raise PlatformOnly(
                f"secret {ref.name!r} is in {store_name!r} ({store.type}), which resolves only "
                f"on {kind.platform}",
                file=component.source,
                component=component.name,
                field=key,
            )
        settings = kind.settings(store)
        secret_key = ref.key or ref.name
        try:
            secret = kind.read(settings, StoreContext(store, self._environ), ref.name)
        except PlatformOnly as only:  # the store is out of reach here: name the reference
            raise PlatformOnly(
                only.detail,
                file=component.source,
                component=component.name,
                field=key,
                hint=only.hint,
            ) from None
        if secret.get(secret_key, "") == "":
            raise SecretError(
                f"secret {ref.name!r} (key {secret_key!r}) not found in secret store "
                f"{store_name!r} ({store.type})",
                file=component.source,
                component=component.name,
                field=key,
                hint=kind.hint(settings, ref.name) if kind.hint else None,
            )
        return secret[secret_key]
