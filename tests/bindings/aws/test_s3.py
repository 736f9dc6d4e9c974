"""bindings.aws.s3 against a real moto server: every operation, its data and metadata."""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from portabind.bindings.aws import _aws, s3
from portabind.errors import BindingError, NotFound, UnsupportedOperation
from portabind.events import BindingEvent, Metadata

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Listener  # tests/bindings/conftest.py

    from portabind.adapters.local.emulators.aws import MotoEmulator


def make_output(moto: MotoEmulator, bucket: str, **fields: str) -> s3.S3Output:
    values = {"bucket": bucket, **_aws.emulate({"moto": moto.endpoint}), **fields}
    metadata = s3.S3Metadata.model_validate(values)
    s3.provision(metadata)
    output = s3.binding.output
    assert output is not None
    client = output("receipts", metadata)
    assert isinstance(client, s3.S3Output)
    return client


@pytest.fixture
def bucket(moto_server: MotoEmulator, unique_name: Callable[..., str]) -> s3.S3Output:
    return make_output(moto_server, unique_name())


def call(out: s3.S3Output, op: str, data: Any = b"", **metadata: str) -> Any:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return out.invoke(op, raw, Metadata(metadata))


def raw_object(out: s3.S3Output, key: str) -> dict[str, Any]:
    got: dict[str, Any] = out._s3.get_object(Bucket=out.metadata.bucket, Key=key)
    return got


def test_create_returns_location_version_and_key(bucket: s3.S3Output) -> None:
    response = call(bucket, "create", b'{"order": 1}', key="receipts/1.json")
    assert response.metadata == {"key": "receipts/1.json"}
    body = response.json()
    assert body == {
        "location": f"{bucket.metadata.endpoint}/{bucket.metadata.bucket}/receipts/1.json",
        "versionID": None,
    }
    assert raw_object(bucket, "receipts/1.json")["Body"].read() == b'{"order": 1}'


def test_create_without_key_uses_a_uuid(bucket: s3.S3Output) -> None:
    key = call(bucket, "create", b"x").metadata["key"]
    assert len(key) == 36 and key.count("-") == 4
    assert call(bucket, "get", key=key).data == b"x"


def test_create_unquotes_a_json_string_and_keeps_other_json(bucket: s3.S3Output) -> None:
    call(bucket, "create", b'"hello"', key="quoted")
    call(bucket, "create", b'["a"]', key="array")
    assert call(bucket, "get", key="quoted").data == b"hello"
    assert call(bucket, "get", key="array").data == b'["a"]'


def test_create_sets_content_type_storage_class_and_tags(bucket: s3.S3Output) -> None:
    call(
        bucket,
        "create",
        b"<p/>",
        key="page.html",
        **{"Content-Type": "text/html", "storageClass": "STANDARD_IA", "tags": "a=1, b=two"},
    )
    head = raw_object(bucket, "page.html")
    assert head["ContentType"] == "text/html"
    assert head["StorageClass"] == "STANDARD_IA"
    tags = bucket._s3.get_object_tagging(Bucket=bucket.metadata.bucket, Key="page.html")
    assert {t["Key"]: t["Value"] for t in tags["TagSet"]} == {"a": "1", "b": "two"}


def test_create_from_file_path(bucket: s3.S3Output, tmp_path: Path) -> None:
    source = tmp_path / "upload.bin"
    source.write_bytes(b"\x00\x01binary")
    call(bucket, "create", b"ignored", key="f", filePath=str(source))
    assert call(bucket, "get", key="f").data == b"\x00\x01binary"


def test_create_with_presign_ttl_returns_a_working_url(bucket: s3.S3Output) -> None:
    response = call(bucket, "create", b"signed", key="s.txt", presignTTL="15m")
    url = response.json()["presignURL"]
    assert "X-Amz-Expires=900" in url
    with urllib.request.urlopen(url, timeout=10) as download:
        assert download.read() == b"signed"


def test_decode_base64_per_request_and_per_component(
    bucket: s3.S3Output, moto_server: MotoEmulator
) -> None:
    encoded = base64.b64encode(b"\xffraw").decode()
    call(bucket, "create", encoded.encode(), key="r1", decodeBase64="true")
    assert call(bucket, "get", key="r1").data == b"\xffraw"
    decoding = make_output(moto_server, bucket.metadata.bucket, decodeBase64="yes")
    call(decoding, "create", json.dumps(encoded).encode(), key="r2")
    assert call(bucket, "get", key="r2").data == b"\xffraw"
    # a request can switch the component's decoding off again
    call(decoding, "create", b"plain", key="r3", decodeBase64="false")
    assert call(bucket, "get", key="r3").data == b"plain"


def test_decode_base64_rejects_invalid_input(bucket: s3.S3Output) -> None:
    with pytest.raises(BindingError, match="decode"):
        call(bucket, "create", b"not base64!", key="bad", decodeBase64="true")


def test_get_encode_base64_per_request_and_per_component(
    bucket: s3.S3Output, moto_server: MotoEmulator
) -> None:
    call(bucket, "create", b"\x00data", key="e")
    response = call(bucket, "get", key="e", encodeBase64="true")
    assert response.data == base64.b64encode(b"\x00data")
    assert response.metadata == {}
    encoding = make_output(moto_server, bucket.metadata.bucket, encodeBase64="true")
    assert call(encoding, "get", key="e").data == base64.b64encode(b"\x00data")


def test_get_missing_object_is_not_found(bucket: s3.S3Output) -> None:
    with pytest.raises(NotFound, match="object not found"):
        call(bucket, "get", key="nothing-here")


@pytest.mark.parametrize("operation", ["get", "delete", "presign"])
def test_key_is_required(bucket: s3.S3Output, operation: str) -> None:
    with pytest.raises(BindingError, match="required metadata 'key' missing"):
        call(bucket, operation, presignTTL="1m")


def test_delete_removes_the_object_and_returns_no_data(bucket: s3.S3Output) -> None:
    call(bucket, "create", b"x", key="d")
    response = call(bucket, "delete", key="d")
    assert response.data is None
    with pytest.raises(NotFound):
        call(bucket, "get", key="d")


def test_list_returns_the_sdk_shape(bucket: s3.S3Output) -> None:
    for key in ("a/1", "a/2", "b/1"):
        call(bucket, "create", b"12345", key=key)
    listed = call(bucket, "list", b"").json()
    assert [c["Key"] for c in listed["Contents"]] == ["a/1", "a/2", "b/1"]
    first = listed["Contents"][0]
    assert first["Size"] == 5 and first["ETag"].startswith('"')
    assert first["LastModified"].endswith("Z")
    assert listed["Name"] == bucket.metadata.bucket
    assert listed["MaxKeys"] == 1000
    assert listed["IsTruncated"] is False
    assert "NextMarker" in listed  # null when absent, as the Go SDK marshals it


def test_list_prefix_delimiter_marker_and_max_results(bucket: s3.S3Output) -> None:
    for key in ("a/1", "a/2", "b/1", "c"):
        call(bucket, "create", b"x", key=key)
    page = call(bucket, "list", {"maxResults": 2}).json()
    assert [c["Key"] for c in page["Contents"]] == ["a/1", "a/2"]
    assert page["IsTruncated"] is True
    rest = call(bucket, "list", {"marker": "a/2"}).json()
    assert [c["Key"] for c in rest["Contents"]] == ["b/1", "c"]
    assert [c["Key"] for c in call(bucket, "list", {"prefix": "a/"}).json()["Contents"]] == [
        "a/1",
        "a/2",
    ]
    grouped = call(bucket, "list", {"delimiter": "/"}).json()
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["a/", "b/"]
    assert [c["Key"] for c in grouped["Contents"]] == ["c"]


def test_list_of_an_empty_bucket_and_bad_data(bucket: s3.S3Output) -> None:
    empty = call(bucket, "list", b"null").json()
    assert empty["Contents"] is None
    with pytest.raises(BindingError, match="unable to parse"):
        call(bucket, "list", b"{not json")


def test_presign(bucket: s3.S3Output) -> None:
    call(bucket, "create", b"p", key="p")
    response = call(bucket, "presign", key="p", presignTTL="90")
    assert set(response.json()) == {"presignURL"}
    with urllib.request.urlopen(response.json()["presignURL"], timeout=10) as download:
        assert download.read() == b"p"
    with pytest.raises(BindingError, match="required metadata 'presignTTL' missing"):
        call(bucket, "presign", key="p")
    with pytest.raises(BindingError, match="cannot parse duration"):
        call(bucket, "presign", key="p", presignTTL="soon")


def test_bulk_create_get_delete(bucket: s3.S3Output, tmp_path: Path) -> None:
    source = tmp_path / "from-file"
    source.write_bytes(b"file body")
    created = call(
        bucket,
        "bulkCreate",
        {
            "items": [
                {"key": "k1", "data": "one", "contentType": "text/plain"},
                {"key": "k2", "filePath": str(source)},
                {"key": "k3", "filePath": str(tmp_path / "missing")},
            ],
            "concurrency": 2,
        },
    ).json()
    base = f"{bucket.metadata.endpoint}/{bucket.metadata.bucket}"
    assert created[:2] == [
        {"key": "k1", "location": f"{base}/k1"},
        {"key": "k2", "location": f"{base}/k2"},
    ]
    assert created[2]["key"] == "k3" and "missing" in created[2]["error"]
    assert raw_object(bucket, "k1")["ContentType"] == "text/plain"

    target = tmp_path / "downloaded"
    got = call(
        bucket,
        "bulkGet",
        {"items": [{"key": "k1"}, {"key": "k2", "filePath": str(target)}, {"key": "nope"}]},
    ).json()
    assert got[0] == {"key": "k1", "data": base64.b64encode(b"one").decode()}
    assert got[1] == {"key": "k2", "filePath": str(target)}
    assert target.read_bytes() == b"file body"
    assert got[2] == {"key": "nope", "error": "object not found"}

    deleted = call(bucket, "bulkDelete", {"keys": ["k1", "k2"]}).json()
    assert deleted == [{"key": "k1"}, {"key": "k2"}]
    assert call(bucket, "list", b"").json()["Contents"] is None


def test_bulk_create_decodes_base64_when_asked(bucket: s3.S3Output) -> None:
    encoded = base64.b64encode(b"\x01\x02").decode()
    call(bucket, "bulkCreate", {"items": [{"key": "b", "data": encoded}]}, decodeBase64="true")
    assert call(bucket, "get", key="b").data == b"\x01\x02"


@pytest.mark.parametrize(
    ("operation", "data"),
    [("bulkGet", {"items": [{}]}), ("bulkCreate", {"items": "k"}), ("bulkDelete", {"keys": [1]})],
)
def test_bulk_operations_reject_malformed_requests(
    bucket: s3.S3Output, operation: str, data: Any
) -> None:
    with pytest.raises(BindingError, match="request data needs"):
        call(bucket, operation, data)


def test_unknown_operation(bucket: s3.S3Output) -> None:
    with pytest.raises(UnsupportedOperation, match="bulkGet"):
        call(bucket, "copy")


def test_missing_bucket_is_a_binding_error(moto_server: MotoEmulator) -> None:
    values = {"bucket": "pb-no-such-bucket-here", **_aws.emulate({"moto": moto_server.endpoint})}
    output = s3.S3Output("receipts", s3.S3Metadata.model_validate(values))
    with pytest.raises(BindingError, match="NoSuchBucket") as raised:
        call(output, "create", b"x", key="k")
    assert not isinstance(raised.value, NotFound)


def test_location_without_endpoint_follows_the_addressing_style() -> None:
    virtual = s3.S3Output(
        "r", s3.S3Metadata.model_validate({"bucket": "bk", "region": "eu-west-1"})
    )
    assert virtual._location("a b/c") == "https://bk.s3.eu-west-1.amazonaws.com/a%20b/c"
    path = s3.S3Output(
        "r",
        s3.S3Metadata.model_validate(
            {"bucket": "bk", "region": "eu-west-1", "forcePathStyle": "true"}
        ),
    )
    assert path._location("k") == "https://s3.eu-west-1.amazonaws.com/bk/k"


def test_disable_ssl_prefixes_http_to_a_bare_endpoint(moto_server: MotoEmulator) -> None:
    bare = moto_server.endpoint.removeprefix("http://")
    values = {**_aws.emulate({"moto": moto_server.endpoint}), "endpoint": bare}
    metadata = s3.S3Metadata.model_validate({"bucket": "pb-bare", "disableSSL": "true", **values})
    s3.provision(metadata)
    output = s3.S3Output("r", metadata)
    assert call(output, "create", b"ok", key="k").json()["location"].startswith("http://")
    assert call(output, "get", key="k").data == b"ok"


# -- input: bucket notifications ------------------------------------------------------------

S3_EVENT = json.loads((Path(__file__).parents[2] / "events" / "s3-put.json").read_text())
S3_SAMPLE = S3_EVENT["Records"][0]


def test_lambda_record_maps_to_the_normalized_event() -> None:
    event = s3.event_from_record("uploads", S3_SAMPLE)
    assert json.loads(event.data) == S3_SAMPLE  # no payload field: the record as JSON
    assert dict(event.metadata) == {
        "key": "test/key",  # URL-decoded
        "bucket": "example-bucket",
        "eventName": "ObjectCreated:Put",
        "eventTime": "1970-01-01T00:00:00.000Z",
        "size": "1024",
        "eTag": "0123456789abcdef0123456789abcdef",
    }


def test_event_keys_are_url_decoded_with_plus_as_space() -> None:
    record = json.loads(json.dumps(S3_SAMPLE))
    record["s3"]["object"] = {"key": "a+b%2Bc/%C3%A9.txt", "versionId": "v1"}
    metadata = s3.event_from_record("uploads", record).metadata
    assert metadata["key"] == "a b+c/é.txt"
    assert metadata["versionId"] == "v1"
    assert "size" not in metadata and "eTag" not in metadata  # e.g. a delete event


def bucket_settings(moto: MotoEmulator, name: str) -> s3.S3Metadata:
    values = {"bucket": name, "region": "eu-west-1", **_aws.emulate({"moto": moto.endpoint})}
    metadata = s3.S3Metadata.model_validate(values)
    s3.provision(metadata)
    return metadata


def wait_for_notification(metadata: s3.S3Metadata, component: str) -> None:
    client = _aws.client("s3", metadata)
    deadline = time.monotonic() + 15
    while not any(
        entry.get("Id") == f"portabind-{component}"
        for entry in client.get_bucket_notification_configuration(Bucket=metadata.bucket).get(
            "QueueConfigurations", []
        )
    ):
        assert time.monotonic() < deadline, "the listener did not set up the notification"
        time.sleep(0.05)


def test_listener_delivers_created_objects_and_keeps_other_notifications(
    moto_server: MotoEmulator, unique_name: Callable[..., str], listen: Callable[..., Listener]
) -> None:
    metadata = bucket_settings(moto_server, unique_name())
    client = _aws.client("s3", metadata)
    sqs = _aws.client("sqs", metadata)
    other = sqs.create_queue(QueueName=unique_name("other"))["QueueUrl"]
    other_arn = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])
    existing = {
        "Id": "someone-else",
        "QueueArn": other_arn["Attributes"]["QueueArn"],
        "Events": ["s3:ObjectRemoved:*"],
    }
    client.put_bucket_notification_configuration(
        Bucket=metadata.bucket, NotificationConfiguration={"QueueConfigurations": [existing]}
    )
    listener = listen(s3.S3Input("uploads", metadata))
    wait_for_notification(metadata, "uploads")
    client.put_object(Bucket=metadata.bucket, Key="in box/a+b.txt", Body=b"hello")
    (event,) = listener.wait_for(1)  # the s3:TestEvent was skipped
    assert event.metadata["key"] == "in box/a+b.txt"
    assert event.metadata["bucket"] == metadata.bucket
    assert event.metadata["eventName"].startswith("ObjectCreated:")
    assert event.metadata["size"] == "5"
    assert event.metadata["eTag"].strip('"') == client.head_object(
        Bucket=metadata.bucket, Key="in box/a+b.txt"
    )["ETag"].strip('"')
    assert event.json()["s3"]["bucket"]["name"] == metadata.bucket
    configured = client.get_bucket_notification_configuration(Bucket=metadata.bucket)
    assert "someone-else" in [q["Id"] for q in configured["QueueConfigurations"]]


def test_listener_event_matches_the_lambda_event(
    moto_server: MotoEmulator, unique_name: Callable[..., str], listen: Callable[..., Listener]
) -> None:
    metadata = bucket_settings(moto_server, unique_name())
    listener = listen(s3.S3Input("uploads", metadata))
    wait_for_notification(metadata, "uploads")
    _aws.client("s3", metadata).put_object(Bucket=metadata.bucket, Key="test/key", Body=b"x")
    (local,) = listener.wait_for(1)
    cloud = s3.event_from_record("uploads", S3_SAMPLE)
    assert set(local.metadata) == set(cloud.metadata)
    assert local.metadata["key"] == cloud.metadata["key"]
    # moto leaves out a few fields S3 sends (userIdentity, requestParameters, sequencer, …);
    # everything it sends is where S3 puts it.
    local_record, cloud_record = local.json(), cloud.json()
    assert set(local_record) <= set(cloud_record)
    assert set(local_record["s3"]["object"]) <= set(cloud_record["s3"]["object"])


def test_failed_notification_is_delivered_again(
    moto_server: MotoEmulator, unique_name: Callable[..., str], listen: Callable[..., Listener]
) -> None:
    metadata = bucket_settings(moto_server, unique_name())
    failures: list[str] = []

    def handler(event: BindingEvent) -> None:
        if not failures:
            failures.append(event.metadata["key"])
            raise RuntimeError("handler failed")

    listener = listen(s3.S3Input("uploads", metadata), handler)
    wait_for_notification(metadata, "uploads")
    _aws.client("s3", metadata).put_object(Bucket=metadata.bucket, Key="flaky", Body=b"x")
    first, again = listener.wait_for(2)
    assert first.data == again.data
    assert [first.metadata["key"], again.metadata["key"]] == ["flaky", "flaky"]
    assert listener.failures == 1


def test_annotations_choose_the_events_and_filter_the_keys(
    moto_server: MotoEmulator, unique_name: Callable[..., str], listen: Callable[..., Listener]
) -> None:
    metadata = bucket_settings(moto_server, unique_name())
    annotations = s3.S3Annotations.model_validate(
        {"events": "s3:ObjectCreated:*, s3:ObjectRemoved:*", "prefix": "in/", "suffix": ".csv"}
    )
    listener = listen(s3.S3Input("uploads", metadata, annotations=annotations))
    wait_for_notification(metadata, "uploads")
    client = _aws.client("s3", metadata)
    client.put_object(Bucket=metadata.bucket, Key="out/skipped.csv", Body=b"x")
    client.put_object(Bucket=metadata.bucket, Key="in/skipped.txt", Body=b"x")
    client.put_object(Bucket=metadata.bucket, Key="in/a.csv", Body=b"x")
    client.delete_object(Bucket=metadata.bucket, Key="in/a.csv")
    created, removed = listener.wait_for(2)
    assert created.metadata["eventName"].startswith("ObjectCreated:")
    assert removed.metadata["eventName"].startswith("ObjectRemoved:")
    assert created.metadata["key"] == removed.metadata["key"] == "in/a.csv"
    time.sleep(1)
    assert len(listener.events) == 2
