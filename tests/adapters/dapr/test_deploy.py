"""`portabind deploy --target dapr` and `destroy` against a recording `kubectl`
(tests/recording_cli.py): `kubectl apply -k OUT`, `kubectl delete -k OUT`, and the Secrets'
env files required before anything runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
import yaml

from tests.recording_cli import RecordingCli, Rule

if TYPE_CHECKING:
    from pathlib import Path

OUT = ".portabind/build/dapr"
NOT_FOUND = 'Error from server (NotFound): deployments.apps "shop" not found'


@pytest.fixture
def kubectl(tmp_path: Path) -> RecordingCli:
    cli = RecordingCli(tmp_path / "bin", tmp_path / "cli")
    cli.install(
        "kubectl",
        [
            Rule(["get", "-k"], "exists", resource="kustomization", name=2, missing=NOT_FOUND),
            Rule(["apply", "-k"], "create", resource="kustomization", name=2),
            Rule(["delete", "-k"], "delete", resource="kustomization", name=2),
        ],
    )
    return cli


def fill_secrets(project: Path) -> None:
    """What the user does after the first build: fill each Secret's env file."""
    for example in (project / OUT / "secrets").glob("*.env.example"):
        example.with_suffix("").write_text(example.read_text().replace("=\n", "=filled\n"))


def test_deploy_refuses_before_running_anything_while_a_secret_is_unfilled(
    project: Path, kubectl: RecordingCli
) -> None:
    result = kubectl.portabind("deploy", "--target", "dapr", cwd=project)
    assert result.returncode == 2
    assert "secrets/aws-creds.env" in result.stderr and "secrets/storage-key.env" in result.stderr
    assert kubectl.calls() == []


def test_deploy_applies_the_kustomization_and_destroy_deletes_it(
    project: Path, kubectl: RecordingCli
) -> None:
    kubectl.portabind("deploy", "--target", "dapr", cwd=project)  # the first build
    kubectl.calls()
    fill_secrets(project)
    result = kubectl.portabind("deploy", "--target", "dapr", cwd=project)
    assert result.returncode == 0, result.stderr
    assert kubectl.calls() == [["kubectl", "get", "-k", OUT], ["kubectl", "apply", "-k", OUT]]
    records = json.loads((project / ".portabind" / "deployments.json").read_text())
    assert records["deployments"][0]["created"] == [
        {"kind": "Kubernetes resources of", "name": OUT, "delete": ["kubectl", "delete", "-k", OUT]}
    ]
    destroyed = kubectl.portabind("destroy", "--yes", cwd=project)
    assert destroyed.returncode == 0, destroyed.stderr
    assert kubectl.calls() == [["kubectl", "delete", "-k", OUT]]
    assert kubectl.existing() == set()


def test_deploy_builds_with_the_app_protocol_it_is_given(
    project: Path, kubectl: RecordingCli
) -> None:
    kubectl.portabind("deploy", "--target", "dapr", cwd=project)  # the first build
    fill_secrets(project)
    result = kubectl.portabind(
        "deploy", "--target", "dapr", "--app-protocol", "grpc", "--dry-run", cwd=project
    )
    assert result.returncode == 0, result.stderr
    deployment = yaml.safe_load((project / OUT / "deployment.yaml").read_text())
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["dapr.io/app-protocol"] == "grpc"
    refused = kubectl.portabind("deploy", "--target", "aws", "--app-protocol", "grpc", cwd=project)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: --app-protocol is not an option of the aws build")
