"""The support matrix, computed from the code: which binding types exist, which directions
they implement, and what each target does with their input (native trigger or fallback)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from portabind import registry

if TYPE_CHECKING:
    from collections.abc import Mapping

#: Cloud targets whose build module declares `TRIGGERS` (type → native trigger).
CLOUD_TARGETS = ("aws", "azure", "gcp")


@dataclass(frozen=True)
class Row:
    type: str
    input: bool
    output: bool
    operations: tuple[str, ...]
    triggers: Mapping[str, str]  # target -> native trigger, or "" when none
    fallbacks: Mapping[str, str]  # target -> the alternative when there is no trigger, or ""


def _declared(target: str, name: str) -> Mapping[str, str]:
    """A build module's `TRIGGERS` or `FALLBACKS` (Dapr type → text)."""
    try:
        module = importlib.import_module(f"portabind.adapters.{target}.build")
    except ModuleNotFoundError:
        return {}
    declared: Mapping[str, str] = getattr(module, name, {})
    return declared


def support_matrix() -> list[Row]:
    per_target = {target: _declared(target, "TRIGGERS") for target in CLOUD_TARGETS}
    fallbacks = {target: _declared(target, "FALLBACKS") for target in CLOUD_TARGETS}
    rows = []
    for type_string in registry.available_types():
        module = importlib.import_module("portabind.bindings" + type_string[len("bindings") :])
        binding = module.binding
        rows.append(
            Row(
                type=type_string,
                input=binding.input is not None,
                output=binding.output is not None,
                operations=binding.output.operations if binding.output else (),
                triggers={t: per_target[t].get(type_string, "") for t in CLOUD_TARGETS},
                fallbacks={t: fallbacks[t].get(type_string, "") for t in CLOUD_TARGETS},
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
    header = ["type", "input", "output", "operations", *CLOUD_TARGETS, "local run"]
    table = [
        [
            row.type,
            "yes" if row.input else "-",
            "yes" if row.output else "-",
            " ".join(row.operations) or "-",
            *[_cell(row, target) for target in CLOUD_TARGETS],
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
