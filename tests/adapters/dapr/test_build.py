"""`portabind build --target dapr`: manifests valid against the Kubernetes, KEDA and Dapr schemas
(tests/adapters/dapr/data, with their source), `kubectl kustomize` rendering them, each KEDA
trigger's keys against the names its scaler declares, and what build says of scaling."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.adapters.dapr.shop import (
    COMPONENTS,
    SECRET_VALUE,
    component,
    secret,
    value,
    write_project,
)
from tests.helpers import portabind

DATA = Path(__file__).parent / "data"
KUBERNETES_VERSION = "1.33"
CRDS = {
    ("keda.sh", "ScaledObject"): "keda.sh_scaledobjects.yaml",
    ("keda.sh", "TriggerAuthentication"): "keda.sh_triggerauthentications.yaml",
    ("dapr.io", "Component"): "dapr.io_components.yaml",
    ("dapr.io", "Resiliency"): "dapr.io_resiliency.yaml",
    ("dapr.io", "Configuration"): "dapr.io_configurations.yaml",
}


def crd_schema(group: str, kind: str, version: str) -> dict[str, Any]:
    crd = yaml.safe_load((DATA / CRDS[(group, kind)]).read_text())
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
            return schema
    raise AssertionError(f"{kind} {group}/{version} is not in {CRDS[(group, kind)]}")


def render(out: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize OUT`, every Secret's env file filled as the user would."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (Debian: kubernetes-client)")
    for example in (out / "secrets").glob("*.env.example"):
        example.with_suffix("").write_text(example.read_text().replace("=\n", "=filled\n"))
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(out)], capture_output=True, text=True, check=True
    ).stdout
    return [d for d in yaml.safe_load_all(rendered) if d]


def by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


def validate(documents: list[dict[str, Any]]) -> None:
    """Each document against the schema of its kind: Kubernetes' own, or the CRD's."""
    for document in documents:
        group, _, version = document["apiVersion"].rpartition("/")
        if (group, document["kind"]) in CRDS:
            jsonschema.validate(document, crd_schema(group, document["kind"], version))
        else:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_every_manifest_is_valid_for_kubernetes_keda_and_dapr(built: Path) -> None:
    documents = render(built)
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == sorted(
        ["Secret", "Secret", "Deployment", "Configuration"]
        + ["Component"] * 3
        + ["Resiliency", "ScaledObject", "TriggerAuthentication"]
    )
    validate(documents)


def test_each_keda_trigger_uses_only_keys_its_scaler_declares(built: Path) -> None:
    scalers = json.loads((DATA / "keda_scalers.json").read_text())
    documents = render(built)
    authentications = {
        a["metadata"]["name"]: a["spec"] for a in by_kind(documents, "TriggerAuthentication")
    }
    (scaled,) = by_kind(documents, "ScaledObject")
    for trigger in scaled["spec"]["triggers"]:
        declared = scalers[trigger["type"]]
        assert set(trigger["metadata"]) <= set(declared["triggerMetadata"]), trigger["type"]
        if "authenticationRef" in trigger:
            refs = authentications[trigger["authenticationRef"]["name"]]["secretTargetRef"]
            assert {r["parameter"] for r in refs} <= set(declared["authParams"])


def test_the_app_scales_to_zero_on_its_queue_and_wakes_before_each_cron_tick(
    built: Path,
) -> None:
    documents = render(built)
    (scaled,) = by_kind(documents, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"] == {"name": "shop"}
    assert scaled["spec"]["minReplicaCount"] == 0
    triggers = {t["name"]: t for t in scaled["spec"]["triggers"]}
    assert triggers["orders"]["type"] == "aws-sqs-queue"
    assert triggers["orders"]["metadata"]["queueURL"] == "orders"
    assert triggers["orders"]["metadata"]["awsRegion"] == "eu-west-1"
    # The Dapr schedule "0 30 2 * * *" ticks at 02:30: the window opens 2 minutes before.
    assert triggers["tick"] == {
        "type": "cron",
        "name": "tick",
        "metadata": {
            "timezone": "Etc/UTC",
            "start": "28 2 * * *",
            "end": "33 2 * * *",
            "desiredReplicas": "1",
        },
    }
    (authentication,) = by_kind(documents, "TriggerAuthentication")
    assert authentication["spec"]["secretTargetRef"] == [
        {"parameter": "awsAccessKeyID", "name": "aws-creds", "key": "accessKey"},
        {"parameter": "awsSecretAccessKey", "name": "aws-creds", "key": "secretKey"},
    ]


def test_the_deployment_carries_daprs_annotations_and_serves_the_app_port(built: Path) -> None:
    (deployment,) = by_kind(render(built), "Deployment")
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        "dapr.io/enabled": "true",
        "dapr.io/app-id": "shop",
        "dapr.io/app-port": "3000",
        "dapr.io/app-protocol": "http",
        "dapr.io/config": "shop",
    }
    (container,) = template["spec"]["containers"]
    assert container["command"] == [
        "python", "-m", "portabind.adapters.dapr.runtime", "--port", "3000",
    ]  # fmt: skip
    # Outputs go through the sidecar: the image carries no cloud SDK for them, nor gRPC.
    requirements = (built / "requirements.txt").read_text().splitlines()
    unneeded = ("boto3", "azure", "croniter", "grpcio", "dapr")
    assert not [r for r in requirements if r.startswith(unneeded)]
    dockerfile = (built / "Dockerfile").read_text()
    assert dockerfile.startswith("# Generated") and "FROM python:3.12-slim" in dockerfile
    assert json.dumps(container["command"]) in dockerfile


def test_the_grpc_build_serves_daprs_grpc_app_protocol(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "grpc"
    result = portabind("build", project, "--target", "dapr", "--out", out, "--app-protocol", "grpc")
    assert result.returncode == 0, result.stderr
    documents = render(out)
    validate(documents)
    (deployment,) = by_kind(documents, "Deployment")
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"]["dapr.io/app-protocol"] == "grpc"
    (container,) = template["spec"]["containers"]
    assert container["command"][-2:] == ["--app-protocol", "grpc"]
    assert json.dumps(container["command"]) in (out / "Dockerfile").read_text()
    # No HTTP route to ask: ready once the app channel accepts connections.
    assert container["readinessProbe"]["tcpSocket"] == {"port": 3000}
    requirements = (out / "requirements.txt").read_text().splitlines()
    assert [r for r in requirements if r.startswith(("grpcio", "dapr"))] == [
        "grpcio>=1.60",
        "dapr>=1.19",
    ]


@pytest.mark.parametrize(
    ("target", "protocol", "message"),
    [
        ("dapr", "soap", "error: --app-protocol 'soap' is not one of http, grpc"),
        ("aws", "grpc", "error: --app-protocol is not an option of the aws build"),
    ],
)
def test_an_app_protocol_the_target_cannot_take_is_refused(
    project: Path, tmp_path: Path, target: str, protocol: str, message: str
) -> None:
    out = tmp_path / "out"
    result = portabind(
        "build", project, "--target", target, "--out", out, "--app-protocol", protocol
    )
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_secrets_are_kubernetes_references_and_no_value_is_written(built: Path) -> None:
    components = {
        c["metadata"]["name"]: c
        for c in yaml.safe_load_all((built / "components.yaml").read_text())
    }
    assert "local" not in components  # the local file store: Kubernetes' own store instead
    receipts = components["receipts"]
    assert receipts["auth"] == {"secretStore": "kubernetes"}
    assert {
        "name": "accountKey",
        "secretKeyRef": {"name": "storage-key", "key": "STORAGE_KEY"},
    } in (receipts["spec"]["metadata"])
    assert all(c["scopes"] == ["shop"] for c in components.values())
    kustomization = yaml.safe_load((built / "kustomization.yaml").read_text())
    assert kustomization["secretGenerator"] == [
        {"name": "aws-creds", "envs": ["secrets/aws-creds.env"]},
        {"name": "storage-key", "envs": ["secrets/storage-key.env"]},
    ]
    assert (built / "secrets" / "aws-creds.env.example").read_text() == "accessKey=\nsecretKey=\n"
    assert (built / ".gitignore").read_text() == "secrets/*.env\n"
    written = [p for p in built.rglob("*") if p.is_file()]
    assert not [p for p in written if SECRET_VALUE in p.read_text(errors="replace")]


def test_build_says_what_dapr_and_keda_cannot_do(tmp_path: Path) -> None:
    app = (
        "from portabind import App\n\napp = App()\n\n\n"
        "@app.binding('sensors')\ndef on_reading(event):\n    pass\n\n\n"
        "@app.binding('minutely')\ndef on_minute(event):\n    pass\n"
    )
    documents = [
        component(
            "sensors",
            "bindings.mqtt3",
            value("url", "tcp://broker:1883"),
            value("topic", "s"),
            value("consumerID", "sensors"),
        ),
        component("minutely", "bindings.cron", value("schedule", "@every 1m")),
    ]
    root = write_project(tmp_path / "sensors", documents, app)
    out = tmp_path / "out"
    result = portabind("build", root, "--target", "dapr", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "component 'sensors': KEDA has no scaler for it: the Deployment keeps one replica" in (
        result.stderr
    )
    assert "schedule '@every 1m' is not one tick at a set minute" in result.stderr
    deployment = yaml.safe_load((out / "deployment.yaml").read_text())
    assert deployment["spec"]["replicas"] == 1
    assert not (out / "keda.yaml").exists()
    assert "keda.yaml" not in yaml.safe_load((out / "kustomization.yaml").read_text())["resources"]


def test_a_kafka_input_with_sasl_scales_on_its_consumer_groups_lag(tmp_path: Path) -> None:
    app = (
        "from portabind import App\n\napp = App()\n\n\n"
        "@app.binding('events')\ndef on_event(event):\n    pass\n"
    )
    kafka = component(
        "events",
        "bindings.kafka",
        value("brokers", "kafka-0:9093,kafka-1:9093"),
        value("consumerGroup", "workers"),
        value("topics", "events"),
        value("authType", "password"),
        value("saslUsername", "worker"),
        secret("saslPassword", "kafka-creds", "password"),
        value("saslMechanism", "SHA-512"),
        auth={"secretStore": "local"},
    )
    root = write_project(tmp_path / "stream", [kafka, COMPONENTS[3]], app)
    out = tmp_path / "out"
    result = portabind("build", root, "--target", "dapr", "--out", out)
    assert result.returncode == 0, result.stderr
    # KEDA reads the user only from a TriggerAuthentication, never from a literal.
    assert "give saslUsername as a secretKeyRef so KEDA can read it as username" in result.stderr
    documents = render(out)
    (scaled,) = by_kind(documents, "ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"] == {
        "lagThreshold": "10",
        "bootstrapServers": "kafka-0:9093,kafka-1:9093",
        "consumerGroup": "workers",
        "sasl": "scram_sha512",
        "tls": "enable",
    }
    assert scaled["spec"]["minReplicaCount"] == 0
    (authentication,) = by_kind(documents, "TriggerAuthentication")
    assert authentication["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": "kafka-creds", "key": "password"}
    ]
