"""The shared part of every cloud build: OUT carries the binding modules the components use
with the private helpers they import (wherever those live), and their SDKs' requirements."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from portabind.adapters import bundle
from portabind.project import load_project

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
        "confluent-kafka>=2.6",
        "paho-mqtt>=2.0",  # bindings.mqtt3's extra is `mqtt`
    ]
