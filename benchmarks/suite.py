"""Run every benchmark in this folder and print one Markdown table (`make bench`).

Each `benchmarks/<name>.py` (helpers start with `_`) runs as its own process with `--json
--quick` (the contract is in benchmarks/README.md), one after the other so that they do not
measure each other. A script that fails or prints no rows gets a row saying so; the others
still run, and the suite then exits 1. `--write-readme README.md` also replaces the table
between the README's `benchmarks` markers.

    .venv/bin/python benchmarks/suite.py [NAME ...] [--full] [--write-readme README.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from _report import Row

HERE = Path(__file__).resolve().parent
#: A script that runs longer than this is stuck; the suite as a whole should take ~15 minutes.
SCRIPT_TIMEOUT = 900.0
SECTION = re.compile(r"(<!-- benchmarks:[^\n]*-->\n)(.*?)(<!-- end benchmarks -->)", re.S)
#: A failure's message in the table: the last line of the script's stderr, shortened.
REASON_LENGTH = 160


def scripts(names: list[str]) -> list[Path]:
    found = sorted(
        path
        for path in HERE.glob("*.py")
        if not path.name.startswith("_") and path.name != Path(__file__).name
    )
    if not names:
        return found
    unknown = set(names) - {path.stem for path in found}
    if unknown:
        raise SystemExit(f"no such benchmark: {', '.join(sorted(unknown))}")
    return [path for path in found if path.stem in names]


def failed(name: str, reason: str) -> Row:
    reason = " ".join(reason.split())
    if len(reason) > REASON_LENGTH:
        reason = reason[: REASON_LENGTH - 1] + "\u2026"
    return Row(name, "failed", reason or "no output", met=False)


def run_script(script: Path, quick: bool) -> list[Row]:
    command = [sys.executable, str(script), "--json", *(["--quick"] if quick else [])]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return [failed(script.stem, f"still running after {SCRIPT_TIMEOUT:.0f} s")]
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        errors = done.stderr.strip().splitlines()
        return [failed(script.stem, f"exit {done.returncode}: {errors[-1] if errors else ''}")]
    try:
        rows = [Row(**row) for row in json.loads(lines[-1])["rows"]]
    except (ValueError, KeyError, TypeError) as exc:
        return [failed(script.stem, f"its last line is not the suite's JSON ({exc})")]
    return rows or [failed(script.stem, "no rows")]


def cell(row: Row) -> str:
    # Three decimals where a goal sits (1.054 is not ≤ 1.05), fewer for large ratios.
    digits = 3 if row.ratio is not None and row.ratio < 10 else 1
    ratio = f"{row.ratio:.{digits}f}\u00d7" if row.ratio is not None else ""
    return " ".join(part for part in (ratio, f"({row.value})" if ratio else row.value) if part)


def render(rows: list[Row]) -> str:
    met = {True: "yes", False: "**no**", None: ""}
    lines = [
        "| benchmark | figure | ratio (value) | goal | met |",
        "|---|---|---|---|---|",
        *(
            f"| {row.benchmark} | {row.figure} | {cell(row)} | {row.goal or ''} | {met[row.met]} |"
            for row in rows
        ),
    ]
    return "\n".join(lines)


def write_readme(readme: Path, table: str, command: str) -> None:
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    machine = f"Python {platform.python_version()}, {os.cpu_count()} cores"
    heading = f"Measured {today} with `{command}` ({machine}, a shared machine).\n\n"
    text = readme.read_text(encoding="utf-8")
    updated, count = SECTION.subn(lambda m: f"{m.group(1)}{heading}{table}\n{m.group(3)}", text)
    if count != 1:
        raise SystemExit(f"{readme}: benchmarks markers not found")
    readme.write_text(updated, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--full", action="store_true", help="the scripts' full run counts")
    parser.add_argument("--write-readme", type=Path, metavar="README", help="update its table")
    options = parser.parse_args()
    rows: list[Row] = []
    for script in scripts(options.names):
        started = time.monotonic()
        print(f"{script.stem} ...", file=sys.stderr, flush=True)
        found = run_script(script, quick=not options.full)
        print(f"{script.stem}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        rows.extend(found)
    table = render(rows)
    print(table)
    if options.write_readme:
        write_readme(
            options.write_readme, table, shlex.join(["benchmarks/suite.py", *sys.argv[1:]])
        )
    return 1 if any(row.figure == "failed" for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
