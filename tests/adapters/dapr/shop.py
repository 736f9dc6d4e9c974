"""The project the Dapr target's tests build: an SQS input whose handler writes to Azure Blob
Storage, a cron input, secrets from a local file store, and a Resiliency document; and the
builders of other projects' components."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from pathlib import Path

APP = """from portabind import App

app = App()


@app.binding("orders")
def on_order(event):
    order = event.json()
    if order.get("fail"):
        raise RuntimeError("the handler failed")
    app.invoke_binding(
        "receipts", "create", data={"order": order["id"]},
        metadata={"key": f"receipts/{order['id']}.json"},
    )


@app.binding("tick")
def on_tick(event):
    pass
"""
#: The value in the local secrets file: it must never reach the build's output.
SECRET_VALUE = "s3cr3t-value-never-in-output"


def component(
    name: str,
    type_: str,
    *metadata: dict[str, object],
    annotations: dict[str, str] | None = None,
    **extra: object,
) -> dict[str, object]:
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, **({"annotations": annotations} if annotations else {})},
        "spec": {"type": type_, "version": "v1", "metadata": list(metadata)},
        **extra,
    }


def value(name: str, literal: str) -> dict[str, object]:
    return {"name": name, "value": literal}


def secret(name: str, secret_name: str, key: str | None = None) -> dict[str, object]:
    ref = {"name": secret_name, **({"key": key} if key else {})}
    return {"name": name, "secretKeyRef": ref}


def constant_retries(
    name: str, target: str, direction: str, *, duration: str, retries: int
) -> dict[str, object]:
    """A Resiliency document retrying `target`'s `direction` calls `retries` times."""
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Resiliency",
        "metadata": {"name": name},
        "spec": {
            "policies": {
                "retries": {
                    "constant": {"policy": "constant", "duration": duration, "maxRetries": retries}
                }
            },
            "targets": {"components": {target: {direction: {"retry": "constant"}}}},
        },
    }


COMPONENTS = [
    component(
        "orders",
        "bindings.aws.sqs",
        value("queueName", "orders"),
        value("region", "eu-west-1"),
        secret("accessKey", "aws-creds", "accessKey"),
        secret("secretKey", "aws-creds", "secretKey"),
        auth={"secretStore": "local"},
    ),
    component(
        "receipts",
        "bindings.azure.blobstorage",
        value("accountName", "receiptsstore"),
        secret("accountKey", "STORAGE_KEY"),
        value("containerName", "receipts"),
        auth={"secretStore": "local"},
    ),
    component("tick", "bindings.cron", value("schedule", "0 30 2 * * *")),
    component(
        "local",
        "secretstores.local.file",
        value("secretsFile", "secrets.json"),
    ),
    constant_retries("orders-policies", "receipts", "outbound", duration="1s", retries=3),
]


def write_project(root: Path, documents: list[dict[str, object]], app: str = APP) -> Path:
    (root / "components").mkdir(parents=True)
    (root / "app.py").write_text(app)
    (root / "components" / "all.yaml").write_text(yaml.safe_dump_all(documents))
    secrets = {"aws-creds": {"accessKey": SECRET_VALUE, "secretKey": SECRET_VALUE}}
    (root / "components" / "secrets.json").write_text(
        json.dumps({**secrets, "STORAGE_KEY": SECRET_VALUE})
    )
    return root
