"""What `import portabind` adds to a Python process.

Each run is a fresh interpreter, timed as a whole process from the outside: `python -c
"import portabind"` against `python -c "pass"`. Runs interleave the two so drift on the
machine hits both alike; figures are medians. The goal is on wall time; the processes' CPU
time (user + system) is printed beside it, as it varies less on a busy machine. One more
interpreter lists which heavy modules (asyncio, pydantic, yaml, grpc, cloud SDKs) the import
leaves loaded that a bare interpreter has not: each is start-up time a function pays before
its first event.

    .venv/bin/python benchmarks/import_cost.py [--runs N] [--quick] [--json]
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time

from _report import Row, argument_parser, emit, interleave, medians, runs

#: The most milliseconds `import portabind` may add to a process.
GOAL_MS = 25.0
#: Modules that `import portabind` must leave to whoever needs them.
HEAVY = ("asyncio", "pydantic", "yaml", "grpc", "boto3", "botocore", "azure", "google")
STATEMENTS = {"import portabind": "import portabind", "bare interpreter": "pass"}


class Interpreter:
    """Runs `statement` in a fresh interpreter: each call returns its wall time and keeps its
    CPU time in `cpu` (seconds)."""

    def __init__(self, statement: str, env: dict[str, str]) -> None:
        self.statement = statement
        self.env = env
        self.cpu: list[float] = []

    def __call__(self) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", self.statement], check=True, cwd="/", env=self.env)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        return wall


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
    parser = argument_parser(__doc__)
    parser.add_argument("--runs", type=int, help="runs of each (default 31, quick 21)")
    options = parser.parse_args()
    count = runs(options.runs, options, full=31, quick=21)
    with tempfile.TemporaryDirectory() as bytecode:
        env = cached_bytecode(bytecode)
        interpreters = {name: Interpreter(code, env) for name, code in STATEMENTS.items()}
        for interpreter in interpreters.values():  # warm the page cache and write bytecode
            interpreter()
            interpreter.cpu.clear()
        seconds = medians(interleave(count, dict(interpreters)))
    cpu = medians({name: interpreter.cpu for name, interpreter in interpreters.items()})
    wall = {name: median * 1000 for name, median in seconds.items()}
    added = wall["import portabind"] - wall["bare interpreter"]
    added_cpu = (cpu["import portabind"] - cpu["bare interpreter"]) * 1000
    ratio = wall["import portabind"] / wall["bare interpreter"]
    heavy = heavy_modules_added()
    print(f"{count} runs each, interleaved; medians (python {sys.version.split()[0]})")
    print(f"{'':<18}{'wall':>8}{'CPU':>9}")
    for name, median in wall.items():
        print(f"{name:<18}{median:>5.1f} ms{cpu[name] * 1000:>6.1f} ms")
    print(f"added by import portabind: {added:.1f} ms wall (goal ≤ {GOAL_MS:g} ms), ", end="")
    print(f"{added_cpu:.1f} ms CPU; ratio {ratio:.2f}")
    print(f"heavy modules loaded: {', '.join(heavy) or 'none'}")
    row = Row(
        "import cost",
        "`import portabind` / bare interpreter (whole process)",
        f"+{added:.1f} ms wall, +{added_cpu:.1f} ms CPU; heavy modules loaded: "
        f"{', '.join(heavy) or 'none'}",
        ratio,
        f"≤ +{GOAL_MS:g} ms, no heavy module",
        added <= GOAL_MS and not heavy,
    )
    emit([row], options)


if __name__ == "__main__":
    main()
