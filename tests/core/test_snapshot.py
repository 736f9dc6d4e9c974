"""The JSON snapshot a build writes beside the component YAML: it loads back to the same
components the YAML gives, holds references (never secret values), refuses a format it does
not know and steps aside when the YAML was edited after the build."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from portabind import registry, snapshot
from portabind.bundled import BundledFunction
from portabind.components import parse_metadata, placeholder_values
from portabind.errors import ComponentError, UserError
from portabind.runtime import Runtime
from portabind.secretstores import store_for
from portabind.tooling import bundle
from portabind.tooling.project import load_components, load_project

ROOT = Path(__file__).resolve().parents[2]

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


COMPONENT_DIRECTORIES = sorted(
    {path.parent for path in ROOT.glob("*/*/components/*/*.yaml")}
    | {path.parent for path in ROOT.glob("samples/*/components/*/*.yaml")}
)


@pytest.mark.parametrize(
    "components", COMPONENT_DIRECTORIES, ids=lambda path: str(path.relative_to(ROOT))
)
def test_a_function_reads_the_metadata_validation_would_give(components: Path) -> None:
    """Every template's and sample's components, read back from what the build validated,
    equal their validation (references as the same placeholders)."""
    loaded = load_components(components)
    for component in loaded.components.values():
        validated = snapshot.validated(component)
        if validated is None:
            continue
        built = dataclasses.replace(component, validated=validated)
        model = (
            registry.binding_for(component).metadata
            if component.type.startswith("bindings.")
            else store_for(component).metadata
        )
        values = placeholder_values(component)
        assert built.validated_metadata(model, values) == parse_metadata(component, model, values)


OUTPUT = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: sensors}
spec:
  type: bindings.mqtt3
  version: v1
  metadata:
  - {name: url, envRef: SENSORS_URL}
  - {name: topic, value: sensors}
  - {name: consumerID, value: sensors-app}
  - {name: retain, value: "true"}
  - {name: backOffMaxRetries, value: "2"}
"""

APP = """\
from portabind import App

app = App()
"""


def build(tmp_path: Path, component: str, app_id: str = "project") -> Path:
    """The AWS build of an app with one component, in a project directory named `app_id`."""
    project = tmp_path / app_id
    (project / "components").mkdir(parents=True)
    (project / "components" / "sensors.yaml").write_text(component)
    (project / "app.py").write_text(APP)
    out = tmp_path / "out"
    bundle.bundle(load_project(project), out, "aws")
    return out


@pytest.fixture
def built(tmp_path: Path) -> Path:
    return build(tmp_path, OUTPUT)


def test_a_built_function_reads_its_metadata_without_pydantic(built: Path) -> None:
    probe = f"""
import sys
sys.path.insert(0, {str(built)!r})
from portabind.bundled import BundledFunction
function = BundledFunction.load({str(built)!r}, environ={{"SENSORS_URL": "tcp://broker:1883"}})
read = function.runtime.metadata("sensors")
url = read.url.get_secret_value()
print(url, read.retain, read.back_off_max_retries, "pydantic" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=built
    )
    assert done.stdout.split() == ["tcp://broker:1883", "True", "2", "False"]


def test_a_resolved_value_is_checked_when_the_function_reads_it(built: Path) -> None:
    """The build could not check what a reference resolves to: the function does, with the
    field's own checks, and names the component without showing the value."""
    function = BundledFunction.load(built, environ={"SENSORS_URL": "ftp://user:pw@broker"})
    with pytest.raises(ComponentError) as raised:
        function.runtime.metadata("sensors")
    assert raised.value.component == "sensors"
    assert "url scheme 'ftp' is not supported" in str(raised.value)
    assert "user:pw" not in str(raised.value)


TAGGED = OUTPUT.replace("value: sensors-app", "value: 'sensors-{namespace}-{uuid}'")


def test_dapr_tags_are_replaced_when_the_function_loads(tmp_path: Path) -> None:
    """`{uuid}`, `{namespace}`, `{appID}`, `{podName}` in a value, as daprd replaces them:
    the build cannot know them, so the function replaces them and checks the field."""
    out = build(tmp_path, TAGGED, app_id="orders")
    environ = {"SENSORS_URL": "tcp://broker:1883", "NAMESPACE": "prod"}

    first, second = (
        BundledFunction.load(out, environ=environ).runtime.metadata("sensors").consumer_id
        for _ in range(2)
    )

    assert first.startswith("sensors-prod.orders-")  # NAMESPACE, then the app id
    assert len(first.removeprefix("sensors-prod.orders-")) == 36  # a UUID
    assert first != second  # a new one for each start, as each sidecar's
    default = BundledFunction.load(out, environ={"SENSORS_URL": "tcp://broker:1883"})
    assert default.runtime.metadata("sensors").consumer_id.startswith("sensors-default.orders-")


def test_a_pod_name_tag_without_pod_name_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "sensors.yaml").write_text(
        OUTPUT.replace("value: sensors-app", "value: '{appID}-{podName}'")
    )
    components = load_components(tmp_path, app_id="orders")
    url = {"SENSORS_URL": "tcp://broker:1883"}

    named = Runtime(components, environ={**url, "POD_NAME": "orders-7d9f"}).metadata("sensors")
    with pytest.raises(ComponentError) as raised:
        Runtime(components, environ=url).metadata("sensors")

    assert named.consumer_id == "orders-orders-7d9f"
    assert (raised.value.component, raised.value.field) == ("sensors", "consumerID")
    assert "POD_NAME is not set" in str(raised.value)
