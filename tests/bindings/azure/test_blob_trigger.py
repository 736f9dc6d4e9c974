"""The Blob trigger of bindings.azure.blobstorage (a portabind extension), locally: the
listener sees new and changed blobs in Azurite within about a second, and hands the handler
the blob's content with its metadata."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from portabind.bindings.azure import blobstorage
from portabind.bindings.azure.blobstorage import (
    BlobStorageInput,
    BlobStorageMetadata,
    BlobTrigger,
    create_container,
)
from tests.helpers import running, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from azure.storage.blob import ContainerClient

    from portabind.adapters.local.emulators.azure import AzuriteEmulator
    from portabind.events import BindingEvent


@pytest.fixture
def metadata(azurite: AzuriteEmulator, unique_name: Callable[..., str]) -> BlobStorageMetadata:
    assert blobstorage.binding.emulate is not None
    endpoint = azurite.blob_endpoint.removesuffix(f"/{azurite.account_name}")
    emulated = blobstorage.binding.emulate({"azurite.blob": endpoint})
    found = BlobStorageMetadata.model_validate({"containerName": unique_name("in"), **emulated})
    create_container(found)
    return found


@pytest.fixture
def raw(azurite: AzuriteEmulator, metadata: BlobStorageMetadata) -> Iterator[ContainerClient]:
    from azure.storage.blob import ContainerClient

    client = ContainerClient.from_connection_string(
        azurite.connection_string, metadata.container_name
    )
    yield client
    client.close()


def listener(metadata: BlobStorageMetadata, **annotations: str) -> BlobStorageInput:
    trigger = BlobTrigger.model_validate(
        {"trigger": "true", "pollInterval": "200ms", **annotations}
    )
    return BlobStorageInput("uploads", metadata, annotations=trigger)


def test_new_and_changed_blobs_are_delivered_with_content_and_metadata(
    metadata: BlobStorageMetadata, raw: ContainerClient
) -> None:
    from azure.storage.blob import ContentSettings

    raw.upload_blob("old.txt", b"there before")
    seen: list[BindingEvent] = []
    with running(listener(metadata), seen.append):
        time.sleep(0.3)
        started = time.monotonic()
        raw.upload_blob(
            "a/new.txt",
            b"hello",
            metadata={"origin": "scanner"},
            content_settings=ContentSettings(content_type="text/plain"),
        )
        wait_until(lambda: len(seen) == 1)
        took = time.monotonic() - started
        raw.upload_blob("a/new.txt", b"hello again", overwrite=True)
        wait_until(lambda: len(seen) == 2)
        raw.delete_blob("a/new.txt")
        time.sleep(0.5)
    assert took < 1.5  # within about a second
    first, second = seen
    assert first.data == b"hello"
    assert first.metadata["blobName"] == "a/new.txt"
    assert first.metadata["container"] == metadata.container_name
    assert (first.metadata["size"], first.metadata["contentType"]) == ("5", "text/plain")
    assert first.metadata["origin"] == "scanner"  # user metadata under its own name
    assert first.metadata["eTag"] != second.metadata["eTag"]
    assert first.metadata["lastModified"].endswith("Z")
    assert second.data == b"hello again"
    assert len(seen) == 2  # neither the blob there before nor the deletion


def test_only_blobs_matching_the_path_are_delivered(
    metadata: BlobStorageMetadata, raw: ContainerClient
) -> None:
    seen: list[BindingEvent] = []
    with running(listener(metadata, path="incoming/{name}.csv"), seen.append):
        time.sleep(0.3)
        raw.upload_blob("incoming/a.txt", b"no")
        raw.upload_blob("other/b.csv", b"no")
        raw.upload_blob("incoming/c.csv", b"yes")
        wait_until(lambda: len(seen) == 1)
        time.sleep(0.4)
    assert [e.metadata["blobName"] for e in seen] == ["incoming/c.csv"]


def test_a_blob_the_handler_fails_on_is_offered_again(
    metadata: BlobStorageMetadata, raw: ContainerClient
) -> None:
    calls: list[str] = []

    def handler(event: BindingEvent) -> None:
        calls.append(event.metadata["blobName"])
        if len(calls) == 1:
            raise RuntimeError("not yet")

    with running(listener(metadata), handler):
        time.sleep(0.3)
        raw.upload_blob("x.txt", b"x")
        wait_until(lambda: len(calls) == 2)
    assert calls == ["x.txt", "x.txt"]


@pytest.mark.parametrize("path", ["incoming/", "{name}/{name}", "*.csv"])
def test_a_path_needs_exactly_one_name_placeholder(path: str) -> None:
    with pytest.raises(ValidationError, match=r"\{name\}"):
        BlobTrigger.model_validate({"path": path})


def test_the_trigger_is_an_extension_with_eventgrid_by_default() -> None:
    trigger = BlobTrigger()
    assert (trigger.trigger, trigger.source.value, trigger.path) == (False, "EventGrid", "{name}")
    assert blobstorage.binding.annotations is BlobTrigger
