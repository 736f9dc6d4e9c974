"""Binding types by their Dapr type string.

The type string is the module path: `bindings.aws.s3` lives in `portabind.bindings.aws.s3`
and is imported only when a component of that type is loaded, so no SDK is imported for a
binding the app does not use.
"""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING, Any

from portabind.errors import ComponentError, shorten

if TYPE_CHECKING:
    from portabind.binding import Binding
    from portabind.components import Component

#: Dapr's alternative type names (dapr/cmd/daprd/components/bindings_*.go).
ALIASES = {
    "bindings.mqtt": "bindings.mqtt3",
    "bindings.azure.servicebus.queues": "bindings.azure.servicebusqueues",
}
_PACKAGE = "portabind.bindings"
#: A binding type's shape: lowercase dotted names, none private (`_name` modules are helpers).
_TYPE_NAME = re.compile(r"bindings(\.[a-z][a-z0-9]*)+")


def canonical_type(type_string: str) -> str:
    return ALIASES.get(type_string, type_string)


def module_name(type_string: str) -> str:
    """The module implementing a binding type (`bindings.aws.s3` → portabind.bindings.aws.s3)."""
    return _PACKAGE + type_string.removeprefix("bindings")


def available_types() -> list[str]:
    """Every binding type shipped, found by walking the package (without importing SDKs:
    module discovery only reads the file tree)."""
    import pkgutil  # here: a function's start-up never lists the types

    package = importlib.import_module(_PACKAGE)
    found = []
    for info in pkgutil.walk_packages(package.__path__, _PACKAGE + "."):
        leaf = info.name.rsplit(".", 1)[-1]
        if not info.ispkg and not leaf.startswith("_"):
            found.append("bindings" + info.name.removeprefix(_PACKAGE))
    return sorted(found)


def binding_for(component: Component) -> Binding[Any]:
    """The binding implementation of a component's type."""
    if not component.type.startswith("bindings."):
        raise component.error(
            f"{shorten(component.type)!r} is not a binding type", field="spec.type"
        )
    # Only a module named like a binding type is imported: not a vendor's package
    # (`bindings.aws`), not a helper (`bindings._attempts`), nothing outside the package.
    if not _TYPE_NAME.fullmatch(component.type):
        raise _unknown(component)
    try:
        module = importlib.import_module(module_name(component.type))
    except ModuleNotFoundError as error:
        if error.name and module_name(component.type).startswith(error.name):
            raise _unknown(component) from None
        raise ComponentError(
            f"binding type {component.type!r} needs the Python package {error.name!r}, which is "
            "not installed",
            file=component.source,
            component=component.name,
            field="spec.type",
            hint="install the extra for its family, e.g. pip install 'portabind[aws]'",
        ) from None
    binding: Binding[Any] | None = getattr(module, "binding", None)
    if binding is None:
        raise _unknown(component)
    return binding


def _unknown(component: Component) -> ComponentError:
    import difflib  # only for a message: not on every start-up

    close = difflib.get_close_matches(component.type, available_types(), n=1)
    return ComponentError(
        f"unknown binding type {shorten(component.type)!r}",
        file=component.source,
        component=component.name,
        field="spec.type",
        hint=(f"did you mean {close[0]!r}? " if close else "")
        + "`portabind bindings` lists the supported types",
    )
