"""Which components an app uses, found before anything runs: each handler's component (an
input), each `Output` parameter and each `invoke_binding` call with a literal name (outputs).

Handlers and their `Output` parameters come from the imported `App`; `invoke_binding` calls
from the app module's syntax tree, since the call runs only when an event arrives. A name
computed at run time cannot be known here and is not checked.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from portabind.app import describe

if TYPE_CHECKING:
    from pathlib import Path

    from portabind.app import App

#: The calls that invoke an output binding by name: `App`'s, and the Dapr SDK's, whose
#: keyword for the name is `binding_name`.
_INVOKE_CALLS = frozenset({"invoke_binding", "ainvoke_binding"})
_NAME_KEYWORDS = frozenset({"name", "binding_name"})


@dataclass(frozen=True)
class Use:
    """One place the app names a component."""

    component: str
    direction: Literal["input", "output"]
    #: Where, for messages: "handler <file:line qualname>", "<file>:<line> invoke_binding", …
    where: str


def app_uses(app: App, module_file: Path) -> list[Use]:
    """Every use of a component by name in `app` and its module's source."""
    uses: list[Use] = []
    for name, registration in app.handlers.items():
        handler = describe(registration.function)
        uses.append(Use(name, "input", f"handler {handler}"))
        uses += [
            Use(output, "output", f"Output parameter {parameter!r} of handler {handler}")
            for parameter, output in registration.outputs.items()
        ]
    if module_file.is_file():
        uses += _invocations(module_file)
    return uses


def _invocations(module_file: Path) -> list[Use]:
    """`….invoke_binding("name", …)` calls in the module with the name as a literal."""
    try:
        tree = ast.parse(module_file.read_text(encoding="utf-8"), filename=str(module_file))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return []  # the module imported, so this is a file read apart from it: nothing to add
    uses: list[Use] = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _INVOKE_CALLS
        ):
            continue
        arguments = [*node.args[:1], *(k.value for k in node.keywords if k.arg in _NAME_KEYWORDS)]
        for argument in arguments:
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                where = f"{module_file}:{node.lineno} {node.func.attr}"
                uses.append(Use(argument.value, "output", where))
    return uses
