"""The shared part of every cloud build: OUT carries the binding modules the components use
with the private helpers they import (wherever those live), and their SDKs' requirements."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
from typing import TYPE_CHECKING

import pytest

from portabind.tooling import bundle
from portabind.tooling.project import load_project

if TYPE_CHECKING:
    from pathlib import Path

COMPONENTS = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: payments}
spec:
  type: bindings.kafka
  version: v1
  metadata:
    - {name: brokers, value: "localhost:9092"}
    - {name: topics, value: payments}
    - {name: consumerGroup, value: billing}
    - {name: authType, value: none}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: sensors}
spec:
  type: bindings.mqtt
  version: v1
  metadata:
    - {name: url, value: "tcp://localhost:1883"}
    - {name: topic, value: sensors}
"""

APP = """
from portabind import App

app = App()


@app.binding("payments")
def on_payment(event):
    return None
"""


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "components").mkdir(parents=True)
    (root / "components" / "all.yaml").write_text(textwrap.dedent(COMPONENTS))
    (root / "app.py").write_text(textwrap.dedent(APP))
    return root


@pytest.mark.parametrize("target", ["aws", "azure", "gcp"])
def test_a_binding_gets_the_helpers_it_imports_from_another_vendor(
    project_dir: Path, tmp_path: Path, target: str
) -> None:
    """bindings.kafka reads its awsiam fields from bindings/aws/_aws.py, and mqtt3 uses
    bindings/_tls.py: both must be in OUT, whatever the target."""
    out = tmp_path / "out"
    bundle.bundle(load_project(project_dir), out, target)
    assert (out / "portabind" / "bindings" / "aws" / "_aws.py").is_file()
    assert (out / "portabind" / "bindings" / "_tls.py").is_file()
    assert not (out / "portabind" / "bindings" / "aws" / "sqs.py").exists()
    probe = (
        f"import sys; sys.path.insert(0, {str(out)!r}); "
        f"import portabind.adapters.{target}.runtime, portabind.bindings.kafka, "
        "portabind.bindings.mqtt3; print(portabind.bindings.kafka.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == str(out / "portabind" / "bindings" / "kafka.py")


def test_requirements_name_each_familys_extra(project_dir: Path) -> None:
    lines = bundle.requirements(load_project(project_dir), ["functions-framework"])
    assert lines == [
        "pydantic>=2.6",
        "PyYAML>=6",
        "functions-framework>=3.5",
        "confluent-kafka[schemaregistry]>=2.6",
        "fastavro>=1.9",
        "aws-msk-iam-sasl-signer-python>=1.0.2",
        "PyJWT[crypto]>=2.8",
        "paho-mqtt>=2.0",  # bindings.mqtt3's extra is `mqtt`
    ]


AZURE_COMPONENTS = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: orders}
spec:
  type: bindings.azure.storagequeues
  version: v1
  metadata:
    - {name: accountName, value: acct}
    - {name: queueName, value: orders}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: hub}
spec:
  type: bindings.azure.signalr
  version: v1
  metadata:
    - {name: connectionString, value: "Endpoint=https://h.service.signalr.net;AccessKey=a2V5;"}
    - {name: hub, value: updates}
"""


def test_requirements_name_what_each_binding_declares(project_dir: Path) -> None:
    """An Azure type lists its own SDKs (not the whole `azure` extra), each distribution
    once, as the first extra declaring it spells it."""
    (project_dir / "components" / "all.yaml").write_text(textwrap.dedent(AZURE_COMPONENTS))
    (project_dir / "app.py").write_text(textwrap.dedent(APP).replace("payments", "orders"))
    lines = bundle.requirements(load_project(project_dir), ["azure-functions"])
    assert lines == [
        "pydantic>=2.6",
        "PyYAML>=6",
        "azure-storage-queue>=12.9",
        "azure-functions>=1.18",
        "PyJWT>=2.8",  # signalr's HS256 tokens: not kafka's PyJWT[crypto] as well
        "httpx>=0.27",
        "azure-identity>=1.15",
    ]


RUNTIME_ONLY_PROBE = """
import json, sys
# Only the build output and the installed SDKs: not this checkout, not the editable install
# (python -S skips the .pth files that map `portabind` onto the source tree).
sys.path[:] = [{out!r}, *sys.path, {site_packages!r}]
import {entry} as entry
{call}
import portabind
print(json.dumps({{"core": portabind.__file__, "modules": sorted(sys.modules)}}))
"""

SQS_RECORD = {
    "messageId": "m-1",
    "receiptHandle": "r-1",
    "body": '{"id": 7}',
    "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
    "messageAttributes": {},
    "eventSource": "aws:sqs",
    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders",
    "awsRegion": "us-east-1",
}
ORDERS = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: orders}
spec:
  type: bindings.%s
  version: v1
  metadata:
%s
"""
HANDLED_APP = """
from pathlib import Path

from portabind import App

app = App()


@app.binding("orders")
def on_order(event):
    Path(__file__).with_name("handled.txt").write_bytes(event.data)
"""
ENTRIES = {
    "aws": (
        "aws.sqs",
        "    - {name: queueName, value: orders}\n    - {name: region, value: us-east-1}",
        "portabind_lambda",
        f"print(json.dumps(entry.handle_orders({{'Records': [{SQS_RECORD!r}]}}, None)))",
    ),
    "azure": (
        "azure.storagequeues",
        "    - {name: accountName, value: devstoreaccount1}\n"
        "    - {name: queueName, value: orders}",
        "function_app",
        "",
    ),
    "gcp": (
        "gcp.pubsub",
        "    - {name: projectId, value: demo}\n    - {name: topic, value: orders}",
        "main",
        "",
    ),
}


@pytest.mark.parametrize("target", sorted(ENTRIES))
def test_a_build_ships_the_runtime_and_no_tooling(tmp_path: Path, target: str) -> None:
    """The entry imports with only the build output on sys.path, handles an event (AWS), and
    nothing of the tooling (CLI, build, matrix, scaffold, validation) is there or loaded."""
    from portabind.tooling.targets import target as find_target

    kind, metadata, entry, call = ENTRIES[target]
    root = tmp_path / "project"
    (root / "components").mkdir(parents=True)
    (root / "components" / "orders.yaml").write_text(ORDERS % (kind, metadata))
    (root / "app.py").write_text(HANDLED_APP)
    out = tmp_path / "out"
    find_target(target).build(load_project(root), out)
    assert not (out / "portabind" / "tooling").exists()
    assert not (out / "portabind" / "adapters" / "local").exists()
    site_packages = sysconfig.get_paths()["purelib"]
    probe = RUNTIME_ONLY_PROBE.format(
        out=str(out), site_packages=site_packages, entry=entry, call=call
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert result.returncode == 0, result.stderr
    *replies, report = result.stdout.splitlines()
    loaded = json.loads(report)
    assert loaded["core"] == str(out / "portabind" / "__init__.py")
    tooling = [m for m in loaded["modules"] if m.startswith(("portabind.tooling", "yaml"))]
    assert tooling == []
    if target == "aws":
        assert json.loads(replies[-1]) == {"batchItemFailures": []}
        assert (out / "handled.txt").read_bytes() == b'{"id": 7}'
