"""bindings.gcp.bucket against gcp-storage-emulator, with the real google-cloud-storage."""

from __future__ import annotations

import base64
import json
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from portabind.bindings.gcp import bucket
from portabind.errors import BindingError, NotFound, UnsupportedOperation
from portabind.events import BindingResponse, Metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PROJECT = "portabind-test"


@pytest.fixture
def storage_emulator(gcs_server: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    return str(gcs_server.endpoint)


@pytest.fixture
def make_output(
    storage_emulator: str, unique_name: Callable[..., str]
) -> Iterator[Callable[..., bucket.BucketOutput]]:
    """Output bindings on fresh buckets (created by the binding's `provision`)."""
    made: list[bucket.BucketOutput] = []

    def make(**fields: str) -> bucket.BucketOutput:
        values = {"projectId": PROJECT, "bucket": unique_name("b"), **fields}
        metadata = bucket.BucketMetadata.model_validate(values)
        bucket.provision(metadata)
        made.append(bucket.BucketOutput("files", metadata))
        return made[-1]

    yield make
    for output in made:
        output.close()


@pytest.fixture
def output(make_output: Callable[..., bucket.BucketOutput]) -> bucket.BucketOutput:
    return make_output()


def call(
    output: bucket.BucketOutput, operation: str, data: bytes = b"", **metadata: str
) -> BindingResponse:
    return output.invoke(operation, data, Metadata(metadata))


def stored(output: bucket.BucketOutput, key: str, bucket_name: str | None = None) -> Any:
    """The object as the SDK sees it (None when absent)."""
    return output.client.bucket(bucket_name or output.metadata.bucket).get_blob(key)


def test_create_stores_the_payload_and_returns_the_object_url(
    output: bucket.BucketOutput,
) -> None:
    response = call(output, "create", b'{"order": 1}', key="receipts/1.json")
    assert response.json() == {
        "objectURL": f"https://storage.googleapis.com/{output.metadata.bucket}/receipts/1.json"
    }
    assert call(output, "get", key="receipts/1.json").data == b'{"order": 1}'


def test_create_escapes_the_key_in_the_url_like_go(output: bucket.BucketOutput) -> None:
    response = call(output, "create", b"x", key="a dir/b#c.txt")
    assert response.json()["objectURL"].endswith("/a%20dir/b%23c.txt")
    assert stored(output, "a dir/b#c.txt") is not None


def test_create_without_a_key_uses_a_random_uuid(output: bucket.BucketOutput) -> None:
    url = call(output, "create", b"anonymous").json()["objectURL"]
    key = url.rsplit("/", 1)[1]
    assert len(key) == 36 and key.count("-") == 4
    assert call(output, "get", key=key).data == b"anonymous"


def test_name_is_the_legacy_spelling_of_key_and_wins(output: bucket.BucketOutput) -> None:
    call(output, "create", b"legacy", name="old.txt", key="ignored.txt")
    assert stored(output, "ignored.txt") is None
    assert call(output, "get", name="old.txt").data == b"legacy"


def test_create_unquotes_a_json_string_like_dapr(output: bucket.BucketOutput) -> None:
    call(output, "create", b'"hello \\"world\\""', key="q.txt")
    assert call(output, "get", key="q.txt").data == b'hello "world"'


def test_content_type_from_component_and_from_the_request(
    make_output: Callable[..., bucket.BucketOutput],
) -> None:
    output = make_output(contentType="application/json")
    call(output, "create", b"{}", key="a.json")
    call(output, "create", b"hi", key="b.txt", contentType="text/plain")
    assert stored(output, "a.json").content_type == "application/json"
    assert stored(output, "b.txt").content_type == "text/plain"


def test_decode_base64_per_request_and_per_component(
    make_output: Callable[..., bucket.BucketOutput],
) -> None:
    plain = make_output()
    call(plain, "create", base64.b64encode(b"\x00\x01bin"), key="r", decodeBase64="true")
    assert call(plain, "get", key="r").data == b"\x00\x01bin"
    decoding = make_output(decodeBase64="yes")
    call(decoding, "create", b'"' + base64.b64encode(b"quoted") + b'"', key="c")
    assert call(decoding, "get", key="c").data == b"quoted"
    call(decoding, "create", b"raw!", key="off", decodeBase64="false")
    assert call(decoding, "get", key="off").data == b"raw!"
    with pytest.raises(BindingError, match="not base64"):
        call(decoding, "create", b"not base64!", key="bad")


def test_encode_base64_per_component_and_per_request(
    make_output: Callable[..., bucket.BucketOutput],
) -> None:
    output = make_output(encodeBase64="true")
    call(output, "create", b"\xffdata", key="k")
    assert call(output, "get", key="k").data == base64.b64encode(b"\xffdata")
    assert call(output, "get", key="k", encodeBase64="false").data == b"\xffdata"


def test_get_and_delete_of_a_missing_object_are_not_found(output: bucket.BucketOutput) -> None:
    with pytest.raises(NotFound, match="object not found"):
        call(output, "get", key="nope")
    with pytest.raises(NotFound):
        call(output, "delete", key="nope")


@pytest.mark.parametrize("operation", ["get", "delete", "sign", "copy", "move", "rename"])
def test_operations_on_an_object_need_a_key(output: bucket.BucketOutput, operation: str) -> None:
    with pytest.raises(BindingError, match="can't read key value"):
        call(output, operation, b"{}")


def test_delete_removes_the_object_and_returns_no_data(output: bucket.BucketOutput) -> None:
    call(output, "create", b"x", key="gone")
    assert call(output, "delete", key="gone").data is None
    assert stored(output, "gone") is None


def test_list_returns_go_object_attrs_with_prefix_delimiter_and_limit(
    output: bucket.BucketOutput,
) -> None:
    for key in ("a/1.txt", "a/2.txt", "a/sub/3.txt", "b.txt"):
        call(output, "create", key.encode(), key=key, contentType="text/plain")
    everything = call(output, "list").json()
    assert [item["Name"] for item in everything] == ["a/1.txt", "a/2.txt", "a/sub/3.txt", "b.txt"]
    first = everything[0]
    assert first["Bucket"] == output.metadata.bucket
    assert first["Size"] == len(b"a/1.txt")
    assert first["ContentType"] == "text/plain"
    assert first["Generation"] and first["Created"].endswith("Z")
    assert base64.b64decode(first["MD5"])  # the Go []byte shape: base64
    assert first["Prefix"] == ""

    limited = call(output, "list", b'{"maxResults": 2}').json()
    assert [item["Name"] for item in limited] == ["a/1.txt", "a/2.txt"]

    folder = call(output, "list", b'{"prefix": "a/", "delimiter": "/"}').json()
    assert [(item["Name"], item["Prefix"]) for item in folder] == [
        ("a/1.txt", ""),
        ("a/2.txt", ""),
        ("", "a/sub/"),
    ]
    assert call(output, "list", b"null").json() == everything
    with pytest.raises(BindingError, match="not valid JSON"):
        call(output, "list", b"{nope")


def test_list_of_an_empty_bucket_is_an_empty_array(output: bucket.BucketOutput) -> None:
    assert call(output, "list").json() == []


def _service_account_fields() -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "privateKeyID": "0123456789abcdef",
        # One line with literal \n, as keys are often kept in environment variables.
        "privateKey": pem.replace("\n", "\\n"),
        "clientEmail": "signer@portabind-test.iam.gserviceaccount.com",
        "clientID": "1234567890",
    }


def test_sign_returns_a_v4_url_that_fetches_the_object(
    make_output: Callable[..., bucket.BucketOutput],
) -> None:
    output = make_output(**_service_account_fields())
    call(output, "create", b"signed content", key="docs/report.txt")
    url = call(output, "sign", key="docs/report.txt", signTTL="15m").json()["signURL"]
    query = parse_qs(urlsplit(url).query)
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
    assert query["X-Goog-Expires"] == ["900"]
    assert query["X-Goog-Credential"][0].startswith(
        "signer@portabind-test.iam.gserviceaccount.com/"
    )
    assert len(query["X-Goog-Signature"][0]) == 512  # hex of a 2048-bit RSA signature
    assert urlsplit(url).path == f"/{output.metadata.bucket}/docs/report.txt"
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.read() == b"signed content"


def test_sign_uses_the_component_ttl_and_needs_one(
    make_output: Callable[..., bucket.BucketOutput],
) -> None:
    fields = _service_account_fields()
    with_ttl = make_output(signTTL="1h", **fields)
    url = call(with_ttl, "sign", key="any").json()["signURL"]
    assert parse_qs(urlsplit(url).query)["X-Goog-Expires"] == ["3600"]
    without = make_output(**fields)
    with pytest.raises(BindingError, match="'signTTL' missing"):
        call(without, "sign", key="any")


def test_sign_without_a_key_or_a_service_account_says_what_is_needed(
    output: bucket.BucketOutput,
) -> None:
    with pytest.raises(BindingError, match="service-account key"):
        call(output, "sign", key="any", signTTL="5m")


def test_bulk_get_reads_every_object(output: bucket.BucketOutput) -> None:
    call(output, "create", b"one", key="x/1")
    call(output, "create", b"\x00two", key="y/2")
    items = call(output, "bulkGet").json()
    assert [item["name"] for item in items] == ["x/1", "y/2"]
    assert [base64.b64decode(item["data"]) for item in items] == [b"one", b"\x00two"]
    assert items[1]["attrs"]["Name"] == "y/2"
    assert items[1]["attrs"]["Size"] == 4
    encoded = call(output, "bulkGet", encodeBase64="true").json()
    assert base64.b64decode(encoded[0]["data"]) == base64.b64encode(b"one")


def test_copy_to_another_bucket_and_to_another_key(
    make_output: Callable[..., bucket.BucketOutput],
) -> None:
    source, target = make_output(), make_output()
    call(source, "create", b"payload", key="src.txt")
    to_bucket = json.dumps({"destinationBucket": target.metadata.bucket}).encode()
    assert call(source, "copy", to_bucket, key="src.txt").text() == (
        f"object src.txt copied to {target.metadata.bucket}/src.txt"
    )
    assert call(target, "get", key="src.txt").data == b"payload"
    assert call(source, "copy", b'{"destinationKey": "dup.txt"}', key="src.txt").text() == (
        f"object src.txt copied to {source.metadata.bucket}/dup.txt"
    )
    assert call(source, "get", key="dup.txt").data == b"payload"
    assert call(source, "get", key="src.txt").data == b"payload"  # the source stays
    with pytest.raises(BindingError, match="'destinationBucket' or 'destinationKey'"):
        call(source, "copy", b"{}", key="src.txt")
    with pytest.raises(NotFound):
        call(source, "copy", b'{"destinationKey": "x"}', key="missing.txt")


def test_move_copies_then_deletes_the_source(
    make_output: Callable[..., bucket.BucketOutput],
) -> None:
    source, target = make_output(), make_output()
    call(source, "create", b"moving", key="m.txt")
    data = json.dumps({"destinationBucket": target.metadata.bucket, "destinationKey": "n.txt"})
    assert call(source, "move", data.encode(), key="m.txt").text() == (
        f"object m.txt moved to {target.metadata.bucket}/n.txt"
    )
    assert stored(source, "m.txt") is None
    assert call(target, "get", key="n.txt").data == b"moving"
    call(source, "create", b"stay", key="s.txt")
    same = json.dumps({"destinationBucket": source.metadata.bucket}).encode()
    with pytest.raises(BindingError, match="destination equals the source"):
        call(source, "move", same, key="s.txt")
    assert call(source, "get", key="s.txt").data == b"stay"


def test_rename_within_the_bucket(output: bucket.BucketOutput) -> None:
    call(output, "create", b"renamed", key="old-name")
    assert call(output, "rename", b'{"newName": "new-name"}', key="old-name").text() == (
        "object old-name renamed to new-name"
    )
    assert stored(output, "old-name") is None
    assert call(output, "get", key="new-name").data == b"renamed"
    with pytest.raises(BindingError, match="'newName' missing"):
        call(output, "rename", b"{}", key="new-name")


def test_unknown_operations_are_refused(output: bucket.BucketOutput) -> None:
    with pytest.raises(UnsupportedOperation):
        call(output, "presign", key="k")


def test_metadata_accepts_both_spellings_and_marks_secrets() -> None:
    camel = bucket.BucketMetadata.model_validate(
        {"bucket": "b", "projectID": "p", "privateKeyID": "id", "clientEmail": "e"}
    )
    snake = bucket.BucketMetadata.model_validate(
        {"bucket": "b", "project_id": "p", "private_key_id": "id", "client_email": "e"}
    )
    assert camel == snake
    assert {"private_key_id", "private_key"} <= bucket.BucketMetadata.secret_names()
    assert "id" not in repr(camel.private_key_id)
