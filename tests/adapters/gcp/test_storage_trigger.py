"""`portabind build --target gcp` for the Cloud Storage trigger of bindings.gcp.bucket (a
portabind extension): the deploy manifest and script filter the event type and the bucket,
and main.py, served by functions-framework, hands the handler a real Cloud Storage
CloudEvent (structured and binary) as the local listener does."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from portabind.adapters.gcp import build as gcp_build
from portabind.errors import UserError
from portabind.tooling.project import load_project

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

HANDLERS = """
@app.binding("uploads")
def uploads(event: BindingEvent) -> None:
    if event.metadata["key"] == "poison.txt":
        raise ValueError("cannot take this object")
    record(event)
"""
RESOURCE = {
    "bucket": "orders-in",
    "name": "dir/a b.txt",
    "generation": "1700000000000001",
    "metageneration": "1",
    "size": "5",
    "contentType": "text/plain",
    "timeCreated": "2026-01-02T03:04:05.123Z",
    "updated": "2026-01-02T03:04:05.123Z",
    "metadata": {"origin": "scanner"},
}


def project(tmp_path: Path, app: str, **annotations: str) -> Any:
    document = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": "uploads",
            "annotations": {f"portabind.io/{k}": v for k, v in annotations.items()},
        },
        "spec": {
            "type": "bindings.gcp.bucket",
            "version": "v1",
            "metadata": [
                {"name": "bucket", "value": "orders-in"},
                {"name": "projectId", "value": "orders-demo"},
            ],
        },
    }
    root = tmp_path / "project"
    (root / "components").mkdir(parents=True)
    (root / "app.py").write_text(app)
    (root / "components" / "uploads.yaml").write_text(yaml.safe_dump(document))
    return load_project(root)


@pytest.fixture
def out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recording_app: Callable[[str], str]
) -> Path:
    target = tmp_path / "out"
    gcp_build.build(project(tmp_path, recording_app(HANDLERS), trigger="true"), target)
    monkeypatch.setenv("RECORD_PATH", str(tmp_path / "events.jsonl"))
    return target


def test_manifest_and_script_filter_the_event_type_and_the_bucket(out: Path) -> None:
    manifest = yaml.safe_load((out / "deploy.yaml").read_text())
    (function,) = manifest["functions"]
    assert function["entryPoint"] == "on_uploads"
    assert function["trigger"] == {
        "eventType": "google.cloud.storage.object.v1.finalized",
        "eventFilters": {"bucket": "orders-in"},
        "retryPolicy": "RETRY_POLICY_RETRY",
    }
    script = (out / "deploy.sh").read_text()
    assert "--trigger-event-filters=type=google.cloud.storage.object.v1.finalized" in script
    assert "--trigger-event-filters=bucket=orders-in" in script
    assert "--retry" in script
    assert "@functions_framework.cloud_event" in (out / "main.py").read_text()


def test_other_events_by_annotation(tmp_path: Path, recording_app: Callable[[str], str]) -> None:
    target = tmp_path / "out"
    built = project(tmp_path, recording_app(HANDLERS), trigger="true", events="metadataUpdated")
    gcp_build.build(built, target)
    (function,) = yaml.safe_load((target / "deploy.yaml").read_text())["functions"]
    assert function["trigger"]["eventType"] == "google.cloud.storage.object.v1.metadataUpdated"


@pytest.mark.parametrize(
    ("annotations", "message"),
    [({}, "portabind.io/trigger"), ({"trigger": "true", "events": "finalized,deleted"}, "one")],
)
def test_what_a_function_cannot_take_is_one_error(
    tmp_path: Path, recording_app: Callable[[str], str], annotations: dict[str, str], message: str
) -> None:
    with pytest.raises(UserError, match=message) as caught:
        gcp_build.build(project(tmp_path, recording_app(HANDLERS), **annotations), tmp_path / "o")
    assert caught.value.component == "uploads"  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_the_function_hands_the_handler_the_object_event(
    out: Path, tmp_path: Path, mode: str
) -> None:
    from functions_framework import create_app

    client = create_app("on_uploads", str(out / "main.py"), "cloudevent").test_client()  # type: ignore[no-untyped-call]
    attributes = {
        "type": "google.cloud.storage.object.v1.finalized",
        "source": "//storage.googleapis.com/projects/_/buckets/orders-in",
        "subject": "objects/dir/a b.txt",
        "id": "7",
    }
    convert = to_structured if mode == "structured" else to_binary
    headers, body = convert(CloudEvent(attributes, RESOURCE))
    assert client.post("/", headers=headers, data=body).status_code == 200

    poisoned = CloudEvent({**attributes, "id": "8"}, {**RESOURCE, "name": "poison.txt"})
    headers, body = convert(poisoned)
    assert client.post("/", headers=headers, data=body).status_code == 500  # Eventarc retries

    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    (event,) = [json.loads(line) for line in lines]
    assert json.loads(bytes.fromhex(event["data"])) == RESOURCE
    metadata = event["metadata"]
    assert (metadata["key"], metadata["bucket"]) == ("dir/a b.txt", "orders-in")
    assert metadata["eventType"] == "google.cloud.storage.object.v1.finalized"
    assert (metadata["generation"], metadata["size"]) == ("1700000000000001", "5")
    assert metadata["origin"] == "scanner"
