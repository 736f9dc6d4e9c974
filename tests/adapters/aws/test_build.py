"""`portabind build --target aws`: the SAM template transforms offline and lints clean,
secrets stay references, and inputs without a Lambda trigger are refused."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from portabind.adapters.aws import build
from portabind.errors import BuildError, ComponentError
from portabind.secrets import secret_env_name
from portabind.tooling.project import load_project

if TYPE_CHECKING:
    from collections.abc import Callable

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "orders"


@pytest.fixture(scope="module")
def orders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The orders sample's AWS build, made once for the tests that only read it: its
    directory and the files the build says it wrote."""
    out = tmp_path_factory.mktemp("orders")
    return out, build.build(load_project(SAMPLE, SAMPLE / "components" / "aws"), out)


def test_orders_template_transforms_and_lints(
    orders: tuple[Path, list[Path]],
    transformed: Callable[[Path], dict[str, Any]],
    lint_errors: Callable[[Path], list[str]],
) -> None:
    out, written = orders
    assert out / "template.yaml" in written
    assert lint_errors(out) == []
    resources = transformed(out)["Resources"]
    function = resources["OrdersFunction"]
    assert function["Type"] == "AWS::Lambda::Function"
    assert function["Properties"]["Handler"] == "portabind_lambda.handle_orders"
    mapping = resources["OrdersFunctionSQS"]
    assert mapping["Type"] == "AWS::Lambda::EventSourceMapping"
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["BatchSize"] == 10  # portabind.io/batchSize
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["OrdersQueue", "Arn"]}
    queue = resources["OrdersQueue"]["Properties"]
    assert queue["QueueName"] == "orders"
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["OrdersDeadLetterQueue", "Arn"]
    }
    assert resources["OrdersDeadLetterQueue"]["Properties"]["QueueName"] == "orders-dlq"
    role = resources["OrdersFunctionRole"]["Properties"]
    policy_names = {p["PolicyName"] for p in role["Policies"]}
    assert policy_names == {"OrdersFunctionRolePolicy0", "OrdersFunctionRolePolicy1"}
    granted = yaml.safe_dump(role["Policies"])
    assert "s3:PutObject" in granted and "orders-receipts" in granted
    assert "sqs:SendMessage" in granted
    assert "s3:DeleteBucket" not in granted


def test_artifact_is_self_contained(orders: tuple[Path, list[Path]]) -> None:
    out, _ = orders
    assert (out / "app.py").read_text() == (SAMPLE / "app.py").read_text()
    assert sorted(p.name for p in (out / "components").iterdir()) == [
        "orders.yaml",
        "portabind-components.json",  # the snapshot the function loads at cold start
        "receipts.yaml",
    ]
    assert (out / "requirements.txt").read_text().split() == [
        "pydantic>=2.6",
        "PyYAML>=6",
        "boto3>=1.34",
    ]
    bundled = {str(p.relative_to(out)) for p in (out / "portabind").rglob("*.py")}
    assert {
        "portabind/runtime.py",
        "portabind/adapters/aws/runtime.py",
        "portabind/bindings/aws/_aws.py",
        "portabind/bindings/aws/sqs.py",
        "portabind/bindings/aws/s3.py",
    } <= bundled
    assert not any(
        p.startswith(("portabind/bindings/azure", "portabind/bindings/gcp")) for p in bundled
    )
    entry = (out / "portabind_lambda.py").read_text()
    assert '_handle_orders = function.sqs("orders")' in entry
    assert "def handle_orders(event, context):" in entry


def test_the_entry_starts_without_yaml_or_the_document_schema(
    orders: tuple[Path, list[Path]],
) -> None:
    """A cold start reads the build's components snapshot: PyYAML and the pydantic document
    models (tens of milliseconds) are not imported."""
    out, _ = orders
    probe = (
        f"import sys; sys.path.insert(0, {str(out)!r}); import portabind_lambda; "
        "print(portabind_lambda.function.runtime.components.components['orders'].source); "
        "print(' '.join(sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=out,
        env={**env, "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        check=True,
    )
    source, modules = result.stdout.splitlines()
    assert source == str(out / "components" / "orders.yaml")
    loaded = set(modules.split())
    assert "portabind.adapters.aws.runtime" in loaded
    assert sorted(m for m in loaded if m == "yaml" or m.startswith("yaml.")) == []
    assert "portabind.tooling.schema" not in loaded


def write_project(root: Path, components: str, app: str) -> Path:
    (root / "components").mkdir(parents=True)
    (root / "components" / "components.yaml").write_text(textwrap.dedent(components))
    (root / "app.py").write_text(textwrap.dedent(app))
    return root


ORDERS_APP = """
    from portabind import App

    app = App()

    @app.binding("orders")
    def on_order(event):
        pass
"""


def test_secrets_become_dynamic_references_never_values(
    tmp_path: Path,
    transformed: Callable[[Path], dict[str, Any]],
    lint_errors: Callable[[Path], list[str]],
) -> None:
    plain = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    project = write_project(
        tmp_path / "project",
        """
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata: {name: orders}
        spec:
          type: bindings.aws.sqs
          version: v1
          metadata:
            - {name: queueName, value: orders}
            - {name: region, value: eu-west-1}
        ---
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata: {name: archive}
        spec:
          type: bindings.aws.s3
          version: v1
          metadata:
            - {name: bucket, value: archive-bucket}
            - {name: region, value: eu-west-1}
            - {name: accessKey, value: AKIAEXAMPLE}
            - name: secretKey
              secretKeyRef: {name: aws-creds, key: secret}
        auth: {secretStore: files}
        ---
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata: {name: files}
        spec:
          type: secretstores.local.file
          version: v1
          metadata:
            - {name: secretsFile, value: secrets.json}
        """,
        ORDERS_APP,
    )
    (project / "components" / "secrets.json").write_text(
        f'{{"aws-creds": {{"secret": "{plain}"}}}}'
    )
    out = tmp_path / "out"
    build.build(load_project(project), out)
    for path in out.rglob("*"):
        if path.is_file():
            assert plain.encode() not in path.read_bytes(), path
    function = yaml.safe_load((out / "template.yaml").read_text())["Resources"]["OrdersFunction"]
    assert function["Properties"]["Environment"]["Variables"] == {
        secret_env_name(
            "archive", "secretKey"
        ): "{{resolve:secretsmanager:aws-creds:SecretString:secret}}"
    }
    assert lint_errors(out) == []
    transformed(out)


def sqs_component(annotations: str) -> str:
    return f"""
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata:
          name: orders
          annotations: {{{annotations}}}
        spec:
          type: bindings.aws.sqs
          version: v1
          metadata:
            - {{name: queueName, value: orders.fifo}}
            - {{name: region, value: eu-west-1}}
            - {{name: direction, value: input}}
        """


def test_existing_queue_and_batching_annotations(
    tmp_path: Path,
    transformed: Callable[[Path], dict[str, Any]],
    lint_errors: Callable[[Path], list[str]],
) -> None:
    project = write_project(
        tmp_path / "p",
        sqs_component('"portabind.io/existing": "true", "portabind.io/batchWindow": "1m"'),
        ORDERS_APP,
    )
    out = tmp_path / "out"
    build.build(load_project(project), out)
    document = yaml.safe_load((out / "template.yaml").read_text())
    assert list(document["Resources"]) == ["OrdersFunction"]  # no queue created
    properties = document["Resources"]["OrdersFunction"]["Properties"]
    event = properties["Events"]["SQS"]["Properties"]
    assert event["Queue"] == {
        "Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:orders.fifo"
    }
    assert event["MaximumBatchingWindowInSeconds"] == 60
    assert "Policies" not in properties  # input-only: nothing to send to
    assert lint_errors(out) == []
    resources = transformed(out)["Resources"]
    assert resources["OrdersFunctionSQS"]["Properties"]["MaximumBatchingWindowInSeconds"] == 60


def test_fifo_queue_gets_a_fifo_dead_letter_queue(
    tmp_path: Path, lint_errors: Callable[[Path], list[str]]
) -> None:
    project = write_project(
        tmp_path / "p", sqs_component('"portabind.io/maxReceiveCount": "3"'), ORDERS_APP
    )
    build.build(load_project(project), tmp_path / "out")
    resources = yaml.safe_load((tmp_path / "out" / "template.yaml").read_text())["Resources"]
    assert resources["OrdersQueue"]["Properties"]["FifoQueue"] is True
    assert resources["OrdersQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 3
    assert resources["OrdersDeadLetterQueue"]["Properties"]["QueueName"] == "orders-dlq.fifo"
    assert lint_errors(tmp_path / "out") == []


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ('"portabind.io/batchSize": "50"', "batchSize must be 1..10"),
        ('"portabind.io/batchSize": "many"', "must be a whole number"),
    ],
)
def test_bad_batching_annotations_are_refused(
    tmp_path: Path, annotations: str, message: str
) -> None:
    project = write_project(tmp_path / "p", sqs_component(annotations), ORDERS_APP)
    with pytest.raises(ComponentError, match=message):
        build.build(load_project(project), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_large_standard_batch_needs_a_window(tmp_path: Path) -> None:
    component = sqs_component('"portabind.io/batchSize": "100"').replace("orders.fifo", "orders")
    project = write_project(tmp_path / "p", component, ORDERS_APP)
    with pytest.raises(BuildError, match="batchWindow"):
        build.build(load_project(project), tmp_path / "out")


def test_input_without_a_lambda_trigger_names_the_alternative(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "p",
        """
        apiVersion: dapr.io/v1alpha1
        kind: Component
        metadata: {name: orders}
        spec:
          type: bindings.azure.storagequeues
          version: v1
          metadata:
            - {name: accountName, value: devstoreaccount1}
            - {name: queueName, value: orders}
        """,
        ORDERS_APP,
    )
    with pytest.raises(BuildError, match="no AWS Lambda trigger") as raised:
        build.build(load_project(project), tmp_path / "out")
    assert "portabind run" in str(raised.value)


def test_triggers_feed_the_support_matrix() -> None:
    from portabind.tooling.matrix import support_matrix

    rows = {row.type: row for row in support_matrix()}
    assert rows["bindings.aws.sqs"].triggers["aws"] == "SQS"
    assert rows["bindings.aws.s3"].triggers["aws"] == "S3 or EventBridgeRule (extension)"
    assert rows["bindings.gcp.pubsub"].triggers["aws"] == ""
    assert "bindings.http trigger" in rows["bindings.gcp.pubsub"].fallbacks["aws"]
