"""The entry module every cloud build writes (`portabind_lambda.py`, `function_app.py`,
`main.py`), generated one way for every target.

It puts its own directory first on `sys.path` (the portabind bundled beside it is the one the
app was built with), loads the target's `Function` once (cold start), makes each handler with
the trigger's runtime entry, and defines one platform function per trigger, decorated as the
platform wants, that calls it:

    _orders = function.sqs("orders")


    def orders(event, context):
        return _orders(event, context)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from portabind.tooling.targets import EntryOption


@dataclass(frozen=True)
class EntryFunction:
    """One platform function of the entry module."""

    #: Its Python name (what the platform's configuration points at).
    name: str
    #: The input component it handles.
    component: str
    #: The runtime entry making its handler: a method of the target's `Function`.
    entry: Callable[..., Any]
    #: Its parameters as the platform passes them, annotations included.
    parameters: Sequence[str]
    decorators: Sequence[str] = ()
    #: Its return annotation, when the platform reads one.
    returns: str | None = None
    doc: str = ""
    #: Keyword arguments of the runtime entry: what the build decided from the component
    #: (its annotations), so the function does not read them again at run time.
    options: Mapping[str, EntryOption] = field(default_factory=dict)


def literal(text: str) -> str:
    """A Python string literal (JSON's double-quoted form is valid Python)."""
    return json.dumps(text)


def identifier(name: str, prefix: str = "f_") -> str:
    """A Python identifier for a component name."""
    clean = re.sub(r"\W", "_", name)
    return clean if clean[:1].isalpha() else f"{prefix}{clean}"


def _option(value: EntryOption) -> str:
    return literal(value) if isinstance(value, str) else repr(value)


def _function(function: EntryFunction) -> list[str]:
    handler = f"_{function.name}"
    arguments = ", ".join(p.split(":", 1)[0].strip() for p in function.parameters)
    returns = f" -> {function.returns}" if function.returns else ""
    entry_arguments = [
        literal(function.component),
        *(f"{name}={_option(value)}" for name, value in function.options.items()),
    ]
    lines = [
        "",
        f"{handler} = function.{function.entry.__name__}({', '.join(entry_arguments)})",
        "",
        "",
        *function.decorators,
        f"def {function.name}({', '.join(function.parameters)}){returns}:",
    ]
    if function.doc:
        lines.append(f"    {literal(function.doc)}")
    lines += [f"    return {handler}({arguments})", ""]
    return lines


def module(
    *,
    doc: str,
    runtime: str,
    app_ref: str,
    functions: Sequence[EntryFunction],
    imports: Sequence[str] = (),
    preamble: Sequence[str] = (),
) -> str:
    """The entry module's source. `runtime` is the target's runtime module (it defines
    `Function`); `imports` come before it (in order), `preamble` after the load."""
    lines = [
        f'"""{doc}"""',
        "",
        "import sys",
        "from pathlib import Path",
        "",
        "HERE = Path(__file__).resolve().parent",
        "# The portabind bundled here is the one the app was built with.",
        "sys.path.insert(0, str(HERE))",
        "",
        *(
            f"{line}  # noqa: E402"
            if line.startswith(("import", "from")) and "# noqa" not in line
            else line
            for line in imports
        ),
        f"from {runtime} import Function  # noqa: E402",
        "",
        f"function = Function.load(HERE, app_ref={literal(app_ref)})",
        *preamble,
    ]
    for function in functions:
        lines += _function(function)
    return re.sub(r"\n{3,}(?=\S)", "\n\n\n", "\n".join(lines)).rstrip() + "\n"
