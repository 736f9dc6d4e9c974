"""`portabind deploy` and `portabind destroy`: a built artifact onto its cloud with the platform's
own CLI, and off again.

Deploy builds into `.portabind/build/<target>` (or `--out`), asks the target's deploy part for
its plan (`portabind.tooling.deployment`) and runs the steps in order: each command's output
streams through, each step says how long it took. A step that creates something first looks
whether it exists: what exists already is used and never recorded, so `destroy` never deletes
what deploy did not create, and a second deploy creates nothing twice. What a step does create
is written to `.portabind/deployments.json` at once, so a deploy stopped half-way still knows
what it left behind. `destroy` deletes what was recorded, newest first.

Errors: a target, option, environment variable or CLI the user can fix is a `UserError`
(exit 2) raised before anything runs; a platform command that fails is `StepFailed` (exit 1),
naming what exists by now.
"""

from __future__ import annotations

import codecs
import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from portabind.errors import PortabindError, UserError
from portabind.tooling import targets
from portabind.tooling.deployment import PLACEHOLDER, DeployOptions, Resource, Step, shell_line

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from pathlib import Path

    from portabind.tooling.project import Project

#: Where deploy keeps its files, in the project directory.
STATE_DIR = ".portabind"
RECORDS_FILE = "deployments.json"


class StepFailed(PortabindError):
    """A platform command failed: its output was shown, and nothing after it ran."""


class RecordedResource(BaseModel):
    kind: str
    name: str
    delete: list[str]


class Deployment(BaseModel):
    """What one deploy of a project to a target under a name created."""

    target: str
    name: str
    created: list[RecordedResource] = []


class Records(BaseModel):
    """`.portabind/deployments.json`."""

    deployments: list[Deployment] = []


def records_path(directory: Path) -> Path:
    return directory / STATE_DIR / RECORDS_FILE


def load_records(path: Path) -> Records:
    if not path.exists():
        return Records()
    try:
        return Records.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as error:
        raise UserError(
            f"{path} is not a deployments record: {error.errors()[0]['msg']}",
            hint="restore it from version control; deploy writes it, and destroy reads it to "
            "know what deploy created",
        ) from None


def save_records(path: Path, records: Records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    records.deployments = [d for d in records.deployments if d.created]
    partial = path.with_suffix(".json.partial")
    partial.write_text(records.model_dump_json(indent=2) + "\n", encoding="utf-8")
    partial.replace(path)  # whole or not at all, should deploy be stopped while writing


def _deployment(records: Records, target: str, name: str) -> Deployment:
    for deployment in records.deployments:
        if (deployment.target, deployment.name) == (target, name):
            return deployment
    deployment = Deployment(target=target, name=name)
    records.deployments.append(deployment)
    return deployment


def default_name(directory: Path) -> str:
    """The deployment's name when `--name` is not given: the project directory's, in the
    letters, digits and hyphens every platform accepts in a name."""
    name = re.sub(r"[^a-z0-9]+", "-", directory.resolve().name.lower()).strip("-")
    return name if name[:1].isalpha() else f"app-{name}".rstrip("-")


# --- running commands -----------------------------------------------------------------------


def _substitute(argument: str, values: Mapping[str, str]) -> str:
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], argument)


def _stream(command: Sequence[str]) -> tuple[int, str]:
    """Run `command`, its output passing through to ours as it comes; (exit code, output).
    Standard input stays the user's, for CLIs that ask (`sam deploy --guided`)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    output: list[str] = []
    while chunk := os.read(process.stdout.fileno(), 65536):
        text = decoder.decode(chunk)
        sys.stdout.write(text)
        sys.stdout.flush()
        output.append(text)
    process.stdout.close()
    return process.wait(), "".join(output)


def _quiet(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _say(text: str) -> None:
    print(text, flush=True)


def _program(command: Sequence[str]) -> str:
    """The command's program and subcommands, up to its first option (`sam deploy`)."""
    words = itertools.takewhile(lambda word: not word.startswith("-"), command)
    return " ".join(itertools.islice(words, 4))


def _names(resources: Iterable[RecordedResource | Resource]) -> str:
    return ", ".join(f"{r.kind} {r.name}" for r in resources) or "nothing"


def _what(step: Step) -> str:
    """The step's title with what it does to existing resources."""
    if step.probe is None:
        return step.title
    if step.update is None:
        return f"{step.title} (created unless it exists)"
    return f"{step.title} (created, or updated if it exists)"


def render_plan(steps: Sequence[Step]) -> str:
    """The plan as commented shell lines, in the order deploy runs them."""
    lines = []
    for number, step in enumerate(steps, 1):
        lines.append(f"# {number}/{len(steps)} {_what(step)}")
        if step.probe is not None:
            lines.append(f"{shell_line(step.probe.command)}  # does it exist?")
        captured = f"  # prints ${{{step.capture}}}" if step.capture else ""
        lines.append(shell_line(step.command) + captured)
        if step.update is not None and step.update != step.command:
            lines.append(f"{shell_line(step.update)}  # instead, when it exists")
    return "\n".join(lines)


def _require_tools(commands: Iterable[Sequence[str]], tools: Mapping[str, str]) -> None:
    for program in dict.fromkeys(command[0] for command in commands):
        if shutil.which(program) is None:
            raise UserError(
                f"`{program}` is not on PATH, and deploying to this target runs it",
                hint=tools.get(program, f"install {program}"),
            )


def _require_values(steps: Sequence[Step]) -> None:
    """Every `${NAME}` is printed by an earlier step or set in the environment."""
    captured: set[str] = set()
    for step in steps:
        commands = [step.command, *([step.probe.command] if step.probe else [])]
        for name in {n for c in commands for a in c for n in PLACEHOLDER.findall(a)}:
            if name not in captured and name not in os.environ:
                raise UserError(
                    f"environment variable {name} is not set, and the deploy passes it to "
                    f"the function (step: {step.title})",
                    hint=f"export {name}=... (a component reads it with envRef)",
                )
        if step.capture:
            captured.add(step.capture)


class _Run:
    """One deploy's steps against the records file."""

    def __init__(self, records: Path, target: str, name: str) -> None:
        self.path = records
        self.records = load_records(records)
        self.deployment = _deployment(self.records, target, name)
        self.values: dict[str, str] = dict(os.environ)

    def fail(self, number: int, step: Step, why: str) -> StepFailed:
        created = self.deployment.created
        lines = [why, f"deploy stopped at step {number} ({step.title})"]
        if created:
            lines += [
                f"created by deploy so far, recorded in {self.path}: {_names(created)}",
                "`portabind destroy` deletes it; deploying again goes on from here",
            ]
        else:
            lines.append("deploy created nothing so far")
        return StepFailed("\n  ".join(lines))

    def exists(self, number: int, step: Step) -> bool:
        assert step.probe is not None
        command = [_substitute(a, self.values) for a in step.probe.command]
        _say(f"$ {shell_line(step.probe.command)}")
        result = _quiet(command)
        output = result.stdout + result.stderr
        # "Missing" first: some CLIs say so and exit 0 (`sam list stack-outputs`).
        if re.search(step.probe.missing, output):
            return False
        if result.returncode == 0:
            return True
        sys.stdout.write(output)
        raise self.fail(
            number,
            step,
            f"`{_program(step.probe.command)}` failed (exit "
            f"{result.returncode}), so whether the resource exists is unknown; its output is above",
        )

    def record(self, resources: Iterable[Resource]) -> None:
        recorded = {(r.kind, r.name) for r in self.deployment.created}
        for resource in resources:
            if (resource.kind, resource.name) not in recorded:
                delete = [_substitute(a, self.values) for a in resource.delete]
                self.deployment.created.append(
                    RecordedResource(kind=resource.kind, name=resource.name, delete=delete)
                )
        save_records(self.path, self.records)

    def step(self, number: int, total: int, step: Step) -> None:
        _say(f"==> {number}/{total} {_what(step)}")
        started = time.monotonic()
        found = self.exists(number, step) if step.probe is not None else False
        if found:
            ours = {(r.kind, r.name) for r in self.deployment.created}
            mine = all((r.kind, r.name) in ours for r in step.creates)
            _say(
                "    exists already: "
                + ("created by an earlier deploy" if mine else "not deploy's, never deleted")
            )
            if step.update is None:
                return
        template = step.update if found and step.update is not None else step.command
        command = [_substitute(a, self.values) for a in template]
        _say(f"$ {shell_line(template)}")
        if step.capture:
            result = _quiet(command)
            code, output = result.returncode, result.stdout + result.stderr
            value = result.stdout.strip()
        else:
            code, output = _stream(command)
            value = ""
        if code != 0:
            if step.capture:
                sys.stdout.write(output)
            raise self.fail(
                number,
                step,
                f"`{_program(template)}` failed (exit {code}); its output is above",
            )
        if step.capture:
            if not value:
                raise self.fail(number, step, f"`{shell_line(step.command)}` printed nothing")
            self.values[step.capture] = value
        if step.creates and not found:
            self.record(step.creates)
        _say(f"    done in {time.monotonic() - started:.1f} s")


def deploy(
    project: Project,
    target: str,
    options: DeployOptions,
    *,
    out: Path | None = None,
    dry_run: bool = False,
    build_options: Mapping[str, str] | None = None,
) -> None:
    """Build `project` for `target` with the target's `build_options` (by name) and deploy it
    (or print how, with `dry_run`)."""
    deployer = targets.deployer(target)
    chosen = targets.target(target).chosen_options(build_options or {})
    refused = [option for option in options.chosen() if option not in deployer.options]
    if refused:
        taken = ", ".join(f"--{o}" for o in sorted(deployer.options)) or "none"
        raise UserError(
            f"--{refused[0]} does not apply to target {target}", hint=f"its options: {taken}"
        )
    state = project.directory / STATE_DIR
    out = out if out is not None else state / "build" / target
    if out.resolve().is_relative_to(state.resolve()):
        state.mkdir(exist_ok=True)
        # The build output is derived; deployments.json beside it is worth committing.
        (state / ".gitignore").write_text("build/\n")
    targets.target(target).build(project, out, **chosen)
    steps = deployer.plan(out, options)
    if dry_run:
        _say(
            f"dry run: deploying {project.directory} to {target} as {options.name!r} runs "
            f"these commands, in order (none was run):"
        )
        _say(render_plan(steps))
        return
    _require_tools(
        [c for s in steps for c in (s.command, *([s.probe.command] if s.probe else []))],
        deployer.tools,
    )
    _require_values(steps)
    run = _Run(records_path(project.directory), target, options.name)
    started = time.monotonic()
    for number, step in enumerate(steps, 1):
        run.step(number, len(steps), step)
    _say(
        f"deployed {options.name} to {target} in {time.monotonic() - started:.1f} s; "
        f"created by deploy: {_names(run.deployment.created)}"
    )


def _chosen(records: Records, path: Path, target: str | None, name: str | None) -> Deployment:
    matching = [
        d
        for d in records.deployments
        if (target is None or d.target == target) and (name is None or d.name == name)
    ]
    if len(matching) == 1:
        return matching[0]
    recorded = ", ".join(f"--target {d.target} --name {d.name}" for d in records.deployments)
    if not matching:
        raise UserError(
            f"{path} records no deployment"
            + (f" to {target}" if target else "")
            + (f" named {name!r}" if name else ""),
            hint=f"recorded: {recorded}" if recorded else "nothing was deployed from here",
        )
    raise UserError("several deployments are recorded", hint=f"choose one: {recorded}")


def destroy(
    directory: Path,
    target: str | None,
    name: str | None,
    *,
    confirm: Callable[[str], bool],
    dry_run: bool = False,
) -> bool:
    """Delete what deploy recorded for the deployment chosen, newest first. False when the
    user declined."""
    path = records_path(directory)
    records = load_records(path)
    deployment = _chosen(records, path, target, name)
    doomed = list(reversed(deployment.created))
    if dry_run:
        _say(
            f"dry run: destroying {deployment.name} on {deployment.target} runs these "
            "commands, in order (none was run):"
        )
        _say("\n".join(shell_line(r.delete) for r in doomed))
        return True
    _require_tools([r.delete for r in doomed], targets.deployer(deployment.target).tools)
    question = (
        f"delete what deploy created for {deployment.name} on {deployment.target}: "
        f"{_names(doomed)}?"
    )
    if not confirm(question):
        _say("nothing deleted")
        return False
    for resource in doomed:
        _say(f"==> delete {resource.kind} {resource.name}")
        _say(f"$ {shell_line(resource.delete)}")
        started = time.monotonic()
        code, _ = _stream(resource.delete)
        if code != 0:
            remaining = _names(reversed(deployment.created))
            raise StepFailed(
                f"`{_program(resource.delete)}` failed (exit {code}); its output is "
                f"above\n  still recorded in {path}: {remaining}"
            )
        deployment.created.remove(resource)
        save_records(path, records)
        _say(f"    done in {time.monotonic() - started:.1f} s")
    _say(f"destroyed {deployment.name} on {deployment.target}")
    return True
