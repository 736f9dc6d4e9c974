"""The Cloud Storage trigger of bindings.gcp.bucket (a portabind extension), locally: the
listener sees new, changed and deleted objects in gcp-storage-emulator within about a
second, and hands the handler the event's data and metadata as the GCP function does."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError

from portabind.bindings.gcp import bucket
from portabind.bindings.gcp.bucket import BucketInput, BucketMetadata, BucketTrigger, object_event
from tests.helpers import running, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from portabind.events import BindingEvent


@pytest.fixture
def metadata(
    gcs_server: Any, monkeypatch: pytest.MonkeyPatch, unique_name: Callable[..., str]
) -> BucketMetadata:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    found = BucketMetadata.model_validate({"projectId": "p", "bucket": unique_name("in")})
    bucket.provision(found)
    return found


@pytest.fixture
def raw(metadata: BucketMetadata) -> Iterator[Any]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="p", credentials=AnonymousCredentials())
    yield client.bucket(metadata.bucket)
    client.close()


def listener(metadata: BucketMetadata, **annotations: str) -> BucketInput:
    trigger = BucketTrigger.model_validate(
        {"trigger": "true", "pollInterval": "200ms", **annotations}
    )
    return BucketInput("uploads", metadata, annotations=trigger)


def test_finalized_objects_are_delivered_within_a_second(
    metadata: BucketMetadata, raw: Any
) -> None:
    raw.blob("old.txt").upload_from_string(b"there before")
    seen: list[BindingEvent] = []
    with running(listener(metadata), seen.append):
        time.sleep(0.3)
        started = time.monotonic()
        blob = raw.blob("a/new.txt")
        blob.metadata = {"origin": "scanner"}
        blob.upload_from_string(b"hello", content_type="text/plain")
        wait_until(lambda: len(seen) == 1)
        took = time.monotonic() - started
        raw.blob("a/new.txt").upload_from_string(b"hello again")
        wait_until(lambda: len(seen) == 2)
        raw.blob("a/new.txt").delete()
        time.sleep(0.5)  # deleted is not among the events asked for
    assert took < 1.5
    first, second = seen
    resource = json.loads(first.data)
    assert (resource["name"], resource["bucket"]) == ("a/new.txt", metadata.bucket)
    assert first.metadata["key"] == "a/new.txt"
    assert first.metadata["bucket"] == metadata.bucket
    assert first.metadata["eventType"] == "google.cloud.storage.object.v1.finalized"
    assert (first.metadata["size"], first.metadata["contentType"]) == ("5", "text/plain")
    assert first.metadata["origin"] == "scanner"
    assert first.metadata["generation"] != second.metadata["generation"]
    assert len(seen) == 2


def test_deleted_and_metadata_updates_when_asked_for(metadata: BucketMetadata, raw: Any) -> None:
    raw.blob("x.txt").upload_from_string(b"x")
    seen: list[BindingEvent] = []
    with running(listener(metadata, events="deleted,metadataUpdated"), seen.append):
        time.sleep(0.3)
        blob = raw.get_blob("x.txt")
        blob.metadata = {"stage": "2"}
        blob.patch()
        wait_until(lambda: len(seen) == 1)
        raw.blob("x.txt").delete()
        wait_until(lambda: len(seen) == 2)
    assert [e.metadata["eventType"].rsplit(".", 1)[1] for e in seen] == [
        "metadataUpdated",
        "deleted",
    ]
    assert seen[0].metadata["stage"] == "2"


def test_an_object_the_handler_fails_on_is_offered_again(
    metadata: BucketMetadata, raw: Any
) -> None:
    calls: list[str] = []

    def handler(event: BindingEvent) -> None:
        calls.append(event.metadata["key"])
        if len(calls) == 1:
            raise RuntimeError("not yet")

    with running(listener(metadata), handler):
        time.sleep(0.3)
        raw.blob("y.txt").upload_from_string(b"y")
        wait_until(lambda: len(calls) == 2)
    assert calls == ["y.txt", "y.txt"]


def test_object_event_follows_the_rules_for_storage_notifications() -> None:
    resource = {
        "bucket": "b",
        "name": "dir/a b.txt",
        "generation": "1700000000000001",
        "metageneration": "1",
        "size": "5",
        "contentType": "text/plain",
        "timeCreated": "2026-01-02T03:04:05.123Z",
        "metadata": {"origin": "scanner"},
    }
    event = object_event("files", "google.cloud.storage.object.v1.finalized", resource)
    assert json.loads(event.data) == resource  # the CloudEvent's data, as sent
    assert event.metadata["key"] == "dir/a b.txt"  # the object name, as is
    assert event.metadata["timeCreated"] == "2026-01-02T03:04:05.123Z"
    assert event.metadata["origin"] == "scanner"


def test_events_must_be_cloud_storage_event_kinds() -> None:
    assert BucketTrigger.model_validate({"events": "Deleted, finalized"}).events == (
        bucket.ObjectEvent.DELETED,
        bucket.ObjectEvent.FINALIZED,
    )
    with pytest.raises(ValidationError):
        BucketTrigger.model_validate({"events": "created"})
