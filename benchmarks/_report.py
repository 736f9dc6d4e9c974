"""The suite's contract, shared by every benchmark script (see benchmarks/README.md).

A script makes its command line with `argument_parser` (the suite's flags), measures its
candidates side by side with `interleave`, turns medians into `Row`s (`at_most`, `at_least`
when there is a goal, `Row` itself when there is none) and ends with `emit`, which prints the
rows as one JSON line when the suite asked for `--json`.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


@dataclass(frozen=True)
class Row:
    """One line of the suite's table: a figure, its ratio (if it is one) and its goal."""

    benchmark: str
    figure: str
    value: str
    ratio: float | None = None
    goal: str | None = None
    met: bool | None = None


def at_most(benchmark: str, figure: str, ratio: float, limit: float, value: str = "") -> Row:
    """A ratio whose goal is a ceiling (portabind / baseline, lower is better)."""
    return Row(benchmark, figure, value, ratio, f"≤ {limit:g}\u00d7", ratio <= limit)


def at_least(benchmark: str, figure: str, ratio: float, limit: float, value: str = "") -> Row:
    """A ratio whose goal is a floor (portabind / baseline, higher is better)."""
    return Row(benchmark, figure, value, ratio, f"≥ {limit:g}\u00d7", ratio >= limit)


def argument_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line: described by the first paragraph of its docstring, with
    the suite's `--json` and `--quick`; the script adds its own run counts."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the figures as one JSON object on the last line (for benchmarks/suite.py)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer runs (still several, interleaved): what `make bench` uses",
    )
    return parser


def runs(given: int | None, options: argparse.Namespace, *, full: int, quick: int) -> int:
    """The run count: the one given on the command line, else the full or the quick default."""
    if given is not None:
        return given
    return quick if options.quick else full


def interleave(rounds: int, candidates: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Measure every candidate once per round, in turn, so drift on the machine hits all alike;
    every other round in reverse order, so that no candidate always runs right after the same
    other one (a block run after another pays for what that one left: its threads still
    finishing, caches holding its code)."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    order = list(candidates)
    for round_ in range(rounds):
        for name in order if round_ % 2 == 0 else reversed(order):
            samples[name].append(candidates[name]())
    return samples


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


def paired_ratio(mine: list[float], theirs: list[float]) -> float:
    """The median of each round's ratio, for two candidates `interleave` runs side by side:
    a slow spell of the machine that lasts a few runs slows both sides of the rounds it falls
    in, and cancels in their ratios where it would shift one side's median alone."""
    return statistics.median(m / t for m, t in zip(mine, theirs, strict=True))


def emit(rows: Iterable[Row], options: argparse.Namespace) -> None:
    """Under `--json`, print the rows as the last stdout line: {"rows": [...]}."""
    if options.json:
        print(json.dumps({"rows": [asdict(row) for row in rows]}, ensure_ascii=False), flush=True)
