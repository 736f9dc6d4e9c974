"""secretKeyRef through secretstores.local.env / local.file, and the platform variable."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from portabind.errors import SecretError
from portabind.secrets import SecretResolver, secret_env_name
from portabind.tooling.project import load_components

if TYPE_CHECKING:
    from pathlib import Path

BINDING = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: store}}
spec:
  type: bindings.aws.s3
  version: v1
  metadata:
  - {{name: bucket, value: b}}
  - name: secretKey
    secretKeyRef: {{name: {secret}, key: {key}}}
auth: {{secretStore: {store}}}
"""
ENV_STORE = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: envstore}
spec:
  type: secretstores.local.env
  version: v1
  metadata:
  - {name: prefix, value: APP_}
"""
FILE_STORE = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: filestore}
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - {name: secretsFile, value: secrets.json}
"""


def project(tmp_path: Path, secret: str, key: str, store: str) -> SecretResolver:
    (tmp_path / "binding.yaml").write_text(BINDING.format(secret=secret, key=key, store=store))
    (tmp_path / "stores.yaml").write_text(ENV_STORE + "---\n" + FILE_STORE)
    (tmp_path / "secrets.json").write_text(json.dumps({"aws": {"secret": "from-file"}}))
    return SecretResolver(load_components(tmp_path), environ={"APP_AWS_SECRET": "from-env"})


def test_env_store_applies_its_prefix(tmp_path: Path) -> None:
    resolver = project(tmp_path, "AWS_SECRET", "AWS_SECRET", "envstore")
    component = resolver._components.get("store")
    assert resolver.values(component)["secretKey"] == "from-env"


def test_file_store_flattens_nested_keys(tmp_path: Path) -> None:
    resolver = project(tmp_path, "aws:secret", "aws:secret", "filestore")
    assert resolver.values(resolver._components.get("store"))["secretKey"] == "from-file"


def test_unresolvable_secret_names_file_component_field_and_fix(tmp_path: Path) -> None:
    resolver = project(tmp_path, "MISSING", "MISSING", "envstore")
    with pytest.raises(SecretError) as caught:
        resolver.values(resolver._components.get("store"))
    error = caught.value
    assert (error.component, error.field) == ("store", "secretKey")
    assert error.file == tmp_path / "binding.yaml"
    assert error.hint == "set the environment variable APP_MISSING"


def test_platform_variable_wins_for_references(tmp_path: Path) -> None:
    (tmp_path / "binding.yaml").write_text(BINDING.format(secret="X", key="X", store="envstore"))
    (tmp_path / "stores.yaml").write_text(ENV_STORE)
    components = load_components(tmp_path)
    variable = secret_env_name("store", "secretKey")
    assert variable == "PORTABIND_SECRET_STORE_SECRETKEY"
    resolver = SecretResolver(components, environ={variable: "from-platform"})
    assert resolver.values(components.get("store"))["secretKey"] == "from-platform"


def test_missing_secret_store_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "binding.yaml").write_text(BINDING.format(secret="X", key="X", store="nope"))
    components = load_components(tmp_path)
    with pytest.raises(SecretError, match="'nope', which is not a secret store"):
        SecretResolver(components, environ={}).values(components.get("store"))
