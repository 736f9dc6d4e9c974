"""`portabind deploy --target gcp`: the functions in OUT onto Google Cloud with gcloud.

The plan follows the build's deploy manifest (OUT/deploy.yaml) and runs the same commands as
its deploy.sh (`portabind.adapters.gcp.build` writes both): per function `gcloud functions
deploy --gen2`, which creates or updates it (Secret Manager references as `--set-secrets`, an
envRef's variable passed from the deploying environment); for cron, the scheduler job's
account may invoke the function, then its Cloud Scheduler job is created, or updated when it
exists. `--project` and `--region` override the manifest's; a function without a project goes
to the one gcloud is configured for, read once so that every command and record names it.

`destroy` deletes the scheduler jobs and functions deploy created; the topics, buckets and
secrets the components name are the user's and stay.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from portabind.adapters.gcp.build import (
    URL_FORMAT,
    deploy_arguments,
    function_arguments,
    invoker_arguments,
    job_arguments,
)
from portabind.errors import UserError
from portabind.tooling.deployment import Deployer, Probe, Resource, Step

if TYPE_CHECKING:
    from pathlib import Path

    from portabind.tooling.deployment import DeployOptions

#: What `gcloud ... describe` prints for a function or job that does not exist.
_NOT_FOUND = r"NOT_FOUND|not found|does not exist"
#: The project gcloud is configured for, when a function names none.
CONFIGURED_PROJECT = "GCLOUD_PROJECT"


class _Secret(BaseModel):
    key: str
    secret: str
    version: str


class _Function(BaseModel):
    """A function of deploy.yaml, as far as deploying it needs (camelCase: its keys)."""

    model_config = ConfigDict(extra="allow")

    name: str
    region: str
    project: str | None = None
    runtime: str
    entryPoint: str
    trigger: dict[str, Any]
    environmentVariables: dict[str, str] = {}
    secretEnvironmentVariables: list[_Secret] = []


class _Manifest(BaseModel):
    functions: list[_Function]


def _manifest(out: Path) -> _Manifest:
    path = out / "deploy.yaml"
    try:
        return _Manifest.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise UserError(
            f"{path} is not the build's deploy manifest ({error})",
            hint="build again: `portabind deploy` rebuilds it unless --out points elsewhere",
        ) from None


def _variable(name: str, what: str) -> str:
    """A placeholder name for a value read from gcloud about function `name`."""
    return re.sub(r"\W", "_", f"{name}_{what}").upper()


def _schedule(function: dict[str, Any]) -> list[Step]:
    """Let the job's account invoke the function, then create or update the job."""
    name, trigger = function["name"], function["trigger"]
    url = _variable(name, "url")
    steps = [
        Step(
            f"the URL of function {name}",
            ("gcloud", *function_arguments(function, "describe"), URL_FORMAT),
            capture=url,
        )
    ]
    account = trigger["serviceAccount"]
    if not account:
        number = _variable(name, "project_number")
        steps.append(
            Step(
                f"the number of project {function['project']} (its default compute account "
                "runs the job)",
                (
                    "gcloud",
                    "projects",
                    "describe",
                    function["project"],
                    "--format=value(projectNumber)",
                ),
                capture=number,
            )
        )
        account = f"${{{number}}}-compute@developer.gserviceaccount.com"
    job = trigger["job"]
    create = ("gcloud", *job_arguments(function, "create", f"${{{url}}}", account))
    steps += [
        Step(
            f"let {account} invoke function {name}",
            ("gcloud", *invoker_arguments(function, account)),
        ),
        Step(
            f"Cloud Scheduler job {job}",
            create,
            creates=(
                Resource(
                    "Cloud Scheduler job",
                    job,
                    ("gcloud", *job_arguments(function, "delete", "", ""), "--quiet"),
                ),
            ),
            probe=Probe(("gcloud", *job_arguments(function, "describe", "", "")), _NOT_FOUND),
            update=("gcloud", *job_arguments(function, "update", f"${{{url}}}", account)),
        ),
    ]
    return steps


def plan(out: Path, options: DeployOptions) -> list[Step]:
    manifest = _manifest(out)
    steps: list[Step] = []
    if any(not (options.project or f.project) for f in manifest.functions):
        steps.append(
            Step(
                "the project gcloud is configured for",
                ("gcloud", "config", "get-value", "project"),
                capture=CONFIGURED_PROJECT,
            )
        )
    for manifested in manifest.functions:
        function = manifested.model_dump()
        function["project"] = options.project or manifested.project or f"${{{CONFIGURED_PROJECT}}}"
        function["region"] = options.region or manifested.region
        secrets = {s.key: f"{s.secret}:{s.version}" for s in manifested.secretEnvironmentVariables}
        env = list(manifested.environmentVariables)
        deploy = ("gcloud", *deploy_arguments(function, secrets, env, str(out)))
        steps.append(
            Step(
                f"Cloud Function {manifested.name}",
                deploy,
                creates=(
                    Resource(
                        "Cloud Function",
                        manifested.name,
                        ("gcloud", *function_arguments(function, "delete"), "--quiet"),
                    ),
                ),
                probe=Probe(("gcloud", *function_arguments(function, "describe")), _NOT_FOUND),
                update=deploy,
            )
        )
        if function["trigger"].get("type") == "scheduler":
            steps += _schedule(function)
    return steps


DEPLOYER = Deployer(
    tools={
        "gcloud": "install the Google Cloud CLI (Debian/Ubuntu: the google-cloud-cli package "
        "from Google's apt repository), then `gcloud auth login` and `gcloud config set "
        "project PROJECT`"
    },
    plan=plan,
    options=frozenset({"region", "project"}),
)
