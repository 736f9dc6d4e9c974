"""`portabind.io/` annotations as validate and build see them: every key is checked against
what the binding and every target declare, a typo or an ill-typed value stops the command with
the component and the annotation named, and a build warns about what only other targets read."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest
import yaml

from portabind.errors import ComponentError
from portabind.tooling.project import check_project, load_project
from portabind.tooling.targets import target
from tests.helpers import portabind

if TYPE_CHECKING:
    from pathlib import Path

APP = """
from portabind import App

app = App()


@app.binding("orders")
def on_order(event):
    pass
"""


def write(root: Path, kind: str, metadata: dict[str, str], annotations: dict[str, str]) -> Path:
    document = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": "orders",
            "annotations": {f"portabind.io/{k}": v for k, v in annotations.items()},
        },
        "spec": {
            "type": kind,
            "version": "v1",
            "metadata": [{"name": k, "value": v} for k, v in metadata.items()],
        },
    }
    (root / "components").mkdir(parents=True)
    (root / "components" / "orders.yaml").write_text(yaml.safe_dump(document))
    (root / "app.py").write_text(textwrap.dedent(APP))
    return root


SQS = {"queueName": "orders", "region": "us-east-1"}
HTTP = {"url": "http://127.0.0.1:9/"}


def test_a_misspelt_annotation_fails_validate_with_the_nearest_name(tmp_path: Path) -> None:
    root = write(tmp_path / "p", "bindings.aws.sqs", SQS, {"maxRetrys": "0"})
    result = portabind("validate", root)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "component 'orders'" in result.stderr
    assert "portabind.io/maxRetrys" in result.stderr
    assert "did you mean 'maxRetries'?" in result.stderr


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({"batchSize": "ten"}, "must be a whole number from 1 to 10000, got 'ten'"),
        ({"maxReceiveCount": "0"}, "must be a whole number from 1 to 1000"),
        ({"existing": "maybe"}, 'must be "true" or "false"'),
    ],
)
def test_an_ill_typed_annotation_names_the_component_and_the_annotation(
    tmp_path: Path, annotations: dict[str, str], message: str
) -> None:
    root = write(tmp_path / "p", "bindings.aws.sqs", SQS, annotations)
    with pytest.raises(ComponentError) as raised:
        check_project(load_project(root), resolve_secrets=False)
    (key,) = annotations
    assert raised.value.component == "orders"
    assert raised.value.field == f"metadata.annotations.portabind.io/{key}"
    assert message in raised.value.message


def test_the_sam_template_honours_the_annotation_it_validated(tmp_path: Path) -> None:
    root = write(tmp_path / "p", "bindings.aws.sqs", SQS, {"maxRetries": "0"})
    project = load_project(root)
    assert check_project(project, resolve_secrets=False, build_target="aws") == []
    target("aws").build(project, tmp_path / "out")
    template = yaml.safe_load((tmp_path / "out" / "template.yaml").read_text())
    assert (
        template["Resources"]["OrdersQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 1
    )


def test_a_build_warns_about_what_only_another_target_reads(tmp_path: Path) -> None:
    # maxRetries is the AWS build's; the GCP build of an HTTP trigger does not read it.
    annotations = {"trigger": "true", "maxRetries": "1", "region": "europe-west1"}
    root = write(tmp_path / "p", "bindings.http", HTTP, annotations)
    project = load_project(root)
    [warning] = check_project(project, resolve_secrets=False, build_target="gcp")
    assert warning.field == "metadata.annotations.portabind.io/maxRetries"
    assert "the gcp build ignores this annotation: only aws reads it" in warning.message
    [warning] = check_project(project, resolve_secrets=False, build_target="aws")
    assert warning.field == "metadata.annotations.portabind.io/region"
    assert check_project(project, resolve_secrets=False) == []  # validate: known somewhere
    result = portabind("build", root, "--target", "gcp", "--out", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    assert "warning: " in result.stderr and "portabind.io/maxRetries" in result.stderr
