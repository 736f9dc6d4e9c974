"""bindings.azure.blobstorage against Azurite: every operation, data and metadata as Dapr
returns them."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError

from portabind.bindings.azure import blobstorage
from portabind.bindings.azure.blobstorage import BlobStorageMetadata, BlobStorageOutput
from portabind.errors import BindingError, NotFound
from portabind.events import Metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from azure.storage.blob import ContainerClient

    from portabind.adapters.local.emulators.azure import AzuriteEmulator


def make_metadata(azurite: AzuriteEmulator, container: str, **values: str) -> BlobStorageMetadata:
    assert blobstorage.binding.emulate is not None
    endpoint = azurite.blob_endpoint.removesuffix(f"/{azurite.account_name}")
    emulated = blobstorage.binding.emulate({"azurite.blob": endpoint})
    return BlobStorageMetadata.model_validate({"containerName": container, **emulated, **values})


@pytest.fixture
def container_name(unique_name: Callable[..., str]) -> str:
    return unique_name("c")


@pytest.fixture
def blobs(azurite: AzuriteEmulator, container_name: str) -> Iterator[BlobStorageOutput]:
    client = BlobStorageOutput("receipts", make_metadata(azurite, container_name))
    yield client
    client.close()


@pytest.fixture
def raw(azurite: AzuriteEmulator, container_name: str) -> Iterator[ContainerClient]:
    from azure.storage.blob import ContainerClient

    client = ContainerClient.from_connection_string(azurite.connection_string, container_name)
    yield client
    client.close()


def call(client: BlobStorageOutput, operation: str, data: Any = b"", **metadata: str) -> Any:
    raw_data = data if isinstance(data, bytes) else json.dumps(data).encode()
    return client.invoke(operation, raw_data, Metadata(metadata))


def test_metadata_aliases_and_requirements(azurite: AzuriteEmulator) -> None:
    metadata = BlobStorageMetadata.model_validate(
        {"storageAccountName": "acct", "storageAccountKey": "a2V5", "container": "c"}
    )
    assert (metadata.account_name, metadata.container_name) == ("acct", "c")
    assert metadata.get_blob_retry_count == 3
    assert metadata.account_url("blob") == "https://acct.blob.core.windows.net"
    assert {"accountKey", "connectionString"} <= BlobStorageMetadata.secret_names()
    with pytest.raises(ValidationError, match="accountName is required"):
        BlobStorageMetadata.model_validate({"containerName": "c"})
    with pytest.raises(ValidationError):
        BlobStorageMetadata.model_validate(
            {"accountName": "a", "containerName": "c", "publicAccessLevel": "everyone"}
        )


def test_connection_string_instead_of_account(
    azurite: AzuriteEmulator, container_name: str, raw: ContainerClient
) -> None:
    metadata = BlobStorageMetadata.model_validate(
        {"connectionString": azurite.connection_string, "containerName": container_name}
    )
    call(BlobStorageOutput("receipts", metadata), "create", b"hi", blobName="a.txt")
    assert raw.download_blob("a.txt").readall() == b"hi"


def test_create_with_headers_user_metadata_and_presign(
    blobs: BlobStorageOutput, raw: ContainerClient
) -> None:
    body = b'{"order": 1}'
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    response = call(
        blobs,
        "create",
        body,
        blobName="receipts/1.json",
        ContentType="application/json",
        contentMD5=md5,
        cacheControl="no-cache",
        contentLanguage="en",
        signTTL="15m",
        **{"order-id": "1", "note": "caf\u00e9\x01!"},
    )
    assert response.json()["blobName"] == "receipts/1.json"
    assert response.json()["blobURL"].endswith(f"/{raw.container_name}/receipts/1.json")
    assert response.metadata == {"blobName": "receipts/1.json"}
    with urllib.request.urlopen(response.json()["presignURL"]) as reply:
        assert reply.read() == body
    properties = raw.get_blob_client("receipts/1.json").get_blob_properties()
    assert properties.content_settings.content_type == "application/json"
    assert properties.content_settings.cache_control == "no-cache"
    assert properties.content_settings.content_language == "en"
    assert base64.b64encode(properties.content_settings.content_md5).decode() == md5
    # Header keys and signTTL/blobName are not stored; keys keep [A-Za-z0-9]; values ASCII.
    assert properties.metadata == {"orderid": "1", "note": "caf!"}


def test_create_key_alias_unquote_and_generated_name(
    blobs: BlobStorageOutput, raw: ContainerClient
) -> None:
    response = call(blobs, "create", b'"quoted"', key="receipts/2.json")
    assert response.metadata["blobName"] == "receipts/2.json"
    blob = raw.get_blob_client("receipts/2.json")
    assert blob.download_blob().readall() == b"quoted"
    assert blob.get_blob_properties().metadata == {}  # `key` named the blob; not metadata
    generated = call(blobs, "create", b"x").metadata["blobName"]
    assert len(generated) == 36
    assert raw.download_blob(generated).readall() == b"x"


def test_create_decode_base64_and_bad_md5(
    azurite: AzuriteEmulator, container_name: str, raw: ContainerClient
) -> None:
    client = BlobStorageOutput(
        "receipts", make_metadata(azurite, container_name, decodeBase64="true")
    )
    call(client, "create", base64.b64encode(b"\x00\x01"), blobName="bin")
    assert raw.download_blob("bin").readall() == b"\x00\x01"
    with pytest.raises(BindingError, match="not valid base64"):
        call(client, "create", b"***", blobName="bad")
    with pytest.raises(BindingError, match="MD5"):
        call(client, "create", b"QQ==", blobName="bad", contentMD5="c2hvcnQ=")


def test_get_with_metadata_to_file_and_not_found(blobs: BlobStorageOutput, tmp_path: Path) -> None:
    call(blobs, "create", b"payload", blobName="a.txt", owner="me")
    plain = call(blobs, "get", blobName="a.txt")
    assert (plain.data, dict(plain.metadata)) == (b"payload", {})
    with_meta = call(blobs, "get", blobName="a.txt", includeMetadata="true")
    assert with_meta.metadata == {"owner": "me"}
    assert call(blobs, "get", key="a.txt").data == b"payload"
    target = tmp_path / "out" / "a.txt"
    to_file = call(blobs, "get", blobName="a.txt", filePath=str(target))
    assert to_file.data is None
    assert to_file.metadata == {"filePath": str(target)}
    assert target.read_bytes() == b"payload"
    with pytest.raises(NotFound, match="blob not found"):
        call(blobs, "get", blobName="missing")
    with pytest.raises(NotFound):
        call(blobs, "get", blobName="missing", filePath=str(tmp_path / "missing"))
    assert not (tmp_path / "missing").exists()
    with pytest.raises(BindingError, match="blobName is a required attribute"):
        call(blobs, "get")
    with pytest.raises(BindingError, match="includeMetadata"):
        call(blobs, "get", blobName="a.txt", includeMetadata="maybe")


def test_delete(blobs: BlobStorageOutput, raw: ContainerClient) -> None:
    call(blobs, "create", b"x", blobName="gone")
    assert call(blobs, "delete", blobName="gone").data is None
    assert not raw.get_blob_client("gone").exists()
    with pytest.raises(NotFound, match="blob not found"):
        call(blobs, "delete", blobName="gone")
    with pytest.raises(BindingError, match="delete snapshot"):
        call(blobs, "delete", blobName="x", deleteSnapshots="all")


def test_list_pages_prefix_and_include(blobs: BlobStorageOutput) -> None:
    for name in ("r/1", "r/2", "r/3", "other"):
        call(blobs, "create", b"abc", blobName=name, tag=name)
    everything = call(blobs, "list", b"")
    assert everything.metadata["number"] == "4"
    assert everything.metadata["marker"] == ""
    assert [item["Name"] for item in everything.json()] == ["other", "r/1", "r/2", "r/3"]
    item = everything.json()[1]
    assert item["Properties"]["ContentLength"] == 3
    assert item["Properties"]["BlobType"] == "BlockBlob"
    assert item["Metadata"] is None
    first = call(blobs, "list", {"prefix": "r/", "maxResults": 2, "include": {"metadata": True}})
    assert first.metadata["number"] == "2"
    assert first.metadata["pagesTraversed"] == "1"
    assert first.metadata["marker"] != ""
    assert first.json()[0]["Metadata"] == {"tag": "r/1"}
    rest = call(blobs, "list", {"prefix": "r/", "marker": first.metadata["marker"]})
    assert [item["Name"] for item in rest.json()] == ["r/3"]


def test_presign(blobs: BlobStorageOutput) -> None:
    call(blobs, "create", b"signed", blobName="s.txt")
    url = call(blobs, "presign", blobName="s.txt", signTTL="1m").json()["presignURL"]
    with urllib.request.urlopen(url) as reply:
        assert reply.read() == b"signed"
    with pytest.raises(BindingError, match="signTTL is a required attribute"):
        call(blobs, "presign", blobName="s.txt")
    with pytest.raises(BindingError, match="positive"):
        call(blobs, "presign", blobName="s.txt", signTTL="-1m")


def test_bulk_create_get_delete(blobs: BlobStorageOutput, tmp_path: Path) -> None:
    source = tmp_path / "source.txt"
    source.write_bytes(b"from file")
    created = call(
        blobs,
        "bulkCreate",
        {
            "items": [
                {"blobName": "b/1", "data": "one", "contentType": "text/plain"},
                {"blobName": "b/2", "sourcePath": str(source)},
                {"blobName": "b/3", "sourcePath": str(tmp_path / "nope")},
            ],
            "concurrency": 2,
        },
    )
    results = created.json()
    assert created.metadata == {"number": "3"}
    assert results[0]["blobURL"].endswith("/b/1")
    assert "error" not in results[1]
    assert results[2]["error"].startswith("error opening source file")
    fetched = call(blobs, "bulkGet", {"items": [{"blobName": "b/1"}, {"blobName": "missing"}]})
    assert fetched.json() == [
        {"blobName": "b/1", "data": base64.b64encode(b"one").decode()},
        {"blobName": "missing", "error": "blob not found"},
    ]
    into = tmp_path / "downloads"
    to_files = call(blobs, "bulkGet", {"prefix": "b/", "destinationDir": str(into)})
    assert {r["blobName"] for r in to_files.json()} == {"b/1", "b/2"}
    assert (into / "b" / "2").read_bytes() == b"from file"
    with pytest.raises(BindingError, match="destinationDir is required"):
        call(blobs, "bulkGet", {"prefix": "b/"})
    with pytest.raises(BindingError, match="at least one of items or prefix"):
        call(blobs, "bulkGet", {})
    with pytest.raises(BindingError, match="items array must not be empty"):
        call(blobs, "bulkCreate", {"items": []})
    with pytest.raises(BindingError, match="missing both data and sourcePath"):
        call(blobs, "bulkCreate", {"items": [{"blobName": "x"}]})
    with pytest.raises(BindingError, match="concurrency"):
        call(blobs, "bulkDelete", {"prefix": "b/", "concurrency": 0})
    deleted = call(blobs, "bulkDelete", {"blobNames": ["b/1", "missing"], "prefix": "b/"})
    assert deleted.json() == [
        {"blobName": "b/1"},
        {"blobName": "missing", "error": "blob not found"},
        {"blobName": "b/2"},
    ]
    assert call(blobs, "list", b"").metadata["number"] == "0"


def test_bulk_get_keeps_files_inside_destination(tmp_path: Path) -> None:
    # The service refuses such names itself; the guard also covers names it allows.
    from portabind.bindings.azure.blobstorage import _safe_join

    assert _safe_join(str(tmp_path), "../../escape") == tmp_path / "escape"
    assert _safe_join(str(tmp_path), "/abs/x") == tmp_path / "abs" / "x"


def test_the_first_write_creates_the_container(
    azurite: AzuriteEmulator, unique_name: Callable[..., str]
) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    name = unique_name("lazy")
    client = BlobStorageOutput("receipts", make_metadata(azurite, name, publicAccessLevel="blob"))
    assert not service.get_container_client(name).exists()  # no call at start
    # Until then it reads as the empty container Dapr makes at Init.
    assert call(client, "list", b"").metadata["number"] == "0"
    with pytest.raises(NotFound):
        call(client, "get", blobName="a")
    call(client, "create", b"first", blobName="a")
    assert service.get_container_client(name).get_container_properties().public_access == "blob"
    assert call(client, "get", blobName="a").data == b"first"
    other = BlobStorageOutput("receipts", make_metadata(azurite, unique_name("bulk")))
    created = call(other, "bulkCreate", {"items": [{"blobName": "b", "data": "x"}]}).json()
    assert "error" not in created[0]
    assert call(other, "get", blobName="b").data == b"x"


def test_disable_entity_management_leaves_a_missing_container_missing(
    azurite: AzuriteEmulator, unique_name: Callable[..., str]
) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    unmanaged = unique_name("unmanaged")
    client = BlobStorageOutput(
        "receipts", make_metadata(azurite, unmanaged, disableEntityManagement="true")
    )
    with pytest.raises(BindingError, match="container does not exist"):
        call(client, "create", b"x", blobName="x")
    with pytest.raises(BindingError, match="container does not exist"):
        call(client, "list", b"")
    assert not service.get_container_client(unmanaged).exists()


def test_provision_creates_the_container(
    azurite: AzuriteEmulator, unique_name: Callable[..., str]
) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    assert blobstorage.binding.provision is not None
    provisioned = unique_name("prov")
    blobstorage.binding.provision(make_metadata(azurite, provisioned))
    blobstorage.binding.provision(make_metadata(azurite, provisioned))  # idempotent
    assert service.get_container_client(provisioned).exists()
