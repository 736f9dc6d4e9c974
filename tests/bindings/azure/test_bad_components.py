"""Bad input to the Event Grid, Cosmos DB and SignalR bindings and the storage triggers: `portabind
validate` prints one line per problem naming the file, the component and the field, exits 2,
shows no traceback and never a secret."""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from tests.helpers import portabind

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "SUPERSECRETKEY0123456789abcdef"


def component(name: str, type_: str, annotations: dict[str, str], **values: str) -> dict:
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": name,
            "annotations": {f"portabind.io/{k}": v for k, v in annotations.items()},
        },
        "spec": {
            "type": type_,
            "version": "v1",
            "metadata": [{"name": k, "value": v} for k, v in values.items()],
        },
    }


def test_validate_names_file_component_and_field_of_each_problem(tmp_path: Path) -> None:
    documents = [
        component(
            "hub",
            "bindings.azure.signalr",
            {},
            connectionString=f"Endpoint=https://x.service.signalr.net;AccessKey={SECRET};Version=2.0",
        ),
        component("events", "bindings.azure.eventgrid", {}, subscriberEndpoint="not a url"),
        component("orders", "bindings.azure.cosmosdb", {}, url="https://a", database="d"),
        component(
            "uploads",
            "bindings.azure.blobstorage",
            {"trigger": "true", "path": "incoming/"},
            accountName="a",
            containerName="c",
        ),
        component(
            "files",
            "bindings.gcp.bucket",
            {"trigger": "true", "events": "created"},
            bucket="b",
            projectId="p",
        ),
    ]
    (tmp_path / "components").mkdir()
    (tmp_path / "app.py").write_text("from portabind import App\n\napp = App()\n")
    (tmp_path / "components" / "all.yaml").write_text(yaml.safe_dump_all(documents))

    result = portabind("validate", tmp_path)

    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert "Traceback" not in output and SECRET not in output
    for name, field in [
        ("hub", "connectionString"),
        ("events", "subscriberEndpoint"),
        ("orders", "collection"),
        ("uploads", "portabind.io/path"),
        ("files", "portabind.io/events"),
    ]:
        line = next(line for line in output.splitlines() if f"component '{name}'" in line)
        assert "all.yaml" in line and field in line, line
