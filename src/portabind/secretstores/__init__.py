"""Secret stores by their Dapr type string, as bindings are: `secretstores.local.env` lives in
`portabind.secretstores.local.env`, imported only when a component of that type is used, so
no SDK is imported for a store nobody uses.

Each module defines `store = SecretStore(...)`: its metadata model, and how it reads one
secret (`read`, given the parsed metadata and the component; None for a store only the
platform reaches, e.g. Kubernetes' built-in store). A build compiles references to a store
into the platform's own (adapters/<target>/build.py read the store's metadata); `validate`
says which references resolve here and which only on the platform.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from portabind.components import parse_metadata
from portabind.metadata import BindingMetadata

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from portabind.components import Component, ComponentSet

M = TypeVar("M", bound=BindingMetadata)
_PACKAGE = "portabind.secretstores"


@dataclass(frozen=True)
class StoreContext:
    """What a store reads besides its metadata: the component (its file, for relative
    paths) and the environment."""

    component: Component
    environ: Mapping[str, str]


@dataclass(frozen=True)
class SecretStore(Generic[M]):
    """What a secret store module exports as `store`."""

    metadata: type[M]
    #: Reads secret `name` as Dapr's GetSecret returns it (key → value; empty: not found).
    #: None: the store resolves only on its platform.
    read: Callable[[M, StoreContext, str], dict[str, str]] | None
    #: Where it resolves when not here, for messages ("Kubernetes").
    platform: str = ""
    #: How to provide a missing secret, given its name and the parsed metadata.
    hint: Callable[[M, str], str] | None = None

    def settings(self, component: Component) -> M:
        """The store component's metadata (literal values: stores take no references)."""
        values = {key: value.literal or "" for key, value in component.values.items()}
        if component.validated is not None:  # a built function: its build validated them
            return component.validated_metadata(self.metadata, values)
        return parse_metadata(component, self.metadata, values)


def store_for(component: Component) -> SecretStore[Any]:
    """The implementation of a `secretstores.*` component's type."""
    module_name = _PACKAGE + component.type.removeprefix("secretstores")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            raise component.error(
                f"secret store type {component.type!r} is not supported",
                field="spec.type",
                hint="use secretstores.local.env, secretstores.local.file, "
                "secretstores.aws.secretmanager, secretstores.azure.keyvault, "
                "secretstores.gcp.secretmanager or secretstores.kubernetes",
            ) from None
        raise
    found: SecretStore[Any] = module.store
    return found


def store_settings(components: ComponentSet, component: Component, type_string: str) -> Any:
    """The metadata of the secret store `component`'s references use, when that store is of
    type `type_string` (how a build compiles them); None otherwise."""
    store = components.components.get(component.secret_store or "")
    if store is None or store.type != type_string:
        return None
    return store_for(store).settings(store)
