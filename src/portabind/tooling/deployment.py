"""What a target declares to be deployable: the plan of platform CLI commands that puts a built
artifact on the cloud, and what each command creates.

A target's deploy part, `adapters/<name>/deploy.py`, defines `DEPLOYER = Deployer(...)`; it is
found like the build part (`portabind.tooling.targets.deployer`). Its `plan` turns the built
artifact and the command line's options into `Step`s, plain data that `portabind deploy` runs
in order, prints for `--dry-run` and records in `.portabind/deployments.json`
(`portabind.tooling.deploy`).

A command may name a value an earlier step printed, or an environment variable, as `${NAME}`
(`Step.capture`). It stays `${NAME}` wherever portabind shows or records the command, so an
environment value (a component's `envRef`) is never printed; it is substituted only in the
arguments handed to the platform's CLI.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

#: `${NAME}` in a command's argument.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class DeployOptions:
    """The command line's choices; a target says which of the optional ones it takes."""

    #: The deployment's name: what the target names after it (a stack, a Function App), and
    #: the key of its record in deployments.json.
    name: str
    region: str | None = None
    #: The cloud project the functions go to (GCP).
    project: str | None = None
    #: Where the platform's CLI uploads the artifact, instead of a bucket it manages itself.
    bucket: str | None = None
    #: Let the platform's CLI ask for its settings interactively.
    guided: bool = False

    def chosen(self) -> list[str]:
        """The optional settings given, by their flag names (`--project`)."""
        given = {
            "region": self.region is not None,
            "project": self.project is not None,
            "bucket": self.bucket is not None,
            "guided": self.guided,
        }
        return [option for option, set_ in given.items() if set_]


@dataclass(frozen=True)
class Resource:
    """Something a step creates: recorded when it creates it, deleted by `portabind destroy`."""

    #: What it is, as the platform calls it ("CloudFormation stack", "Function App").
    kind: str
    name: str
    #: The command that deletes it.
    delete: tuple[str, ...]


@dataclass(frozen=True)
class Probe:
    """A command telling whether what a step creates exists already: output matching
    `missing` when it does not, else exit 0 when it does. Any other failure stops the deploy,
    since taking a failed look for "missing" could record, and later delete, what was not
    ours."""

    command: tuple[str, ...]
    missing: str


@dataclass(frozen=True)
class Step:
    """One command of a deploy."""

    #: What the step does, in the progress lines ("create the resource group").
    title: str
    command: tuple[str, ...]
    #: What the command creates; recorded only when `probe` found none of it before.
    creates: tuple[Resource, ...] = ()
    probe: Probe | None = None
    #: What runs instead when the probe finds the resource: the same command for a CLI that
    #: creates or updates (`sam deploy`); None skips the step (`az group create`).
    update: tuple[str, ...] | None = None
    #: The command's output (stripped) becomes `${capture}` for the steps after it.
    capture: str | None = None


@dataclass(frozen=True)
class Deployer:
    """What `adapters/<name>/deploy.py` exports as `DEPLOYER`."""

    #: The platform CLIs the plan runs, each with how to install it.
    tools: Mapping[str, str]
    #: The steps that deploy the artifact built in the given directory.
    plan: Callable[[Path, DeployOptions], Sequence[Step]]
    #: The optional settings of `DeployOptions` the target takes.
    options: frozenset[str] = field(default_factory=frozenset)


def shell_word(argument: str) -> str:
    """`argument` quoted for a POSIX shell, its `${NAME}` placeholders left to expand."""
    if not PLACEHOLDER.search(argument):
        return shlex.quote(argument)
    parts = PLACEHOLDER.split(argument)
    # split() alternates literal text and placeholder names: quote the text, keep the names.
    text = "".join(
        re.sub(r'(["\\$`])', r"\\\1", part) if index % 2 == 0 else f"${{{part}}}"
        for index, part in enumerate(parts)
    )
    return f'"{text}"'


def shell_line(command: Sequence[str]) -> str:
    """A command as a shell line a user could paste (placeholders expand there too)."""
    return " ".join(shell_word(argument) for argument in command)
