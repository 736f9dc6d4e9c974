"""The JSON snapshot a build writes beside the component YAML: it loads back to the same
components the YAML gives, holds references (never secret values), refuses a format it does
not know and steps aside when the YAML was edited after the build."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from portabind import snapshot
from portabind.errors import UserError
from portabind.tooling.project import load_components

if TYPE_CHECKING:
    from pathlib import Path

BINDINGS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: receipts
  annotations:
    portabind.io/operations: create,get
spec:
  type: bindings.aws.s3
  version: v1
  metadata:
  - {name: bucket, value: orders-receipts}
  - {name: forcePathStyle, value: true}
  - {name: accessKey, secretKeyRef: {name: aws-creds, key: id}}
  - {name: secretKey, secretKeyRef: {name: aws-creds}}
  - {name: region, envRef: AWS_REGION}
auth:
  secretStore: local-secrets
scopes: [orders-app]
---
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: {name: retries}
spec:
  policies:
    retries:
      three: {policy: constant, duration: 1s, maxRetries: 3}
  targets:
    components:
      receipts: {outbound: {retry: three}}
"""

STORE = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: local-secrets}
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - {name: secretsFile, value: secrets.json}
"""


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    (tmp_path / "bindings.yaml").write_text(BINDINGS)
    (tmp_path / "store.yml").write_text(STORE)
    (tmp_path / "secrets.json").write_text('{"aws-creds": {"id": "AKIA-do-not-ship"}}')
    return tmp_path


def test_the_snapshot_loads_back_to_the_yaml_components(directory: Path) -> None:
    from_yaml = load_components(directory)
    snapshot.write(from_yaml, directory)
    assert snapshot.load(directory) == from_yaml


def test_references_stay_references(directory: Path) -> None:
    path = snapshot.write(load_components(directory), directory)
    text = path.read_text()
    assert "AKIA-do-not-ship" not in text
    receipts = next(c for c in json.loads(text)["components"] if c["name"] == "receipts")
    assert receipts["values"]["accessKey"] == {"secretKeyRef": {"name": "aws-creds", "key": "id"}}
    assert receipts["values"]["region"] == {"envRef": "AWS_REGION"}


def test_an_unknown_version_is_refused(directory: Path) -> None:
    path = snapshot.write(load_components(directory), directory)
    document = json.loads(path.read_text())
    document["version"] = 2
    path.write_text(json.dumps(document))
    with pytest.raises(UserError, match="snapshot version 2 is not one this portabind reads"):
        snapshot.load(directory)


def test_yaml_edited_after_the_build_wins(directory: Path) -> None:
    snapshot.write(load_components(directory), directory)
    (directory / "bindings.yaml").write_text(BINDINGS.replace("orders-receipts", "renamed"))
    assert snapshot.load(directory) is None
    (directory / "bindings.yaml").write_text(BINDINGS)
    (directory / "extra.yaml").write_text(STORE.replace("local-secrets", "more-secrets"))
    assert snapshot.load(directory) is None


def test_no_snapshot_means_none(directory: Path) -> None:
    assert snapshot.load(directory) is None
