"""`portabind deploy --target aws` and `destroy` against a recording `sam` (tests/recording_cli.py):
the commands and their order, dry-run, a second deploy, destroy, a missing or failing CLI."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
import yaml

from tests.recording_cli import RecordingCli, Rule

if TYPE_CHECKING:
    from pathlib import Path

APP = """from portabind import App

app = App()


@app.binding("tick")
def tick(event):
    pass
"""
TICK = {
    "apiVersion": "dapr.io/v1alpha1",
    "kind": "Component",
    "metadata": {"name": "tick"},
    "spec": {
        "type": "bindings.cron",
        "version": "v1",
        "metadata": [{"name": "schedule", "value": "0 2 * * *"}],
    },
}
NO_STACK = "Error: The input stack {} does not exist on Cloudformation in the region eu-west-1"


def sam_rules(*, failing: str = "") -> list[Rule]:
    return [
        Rule(
            ["build"],
            "print",
            requires=["--template-file", "--build-dir"],
            files=["--template-file"],
            stdout="Build Succeeded",
        ),
        Rule(
            ["list", "stack-outputs"],
            "exists",
            resource="stack",
            name="--stack-name",
            # As SAM does: the error on standard output, exit code 0.
            missing=NO_STACK.format("orders"),
            missing_exit=0,
        ),
        Rule(
            ["deploy"],
            "create",
            resource="stack",
            name="--stack-name",
            requires=["--template-file", "--stack-name", "--capabilities"],
            fails=failing == "deploy",
        ),
        Rule(
            ["delete"],
            "delete",
            resource="stack",
            name="--stack-name",
            requires=["--stack-name", "--no-prompts"],
        ),
    ]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "orders"
    (root / "components").mkdir(parents=True)
    (root / "app.py").write_text(APP)
    (root / "components" / "tick.yaml").write_text(yaml.safe_dump(TICK))
    return root


@pytest.fixture
def sam(tmp_path: Path) -> RecordingCli:
    cli = RecordingCli(tmp_path / "bin", tmp_path / "cli")
    cli.install("sam", sam_rules())
    return cli


def expected_deploy() -> list[list[str]]:
    """Run from the project directory, with the default build directory in it."""
    out = ".portabind/build/aws"
    return [
        [
            "sam",
            "build",
            "--template-file",
            f"{out}/template.yaml",
            "--build-dir",
            f"{out}/.aws-sam/build",
        ],
        ["sam", "list", "stack-outputs", "--stack-name", "orders", "--region", "eu-west-1"],
        [
            "sam",
            "deploy",
            "--template-file",
            f"{out}/.aws-sam/build/template.yaml",
            "--stack-name",
            "orders",
            "--region",
            "eu-west-1",
            "--capabilities",
            "CAPABILITY_IAM",
            "--resolve-s3",
            "--no-fail-on-empty-changeset",
            "--no-confirm-changeset",
        ],
    ]


def records(project: Path) -> list[dict[str, object]]:
    path = project / ".portabind" / "deployments.json"
    return json.loads(path.read_text())["deployments"] if path.exists() else []


STACK_RECORD = {
    "target": "aws",
    "name": "orders",
    "created": [
        {
            "kind": "CloudFormation stack",
            "name": "orders",
            "delete": [
                "sam",
                "delete",
                "--stack-name",
                "orders",
                "--region",
                "eu-west-1",
                "--no-prompts",
            ],
        }
    ],
}


def test_deploy_builds_then_deploys_the_stack_and_records_it(
    project: Path, sam: RecordingCli
) -> None:
    result = sam.portabind("deploy", "--target", "aws", "--region", "eu-west-1", cwd=project)
    assert result.returncode == 0, result.stderr
    assert sam.calls() == expected_deploy()
    assert (project / ".portabind" / "build" / "aws" / "template.yaml").is_file()
    assert records(project) == [STACK_RECORD]
    assert "Build Succeeded" in result.stdout  # the tool's own output streams through
    assert "==> 2/2 deploy the CloudFormation stack orders" in result.stdout
    assert "done in" in result.stdout


def test_dry_run_prints_the_commands_and_needs_no_sam(project: Path, tmp_path: Path) -> None:
    nothing = RecordingCli(tmp_path / "empty-bin", tmp_path / "cli")  # no sam on PATH
    result = nothing.portabind(
        "deploy", "--target", "aws", "--region", "eu-west-1", "--dry-run", cwd=project
    )
    assert result.returncode == 0, result.stderr
    commands = [line.split("  #")[0] for line in result.stdout.splitlines()[1:]]
    commands = [c for c in commands if not c.startswith("#")]
    assert commands == [" ".join(c) for c in expected_deploy()]
    assert nothing.calls() == []
    assert records(project) == []


def test_a_second_deploy_updates_the_stack_and_creates_nothing_new(
    project: Path, sam: RecordingCli
) -> None:
    for _ in range(2):
        result = sam.portabind("deploy", "--target", "aws", "--region", "eu-west-1", cwd=project)
        assert result.returncode == 0, result.stderr
    assert sam.calls() == expected_deploy() * 2
    assert "exists already: created by an earlier deploy" in result.stdout
    assert records(project) == [STACK_RECORD]


def test_a_stack_that_existed_before_is_updated_but_never_recorded_nor_deleted(
    project: Path, sam: RecordingCli
) -> None:
    sam.make_exist("stack orders")
    result = sam.portabind("deploy", "--target", "aws", "--region", "eu-west-1", cwd=project)
    assert result.returncode == 0, result.stderr
    assert sam.calls()[-1][:2] == ["sam", "deploy"]
    assert records(project) == []
    destroyed = sam.portabind("destroy", "--yes", cwd=project)
    assert destroyed.returncode == 2
    assert "records no deployment" in destroyed.stderr
    assert sam.existing() == {"stack orders"}


def test_destroy_asks_then_deletes_the_stack(project: Path, sam: RecordingCli) -> None:
    sam.portabind("deploy", "--target", "aws", "--region", "eu-west-1", cwd=project)
    sam.calls()
    declined = sam.portabind("destroy", cwd=project, answer="n\n")
    assert declined.returncode == 1
    assert "CloudFormation stack orders" in declined.stdout
    assert "nothing deleted" in declined.stdout
    assert sam.calls() == []
    accepted = sam.portabind("destroy", cwd=project, answer="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert sam.calls() == [STACK_RECORD["created"][0]["delete"]]  # type: ignore[index]
    assert sam.existing() == set()
    assert records(project) == []


def test_a_missing_sam_is_one_message_saying_how_to_install_it(
    project: Path, tmp_path: Path
) -> None:
    nothing = RecordingCli(tmp_path / "empty-bin", tmp_path / "cli")
    result = nothing.portabind("deploy", "--target", "aws", cwd=project)
    assert result.returncode == 2
    assert "`sam` is not on PATH" in result.stderr
    assert "pip install aws-sam-cli" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failing_sam_deploy_stops_with_its_output(project: Path, sam: RecordingCli) -> None:
    sam.install("sam", sam_rules(failing="deploy"))
    # As a process: its exit status, and no traceback on its stderr.
    result = sam.portabind_process(
        "deploy", "--target", "aws", "--region", "eu-west-1", cwd=project
    )
    assert result.returncode == 1
    assert "sam: the service refused: deploy" in result.stdout
    assert "`sam deploy` failed (exit 1)" in result.stderr
    assert "deploy created nothing so far" in result.stderr
    assert "Traceback" not in result.stderr
    assert records(project) == []


def test_options_another_target_takes_are_refused(project: Path, sam: RecordingCli) -> None:
    result = sam.portabind("deploy", "--target", "aws", "--project", "p", cwd=project)
    assert result.returncode == 2
    assert "--project does not apply to target aws" in result.stderr
    assert sam.calls() == []


def test_a_probe_failing_for_another_reason_stops_before_deploying(
    project: Path, sam: RecordingCli
) -> None:
    # Taken for "missing", a failed look would record, and destroy would delete, a stack
    # that may be someone else's.
    rules = sam_rules()
    rules[1] = Rule(["list", "stack-outputs"], "exists", resource="stack", fails=True)
    sam.install("sam", rules)
    result = sam.portabind("deploy", "--target", "aws", "--region", "eu-west-1", cwd=project)
    assert result.returncode == 1
    assert "`sam list stack-outputs` failed (exit 1)" in result.stderr
    assert "whether the resource exists is unknown" in result.stderr
    assert [c[:2] for c in sam.calls()] == [["sam", "build"], ["sam", "list"]]
    assert records(project) == []


def test_a_damaged_records_file_is_one_message(project: Path, sam: RecordingCli) -> None:
    (project / ".portabind").mkdir()
    (project / ".portabind" / "deployments.json").write_text('{"deployments": [{"name": 1}]}')
    result = sam.portabind("destroy", "--yes", cwd=project)
    assert result.returncode == 2
    assert "is not a deployments record" in result.stderr
    assert "Traceback" not in result.stderr
