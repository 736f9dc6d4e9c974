"""A binding that names its distributions (`Binding.requires`) names every one its code
imports, directly or through the shared modules of its package: a build lists only those for
it, so one left out is an ImportError in a deployed function."""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import re
import sys
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from portabind import registry
from portabind.components import Component
from portabind.tooling.bundle import binding_requirements

DECLARING = [
    binding_type
    for binding_type in registry.available_types()
    if importlib.import_module(registry.module_name(binding_type)).binding.requires
]


def _name(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _imports(module: str, seen: set[str]) -> set[str]:
    """Every absolute import of `module` and of the portabind binding modules it imports."""
    seen.add(module)
    spec = _spec(module)
    assert spec is not None and spec.origin is not None, module
    found: set[str] = set()
    for node in ast.walk(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from google.cloud import storage`: the name may be a module of its own.
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    for name in sorted(found):
        if name.startswith("portabind.bindings.") and name not in seen and _spec(name):
            found |= _imports(name, seen)
    return found


def _spec(module: str) -> importlib.machinery.ModuleSpec | None:
    """`module`'s spec; None for a name that is no module (`from a import B` gives `a.B`)."""
    try:
        return importlib.util.find_spec(module)
    except (ModuleNotFoundError, AttributeError):  # its parent is a module, not a package
        return None


@cache
def _owners() -> dict[Path, str]:
    """Each installed Python file, by its path, to the distribution it belongs to."""
    owners = {}
    for distribution in importlib.metadata.distributions():
        for file in distribution.files or ():
            if file.suffix == ".py":
                owners[Path(str(distribution.locate_file(file))).resolve()] = _name(
                    distribution.metadata["Name"]
                )
    return owners


def _distribution(module: str) -> str | None:
    """The distribution installing `module`; None for the standard library, portabind, a
    namespace package (`google.cloud`: its modules tell) and a name that is no module."""
    if module.split(".")[0] in sys.stdlib_module_names or module.startswith("portabind"):
        return None
    spec = _spec(module)
    if spec is None or spec.origin in (None, "built-in"):
        parent = module.rpartition(".")[0]
        assert parent and _spec(parent) is not None, f"{module} is not installed"
        return None
    return _owners()[Path(spec.origin).resolve()]


def _with_dependencies(distributions: list[str]) -> set[str]:
    """`distributions` and what they require, transitively (extras left out)."""
    found: set[str] = set()
    pending = [_name(d) for d in distributions]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.add(name)
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(_name(requirement.name))
    return found


@pytest.mark.parametrize("binding_type", DECLARING)
def test_a_binding_names_every_distribution_it_imports(binding_type: str) -> None:
    component = Component("c", binding_type, "v1", Path("c.yaml"), {})
    named = binding_requirements(component)
    imported = {_distribution(m) for m in _imports(registry.module_name(binding_type), set())}

    missing = imported - {None} - _with_dependencies(named)

    assert not missing, f"{binding_type} imports {sorted(missing)} and names only {named}"


def test_the_azure_and_gcp_types_name_their_own_sdks() -> None:
    assert {t for t in DECLARING if t.startswith(("bindings.azure.", "bindings.gcp."))} == {
        t for t in registry.available_types() if t.startswith(("bindings.azure.", "bindings.gcp."))
    }
