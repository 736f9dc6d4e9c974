"""Service Bus and Event Hubs are output clients on AWS and GCP: a build whose handler sends
to them ships the bindings and the SDKs they need, with the connection strings left as
references."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import yaml

from portabind.tooling.project import load_project
from portabind.tooling.targets import target as find_target

if TYPE_CHECKING:
    from pathlib import Path

APP = """
from portabind import App

app = App()


@app.binding("orders")
def on_order(event):
    app.invoke_binding("jobs", "create", data=event.data, metadata={"Label": "order"})
    app.invoke_binding("telemetry", "create", data=event.data, metadata={"partitionKey": "k"})
"""
INPUTS = {
    "aws": ("bindings.aws.sqs", {"queueName": "orders", "region": "us-east-1"}),
    "gcp": ("bindings.gcp.pubsub", {"projectId": "demo", "topic": "orders"}),
}


def document(name: str, type_: str, values: dict[str, str], secret: str | None = None) -> object:
    items: list[dict[str, object]] = [{"name": k, "value": v} for k, v in values.items()]
    if secret:
        items.append({"name": "connectionString", "secretKeyRef": {"name": secret}})
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name},
        "spec": {"type": type_, "version": "v1", "metadata": items},
        "auth": {"secretStore": "env"},
    }


@pytest.mark.parametrize("target", sorted(INPUTS))
def test_the_azure_messaging_outputs_ship_as_clients(tmp_path: Path, target: str) -> None:
    root = tmp_path / "project"
    (root / "components").mkdir(parents=True)
    (root / "app.py").write_text(APP)
    documents = [
        {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": "env"},
            "spec": {"type": "secretstores.local.env", "version": "v1"},
        },
        document("orders", *INPUTS[target]),
        document("jobs", "bindings.azure.servicebusqueues", {"queueName": "jobs"}, "SB"),
        document("telemetry", "bindings.azure.eventhubs", {"eventHub": "telemetry"}, "EH"),
    ]
    (root / "components" / "all.yaml").write_text(yaml.safe_dump_all(documents))
    out = tmp_path / "out"
    find_target(target).build(load_project(root), out)
    requirements = (out / "requirements.txt").read_text().splitlines()
    for sdk in ("azure-servicebus", "azure-eventhub"):
        assert any(line.startswith(sdk) for line in requirements), requirements
    shipped = out / "portabind" / "bindings" / "azure"
    for module in ("servicebusqueues.py", "eventhubs.py", "_messaging.py"):
        assert (shipped / module).is_file()
    assert "Endpoint=sb://" not in "".join(p.read_text() for p in out.rglob("*.y*ml"))
