"""The import rules that keep the layers apart, checked on the source (every import statement,
those inside functions included; imports under `if TYPE_CHECKING:` execute nothing, so only
the private-name rule applies to them):

- bindings never import adapters or tooling;
- the core's runtime part (`portabind/*.py`) never imports adapters, bindings or tooling: the
  registry loads a binding by its type string;
- tooling reaches adapters only through `portabind.tooling.targets` (target discovery);
- `adapters/<a>/` never imports `adapters/<b>/`, and a target's runtime never imports tooling
  (a deployed function ships without it);
- `portabind.testing` (the test client) is tooling: nothing else imports it, and it reaches
  adapters only through target discovery;
- no module imports another module's private names: a `_name` is private to the module or
  package that defines it (a private module `pkg/_helper.py` serves the modules of `pkg`).
"""

from __future__ import annotations

import ast
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import portabind

PACKAGE_ROOT = Path(portabind.__file__).parent


@dataclass(frozen=True)
class Import:
    importer: str  # the importing module
    line: int
    module: str  # the module imported from (absolute)
    names: tuple[str, ...]  # for `from module import a, b`; empty for `import module`
    type_only: bool

    def __str__(self) -> str:
        what = f"from {self.module} import {', '.join(self.names)}" if self.names else self.module
        return f"{self.importer}:{self.line}: {what}"


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE_ROOT.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(path: Path) -> list[Import]:
    importer = _module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for statement in child.body:
                    visit_statement(statement, True)
                for statement in child.orelse:
                    visit_statement(statement, type_only)
            else:
                visit_statement(child, type_only)

    def visit_statement(node: ast.AST, type_only: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(importer, node.lineno, a.name, (), type_only) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = tuple(a.name for a in node.names)
            found.append(Import(importer, node.lineno, base, names, type_only))
        visit(node, type_only)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


@functools.cache  # every rule reads them all; the sources do not change during a session
def _all_imports() -> tuple[Import, ...]:
    # os.walk: bindings/, adapters/ and templates/ are links inside the package folder.
    files = sorted(
        Path(folder, name)
        for folder, _, names in os.walk(PACKAGE_ROOT, followlinks=True)
        for name in names
        if name.endswith(".py") and "__pycache__" not in folder
    )
    imports = tuple(found for path in files for found in _imports(path))
    assert len({i.importer for i in imports}) > 50, "the walk must see bindings and adapters"
    return imports


def _targets(found: Import) -> list[str]:
    """Every module path an import names (`from a import b` may import module a.b)."""
    return [found.module, *(f"{found.module}.{name}" for name in found.names)]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _violations(
    rule: str, importers: str, forbidden: tuple[str, ...], allowed: str = ""
) -> list[str]:
    return [
        f"{rule}: {found}"
        for found in _all_imports()
        if _within(found.importer, importers)
        and not found.type_only
        and not (allowed and found.importer == allowed)
        and any(_within(t, f) for t in _targets(found) for f in forbidden)
    ]


def test_bindings_never_import_adapters_or_tooling() -> None:
    assert (
        _violations(
            "binding imports adapter/tooling",
            "portabind.bindings",
            ("portabind.adapters", "portabind.tooling"),
        )
        == []
    )


def test_the_core_runtime_imports_no_adapter_binding_or_tooling() -> None:
    core = [
        f"core imports a layer above it: {found}"
        for found in _all_imports()
        if found.importer.count(".") == 1  # portabind.<module>: the runtime part of the core
        and not found.type_only
        and any(
            _within(t, layer)
            for t in _targets(found)
            for layer in ("portabind.adapters", "portabind.bindings", "portabind.tooling")
        )
    ]
    assert core == []


def test_tooling_reaches_adapters_only_through_target_discovery() -> None:
    assert (
        _violations(
            "tooling imports an adapter by name",
            "portabind.tooling",
            ("portabind.adapters",),
            allowed="portabind.tooling.targets",
        )
        == []
    )


def test_an_adapter_never_imports_another_and_runtimes_never_import_tooling() -> None:
    problems = []
    for found in _all_imports():
        parts = found.importer.split(".")
        if parts[:2] != ["portabind", "adapters"] or len(parts) < 4 or found.type_only:
            continue
        own = ".".join(parts[:3])
        for target in _targets(found):
            if _within(target, "portabind.adapters") and not _within(target, own):
                problems.append(f"adapter imports another adapter: {found}")
            if parts[3] == "runtime" and _within(target, "portabind.tooling"):
                problems.append(f"a target's runtime imports tooling: {found}")
    assert problems == []


def test_no_module_imports_another_modules_private_names() -> None:
    problems = []
    for found in _all_imports():
        for name in found.names:
            private_module = f"{found.module}.{name}"
            if name.startswith("_") and not _within(found.importer, found.module):
                problems.append(f"{found} ({name} is private to {found.module})")
            elif name.startswith("_") and found.importer == private_module:
                problems.append(f"{found} (imports itself)")
        # A private module (or a name inside one) is private to the package holding it.
        parts = found.module.split(".")
        for index, part in enumerate(parts):
            owner = ".".join(parts[:index])
            if part.startswith("_") and not part.startswith("__"):
                if not _within(found.importer, owner):
                    problems.append(f"{found} ({'.'.join(parts[: index + 1])} is private)")
                break
    assert problems == []


def test_the_test_client_is_tooling_side() -> None:
    """`portabind.testing` loads YAML and reaches adapters through target discovery, as tooling
    does, so no layer a build bundles may import it (templates' own tests use it), and it
    imports no adapter by name."""
    problems = []
    for found in _all_imports():
        if found.type_only:
            continue
        inside = _within(found.importer, "portabind.testing")
        for target in _targets(found):
            if inside and _within(target, "portabind.adapters"):
                problems.append(f"the test client imports an adapter by name: {found}")
            user = inside or _within(found.importer, "portabind.templates")
            if not user and _within(target, "portabind.testing"):
                problems.append(f"a bundled layer imports the test client: {found}")
    assert problems == []
