"""What `import portabind` adds to a Python process.

Each run is a fresh interpreter, timed as a whole process from the outside: `python -c
"import portabind"` against `python -c "pass"`. Runs interleave the two so drift on the
machine hits both alike; figures are medians. One more interpreter lists which heavy
modules (asyncio, pydantic, yaml, grpc, cloud SDKs) the import leaves loaded that a bare
interpreter has not: each is start-up time a function pays before its first event.

    .venv/bin/python benchmarks/import_cost.py [--runs N] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time

from _report import Row, add_arguments, emit, interleave, medians, runs

#: The most milliseconds `import portabind` may add to a process.
GOAL_MS = 25.0
#: Modules that `import portabind` must leave to whoever needs them.
HEAVY = ("asyncio", "pydantic", "yaml", "grpc", "boto3", "botocore", "azure", "google")
STATEMENTS = {"import portabind": "import portabind", "bare interpreter": "pass"}


def run_once(statement: str, env: dict[str, str]) -> float:
    """Seconds of one whole interpreter running `statement`."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True, cwd="/", env=env)
    return time.perf_counter() - started


def cached_bytecode(directory: str) -> dict[str, str]:
    """The environment with bytecode written to and read from `directory`, as an installed
    package has it (PYTHONDONTWRITEBYTECODE would time compiling every module instead)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": directory}


def loaded(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd="/"
    )
    return set(done.stdout.split())


def heavy_modules_added() -> list[str]:
    """The HEAVY packages `import portabind` loads that the bare interpreter has not (`site`
    loads namespace packages such as `google` from .pth files)."""
    added = loaded("import portabind") - loaded("pass")
    return sorted({name.partition(".")[0] for name in added} & set(HEAVY))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, help="runs of each (default 31, quick 21)")
    add_arguments(parser)
    options = parser.parse_args()
    count = runs(options.runs, options, full=31, quick=21)
    with tempfile.TemporaryDirectory() as bytecode:
        env = cached_bytecode(bytecode)
        for statement in STATEMENTS.values():  # warm the page cache and write bytecode
            run_once(statement, env)
        seconds = medians(
            interleave(
                count,
                {name: functools.partial(run_once, code, env) for name, code in STATEMENTS.items()},
            )
        )
    milliseconds = {name: median * 1000 for name, median in seconds.items()}
    added = milliseconds["import portabind"] - milliseconds["bare interpreter"]
    ratio = milliseconds["import portabind"] / milliseconds["bare interpreter"]
    heavy = heavy_modules_added()
    print(f"{count} runs each, interleaved; medians (python {sys.version.split()[0]})")
    for name, median in milliseconds.items():
        print(f"{name:<18}{median:>8.1f} ms")
    print(f"added by import portabind: {added:.1f} ms (goal ≤ {GOAL_MS:g} ms); ratio {ratio:.2f}")
    print(f"heavy modules loaded: {', '.join(heavy) or 'none'}")
    row = Row(
        "import cost",
        "`import portabind` / bare interpreter (whole process)",
        f"+{added:.1f} ms; heavy modules loaded: {', '.join(heavy) or 'none'}",
        ratio,
        f"≤ +{GOAL_MS:g} ms, no heavy module",
        added <= GOAL_MS and not heavy,
    )
    emit([row], options)


if __name__ == "__main__":
    main()
