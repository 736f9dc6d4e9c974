"""The support matrix, computed from the code: which binding types exist, which directions
they implement, and what each target does with their input (native trigger or fallback)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from portabind import registry
from portabind.tooling.targets import targets

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class Row:
    type: str
    input: bool
    output: bool
    operations: tuple[str, ...]
    triggers: Mapping[str, str]  # target -> native trigger, or "" when none
    fallbacks: Mapping[str, str]  # target -> the alternative when there is no trigger, or ""


def support_matrix() -> list[Row]:
    known = targets()
    rows = []
    for type_string in registry.available_types():
        binding = importlib.import_module(registry.module_name(type_string)).binding
        rows.append(
            Row(
                type=type_string,
                input=binding.input is not None,
                output=binding.output is not None,
                operations=binding.output.operations if binding.output else (),
                triggers={
                    name: trigger.native if (trigger := target.trigger(type_string)) else ""
                    for name, target in known.items()
                },
                fallbacks={
                    name: target.fallbacks.get(type_string, "") for name, target in known.items()
                },
            )
        )
    return rows


def _cell(row: Row, target: str) -> str:
    """An input's native trigger (or what to use without one); an output-only type's
    client, plus the trigger a target adds as an extension."""
    trigger = row.triggers[target]
    if row.input:
        return trigger or f"none: use {row.fallbacks[target] or '`portabind run`'}"
    if not row.output:
        return "-"
    return f"client; trigger {trigger}" if trigger else "client"


def render(rows: list[Row], *, markdown: bool = False) -> str:
    names = list(rows[0].triggers) if rows else []
    header = ["type", "input", "output", "operations", *names, "local run"]
    table = [
        [
            row.type,
            "yes" if row.input else "-",
            "yes" if row.output else "-",
            " ".join(row.operations) or "-",
            *[_cell(row, target) for target in names],
            "listener + client"
            if row.input and row.output
            else "listener"
            if row.input
            else "client",
        ]
        for row in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in table]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        for cells in [header, *table]
    )
