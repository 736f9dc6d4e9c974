"""What every cloud build puts in OUT to make the artifact self-contained.

- `portabind/`: the core, the adapter's runtime and the binding and secret store modules the
  components use, with the private helper modules (`bindings/aws/_aws.py`, ...) they import,
  so the platform installs only `requirements.txt` and never a portabind release that differs
  from the one the app was built with;
- the user's app: the project's top-level modules and packages;
- `components/`: the profile's YAML files (a secrets file beside them is never copied) and
  the JSON snapshot of the components loaded from them (`portabind.snapshot`), which the
  function reads at cold start;
- `requirements.txt`'s lines, from portabind's own dependency declarations and the app's own
  `requirements.txt` (`requirements`).

Each target's build writes its own files (entry module, templates, manifests) around this.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import operator
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from portabind import registry, snapshot
from portabind.errors import BuildError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from portabind.components import Component
    from portabind.tooling.project import Project

#: The folders in OUT the bundle owns: emptied before each build, so none of a previous
#: build's files (a binding the components no longer use) stays behind.
OWNED = ("portabind", "components")
#: Binding families whose extra is named differently (`bindings.mqtt3` → `portabind[mqtt]`).
_EXTRA_OF_FAMILY = {"mqtt3": "mqtt"}
_SKIPPED = {"__pycache__"}
#: Extras that only gather the others.
_GATHERING = {"all", "dev"}
#: Subpackages whose modules the core imports by name (a component's type), so the bundle
#: carries only those the components use.
_LOADED_BY_NAME = ("portabind.bindings", "portabind.adapters", "portabind.secretstores")


def _module_file(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise BuildError(f"cannot find module {name} to bundle it")
    return Path(spec.origin)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent is not a package
        return False


def _imported(name: str) -> frozenset[str]:
    """The portabind modules outside the core that module `name` imports when it is loaded:
    imports at module level, not those under `if TYPE_CHECKING:` nor inside functions (a
    runtime imports there the binding of each trigger kind, which is bundled only when a
    component uses it)."""
    source = _module_file(name)
    return _imported_by(source, source.stat().st_mtime_ns)


@functools.cache
def _imported_by(source: Path, mtime_ns: int) -> frozenset[str]:
    """`_imported` of the module in `source` as it was at `mtime_ns`: a process that builds
    many times (the test suite, a watch loop) parses each module once per change."""
    del mtime_ns  # part of the cache key only
    tree = ast.parse(source.read_text(encoding="utf-8"))
    found: set[str] = set()
    statements: list[ast.stmt] = list(tree.body)
    while statements:
        statement = statements.pop()
        if isinstance(statement, ast.If):
            if not (isinstance(statement.test, ast.Name) and statement.test.id == "TYPE_CHECKING"):
                statements += statement.body + statement.orelse
        elif isinstance(statement, ast.Try):
            statements += statement.body + statement.orelse + statement.finalbody
            statements += [s for handler in statement.handlers for s in handler.body]
        elif isinstance(statement, ast.Import):
            found.update(alias.name for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom) and statement.module and not statement.level:
            found.add(statement.module)
            # `from portabind.bindings.aws import _aws` imports the module `_aws`.
            found.update(
                f"{statement.module}.{alias.name}"
                for alias in statement.names
                if _is_module(f"{statement.module}.{alias.name}")
            )
    return frozenset(m for m in found if m.startswith(_LOADED_BY_NAME))


def _modules(project: Project, target: str) -> set[str]:
    """The adapter's runtime and the components' binding modules, with every module they
    import and every package above them."""
    pending = [f"portabind.adapters.{target}.runtime", "portabind.secretstores"]
    pending += [registry.module_name(component.type) for component in project.components.bindings()]
    pending += [
        f"portabind.{component.type}"  # as `portabind.secretstores.store_for` loads it
        for component in project.components.secret_stores().values()
    ]
    modules: set[str] = set()
    while pending:
        name = pending.pop()
        if name in modules:
            continue
        modules.add(name)
        parts = name.split(".")
        pending += [".".join(parts[:i]) for i in range(2, len(parts))]
        pending += sorted(_imported(name))
    return modules


def _copy(source: Path, target: Path, written: list[Path]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    written.append(target)


def vendor(project: Project, out: Path, target: str) -> list[Path]:
    """Copy the portabind core and the modules `_modules` names into OUT/portabind."""
    written: list[Path] = []
    for source in sorted(_module_file("portabind").parent.glob("*.py")):
        _copy(source, out / "portabind" / source.name, written)
    for name in sorted(_modules(project, target)):
        source = _module_file(name)
        relative = Path(*name.split("."))
        if source.name == "__init__.py":
            _copy(source, out / relative / "__init__.py", written)
        else:
            _copy(source, out / relative.with_suffix(".py"), written)
    return written


def copy_app(project: Project, out: Path) -> list[Path]:
    """The user's code: the project directory's top-level modules and its packages (folders
    with an `__init__.py`, data files included), not the components, caches or OUT."""
    written: list[Path] = []
    root = project.directory.resolve()
    skip = {out.resolve(), project.components.directory.resolve()}
    for path in sorted(root.iterdir()):
        if path.suffix == ".py" and path.is_file():
            _copy(path, out / path.name, written)
        elif path.is_dir() and (path / "__init__.py").is_file() and path.resolve() not in skip:
            for source in sorted(path.rglob("*")):
                relative = source.relative_to(root)
                hidden = any(p.startswith(".") or p in _SKIPPED for p in relative.parts)
                if source.is_file() and not hidden:
                    _copy(source, out / relative, written)
    return written


def copy_components(project: Project, out: Path) -> list[Path]:
    """The profile's component files into OUT/components (never a secrets file beside them),
    with the snapshot of the loaded components the function starts from."""
    written: list[Path] = []
    for source in sorted(project.components.directory.iterdir()):
        if source.suffix in (".yaml", ".yml") and source.is_file():
            _copy(source, out / "components" / source.name, written)
    written.append(snapshot.write(project.components, out / "components"))
    return written


def bundle(project: Project, out: Path, target: str) -> list[Path]:
    """Everything above in OUT (created if needed); returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    for owned in OWNED:
        shutil.rmtree(out / owned, ignore_errors=True)
    return [
        *copy_app(project, out),
        *copy_components(project, out),
        *vendor(project, out, target),
    ]


def binding_requirements(component: Component) -> list[str]:
    """What the component's binding needs installed: the distributions it declares
    (`Binding.requires`), else portabind's extra for its family (`bindings.kafka` → `kafka`),
    if there is one. The default of `requirements`' `needs`."""
    declared = registry.binding_for(component).requires
    if declared:
        return list(declared)
    extra = extra_of_family(component.type.split(".")[1])
    return [extra] if extra else []


def extra_of_family(family: str) -> str | None:
    """portabind's extra for a binding family (`aws`, `mqtt3`), if there is one."""
    extra = _EXTRA_OF_FAMILY.get(family, family)
    return extra if extra in _extras() else None


def extras_requiring(distribution: str) -> list[str]:
    """The extras of portabind that require `distribution` (any spelling), `all` and `dev`
    (which only gather the others) left out."""
    wanted = _distribution(distribution)
    return sorted(
        {
            extra
            for requirement, extra in _declared()
            if extra and extra not in _GATHERING and _distribution(requirement) == wanted
        }
    )


def _extras() -> list[str]:
    return importlib.metadata.metadata("portabind").get_all("Provides-Extra") or []


def _declared() -> list[tuple[str, str | None]]:
    """portabind's requirements as (requirement, the extra asking for it or None)."""
    declared = []
    for line in importlib.metadata.requires("portabind") or []:
        requirement, _, marker = line.partition(";")
        extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", marker)
        declared.append((requirement.strip(), extra.group(1) if extra else None))
    return declared


def _distribution(requirement: str) -> str:
    name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(
    project: Project,
    base: Iterable[str],
    needs: Callable[[Component], Iterable[str]] = binding_requirements,
) -> list[str]:
    """requirements.txt's lines: portabind's own dependencies, then `base` and what `needs`
    gives for each binding component. Each name there is one of portabind's extras (all of
    its requirements) or a distribution portabind requires (with the range it declares).
    Lines follow portabind's declaration order; requirements of portabind itself (the `all`
    extra) are never listed, since the artifact carries its own copy."""
    declared = _declared()
    names = set(base)
    for component in project.components.bindings():
        names.update(needs(component))
    extras, distributions = set(_extras()), {_distribution(r) for r, _ in declared}
    unknown = sorted(n for n in names if n not in extras and _distribution(n) not in distributions)
    if unknown:
        raise BuildError(f"portabind declares no extra or requirement named {unknown[0]!r}")
    wanted = {_distribution(n) for n in names}
    lines: list[str] = []
    for requirement, extra in declared:
        distribution = _distribution(requirement)
        # A distribution named is taken once, as the first extra that uses it declares it,
        # not as a gathering extra spells it (dev's `dapr[grpc,fastapi]`: the test SDKs), nor
        # again as another extra does (kafka's `PyJWT[crypto]` for signalr's `PyJWT`).
        named = distribution in wanted and extra not in _GATHERING
        if named:
            wanted.discard(distribution)
        chosen = extra is None or extra in names or named
        if chosen and distribution != "portabind" and requirement not in lines:
            lines.append(requirement)
    return _merge_app_requirements(project, lines)


#: A requirement line's name, extras and version specifiers, with nothing else (no marker, URL).
_PLAIN = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<extras>\[[^\]]*\])?\s*(?P<spec>[^;@]*)"
)


def _merge_app_requirements(project: Project, lines: list[str]) -> list[str]:
    """`lines` then the app's own requirements.txt (what its code imports besides portabind).
    A distribution both name keeps portabind's range: the app's line adds its specifiers to it
    (a pin `==V` within that range), or is an error showing both lines when its pin is outside
    it or the line is not plain `name[extras] specifiers`. portabind itself is never listed."""
    path = project.directory / "requirements.txt"
    if not path.is_file():
        return lines
    merged = list(lines)
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        name = _distribution(line)
        if name == "portabind":
            continue
        ours = next((i for i, mine in enumerate(lines) if _distribution(mine) == name), None)
        if ours is None:
            merged.append(line)
        elif line != lines[ours]:
            where = f"{path}:{number}"
            merged[ours] = _combined(merged[ours], lines[ours], line, where)
    return merged


def _combined(current: str, ours: str, theirs: str, where: str) -> str:
    """`current` (portabind's `ours`, as narrowed so far) narrowed by the app's `theirs`."""
    mine, app = _PLAIN.fullmatch(ours), _PLAIN.fullmatch(theirs)
    app_spec = app.group("spec").strip() if app else ""
    pins = re.findall(r"===?\s*([0-9][0-9.]*)$", app_spec)
    outside = bool(mine and pins and not _satisfies(pins[0], mine.group("spec")))
    if mine is None or app is None or outside:
        raise BuildError(
            f"{where}: {theirs!r} conflicts with portabind's own requirement {ours!r}",
            hint="pin a version within portabind's range, or remove the line",
        )
    narrowed = _PLAIN.fullmatch(current)
    assert narrowed is not None  # `ours`, plain, narrowed by plain specifiers only
    extras = app.group("extras") or narrowed.group("extras") or ""
    specs = ",".join(s for s in (narrowed.group("spec").strip(), app_spec) if s)
    return f"{narrowed.group('name')}{extras}{specs}"


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:4])


def _satisfies(version: str, specifiers: str) -> bool:
    """Whether release `version` meets every comparison of `specifiers` (`>=1.34,<2`),
    compared by release numbers (what portabind declares: lower bounds)."""
    return all(
        _COMPARISONS[comparison](_release(version), _release(bound))
        for comparison, bound in re.findall(r"(>=|<=|==|!=|>|<)\s*([0-9][0-9.]*)", specifiers)
    )


_COMPARISONS = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
