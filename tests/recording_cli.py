"""Recording stand-ins for the platforms' CLIs (`sam`, `az`, `gcloud`), for the deploy tests.

No cloud account is reachable from the tests, so `portabind deploy` runs against small programs
put first on PATH under the real CLI's name. Each logs its arguments, checks what the real
CLI would refuse (a required flag missing, a file it reads absent: exit 2, as a parser error)
and answers the way deploy reads the real one: a `show`/`describe` probe exits 0 for what
exists and prints the platform's "not found" text otherwise; `create` makes it exist for the
next probe and `delete` removes it, so a second deploy and a destroy see what the first did.
A command no rule matches exits 2, so a command deploy should not run fails the test.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

from tests.helpers import portabind, portabind_process

if TYPE_CHECKING:
    from pathlib import Path
    from subprocess import CompletedProcess

# Isolated and without the site module: the program needs only the standard library, and
# deploys call it several times each.
PROGRAM = """#!{python} -IS
import json, os, sys

state_dir = os.environ["RECORDING_CLI_DIR"]
tool, argv = os.path.basename(sys.argv[0]), sys.argv[1:]
with open(os.path.join(state_dir, "calls.jsonl"), "a") as log:
    log.write(json.dumps([tool, *argv]) + "\\n")
with open(os.path.join(state_dir, tool + ".json")) as file:
    rules = json.load(file)
state_path = os.path.join(state_dir, "state.json")
existing = set(json.load(open(state_path))) if os.path.exists(state_path) else set()


def value(flag):
    if isinstance(flag, int):
        return argv[flag] if flag < len(argv) else None
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1 :]
    return None


for rule in rules:
    if argv[: len(rule["prefix"])] != rule["prefix"]:
        continue
    for flag in rule["requires"]:
        if not any(arg == flag or arg.startswith(flag + "=") for arg in argv):
            sys.exit(f"{{tool}}: error: the following arguments are required: {{flag}}")
    for flag in rule["files"]:
        if not os.path.exists(value(flag).lstrip("@")):
            sys.exit(f"{{tool}}: error: {{flag}}: no such file: {{value(flag)}}")
    key = f"{{rule['resource']}} {{value(rule['name'])}}"
    if rule["fails"]:
        print(f"{{tool}}: the service refused: {{' '.join(argv[:3])}}", file=sys.stderr)
        sys.exit(1)
    if rule["action"] == "exists":
        if key not in existing:
            print(rule["missing"], file=sys.stderr)
            sys.exit(rule["missing_exit"])
        print(rule["stdout"] or json.dumps({{"name": value(rule["name"])}}))
    elif rule["action"] == "create":
        existing.add(key)
        print(f"created {{key}}")
    elif rule["action"] == "delete":
        existing.discard(key)
        print(f"deleted {{key}}")
    else:
        print(rule["stdout"])
    json.dump(sorted(existing), open(state_path, "w"))
    sys.exit(0)
sys.exit(f"{{tool}}: error: unexpected arguments: {{argv}}")
"""


@dataclass(frozen=True)
class Rule:
    """How the stand-in answers commands starting with `prefix`."""

    prefix: list[str]
    #: `exists` (a probe, printing `stdout` for what exists), `create`, `delete`, or `print`
    #: (`stdout`, as a query's answer).
    action: Literal["exists", "create", "delete", "print"]
    #: The resource the command acts on: its kind, and the flag (or argument index) naming it.
    resource: str = ""
    name: str | int = "--name"
    requires: list[str] = field(default_factory=list)
    #: Flags naming a file that must exist (`@file` too).
    files: list[str] = field(default_factory=list)
    #: What a probe prints, and its exit code, for what does not exist.
    missing: str = ""
    missing_exit: int = 1
    stdout: str = ""
    #: The command fails as the cloud refusing it would.
    fails: bool = False


class RecordingCli:
    """Stand-ins installed in `bin_dir`, their calls and the resources they hold in
    `state_dir`."""

    def __init__(self, bin_dir: Path, state_dir: Path) -> None:
        self.bin_dir, self.state_dir = bin_dir, state_dir
        bin_dir.mkdir(parents=True, exist_ok=True)
        state_dir.mkdir(parents=True, exist_ok=True)

    def install(self, tool: str, rules: list[Rule]) -> None:
        (self.state_dir / f"{tool}.json").write_text(json.dumps([asdict(r) for r in rules]))
        program = self.bin_dir / tool
        program.write_text(PROGRAM.format(python=sys.executable))
        program.chmod(0o755)

    def environ(self) -> dict[str, str]:
        """The environment a deploy runs in: the stand-ins alone on PATH."""
        return {**os.environ, "PATH": str(self.bin_dir), "RECORDING_CLI_DIR": str(self.state_dir)}

    def portabind(
        self, *args: str | Path, cwd: Path, answer: str = "", **variables: str
    ) -> CompletedProcess[str]:
        """`portabind ARGS`, in this process, with the stand-ins alone on PATH and the
        environment `variables` added; `answer` is its standard input."""
        return portabind(*args, cwd=cwd, environ={**self.environ(), **variables}, stdin=answer)

    def portabind_process(
        self, *args: str | Path, cwd: Path, answer: str = "", **variables: str
    ) -> CompletedProcess[str]:
        """As `portabind`, run as a process of its own: for its exit status and stderr."""
        return portabind_process(
            *args, cwd=cwd, environ={**self.environ(), **variables}, stdin=answer
        )

    def calls(self) -> list[list[str]]:
        """Each call's program and arguments, in order; the log starts afresh."""
        log = self.state_dir / "calls.jsonl"
        if not log.exists():
            return []
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        log.unlink()
        return calls

    def existing(self) -> set[str]:
        """The resources that exist now, as "<resource> <name>"."""
        path = self.state_dir / "state.json"
        return set(json.loads(path.read_text())) if path.exists() else set()

    def make_exist(self, *keys: str) -> None:
        """Resources the user had before any deploy."""
        (self.state_dir / "state.json").write_text(json.dumps(sorted(self.existing() | set(keys))))
