"""bindings.aws.kinesis against a real moto server: PutRecord, the polling listener (order,
checkpoints, retry of a failed record), and the one record → BindingEvent mapping shared with
the Lambda runtime."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError

from portabind.annotations import binding_annotations
from portabind.bindings.aws import _aws, kinesis
from portabind.bindings.aws.kinesis import StreamAnnotations
from portabind.components import Component
from portabind.errors import BindingError, ComponentError
from portabind.events import BindingEvent, Metadata

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Listener  # tests/bindings/conftest.py

    from portabind.adapters.local.emulators.aws import MotoEmulator

EVENT = json.loads((Path(__file__).parents[2] / "events" / "kinesis-get-records.json").read_text())
SAMPLE = EVENT["Records"][0]


def test_lambda_record_maps_to_the_normalized_event() -> None:
    event = kinesis.event_from_record("clicks", SAMPLE)
    assert event.name == "clicks"
    assert event.data == b"Hello, this is a test."  # Lambda's base64 removed
    assert dict(event.metadata) == {
        "partitionKey": "1",
        "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
        "approximateArrivalTimestamp": "2018-12-17T22:10:50.987000Z",
        "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
        "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream",
    }


def test_data_that_looks_like_base64_is_decoded_once_only() -> None:
    record = json.loads(json.dumps(SAMPLE))
    record["kinesis"]["data"] = "YUdWc2JHOD0="  # base64 of the text "aGVsbG8=" (itself base64)
    assert kinesis.event_from_record("clicks", record).data == b"aGVsbG8="


@pytest.fixture
def stream(moto_server: MotoEmulator, unique_name: Callable[..., str]) -> kinesis.KinesisMetadata:
    values = {"streamName": unique_name(), "consumerName": "app", "region": "eu-west-1"}
    metadata = kinesis.KinesisMetadata.model_validate(
        {**values, **_aws.emulate({"moto": moto_server.endpoint})}
    )
    kinesis.provision(metadata)
    return metadata


def read_all(metadata: kinesis.KinesisMetadata) -> list[dict[str, Any]]:
    client = _aws.client("kinesis", metadata)
    records: list[dict[str, Any]] = []
    for shard in client.list_shards(StreamName=metadata.stream_name)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=metadata.stream_name,
            ShardId=shard["ShardId"],
            ShardIteratorType="TRIM_HORIZON",
        )["ShardIterator"]
        records += client.get_records(ShardIterator=iterator)["Records"]
    return records


def test_create_puts_the_bytes_with_the_partition_key(stream: kinesis.KinesisMetadata) -> None:
    output = kinesis.KinesisOutput("clicks", stream)
    response = output.invoke("create", b"\x00\xffraw", Metadata({"partitionKey": "user-7"}))
    assert response.data is None and response.metadata == {}
    (record,) = read_all(stream)
    assert record["Data"] == b"\x00\xffraw"  # bytes as given: no unquoting, no encoding
    assert record["PartitionKey"] == "user-7"


def test_create_without_partition_key_uses_a_random_uuid(
    stream: kinesis.KinesisMetadata,
) -> None:
    output = kinesis.KinesisOutput("clicks", stream)
    output.invoke("create", b"a", Metadata())
    output.invoke("create", b"b", Metadata())
    keys = [record["PartitionKey"] for record in read_all(stream)]
    assert len(set(keys)) == 2
    assert all(uuid.UUID(key).version == 4 for key in keys)


def test_the_components_partition_key_is_the_default_the_request_overrides(
    stream: kinesis.KinesisMetadata,
) -> None:
    keyed = kinesis.KinesisMetadata.model_validate(
        {**stream.model_dump(by_alias=True), "partitionKey": "tenant-1"}
    )
    output = kinesis.KinesisOutput("clicks", keyed)
    output.invoke("create", b"a", Metadata())
    output.invoke("create", b"b", Metadata({"partitionKey": "user-7"}))
    keys = {record["Data"]: record["PartitionKey"] for record in read_all(stream)}
    assert keys == {b"a": "tenant-1", b"b": "user-7"}


def test_create_on_a_missing_stream_fails(stream: kinesis.KinesisMetadata) -> None:
    missing = stream.model_copy(update={"stream_name": "pb-no-such-stream"})
    with pytest.raises(BindingError, match=r"ResourceNotFound|not found"):
        kinesis.KinesisOutput("clicks", missing).invoke("create", b"x", Metadata())


def test_listener_delivers_in_order_with_lambda_metadata(
    stream: kinesis.KinesisMetadata, listen: Callable[..., Listener]
) -> None:
    output = kinesis.KinesisOutput("clicks", stream)
    for text in ("one", "two", "three"):
        output.invoke("create", text.encode(), Metadata({"partitionKey": "p"}))
    events = listen(kinesis.KinesisInput("clicks", stream)).wait_for(3)
    assert [e.data for e in events] == [b"one", b"two", b"three"]
    first = events[0].metadata
    assert first["partitionKey"] == "p"
    assert first["eventSourceARN"].endswith(f":stream/{stream.stream_name}")
    assert first["eventID"] == f"shardId-000000000000:{first['sequenceNumber']}"
    assert first["approximateArrivalTimestamp"].endswith("Z")
    sequences = [int(e.metadata["sequenceNumber"]) for e in events]
    assert sequences == sorted(sequences)


def test_listener_event_matches_the_lambda_event(
    stream: kinesis.KinesisMetadata, listen: Callable[..., Listener]
) -> None:
    output = kinesis.KinesisOutput("clicks", stream)
    output.invoke("create", b"Hello, this is a test.", Metadata({"partitionKey": "1"}))
    (local,) = listen(kinesis.KinesisInput("clicks", stream)).wait_for(1)
    cloud = kinesis.event_from_record("clicks", SAMPLE)
    assert local.data == cloud.data
    assert set(local.metadata) == set(cloud.metadata)
    assert local.metadata["partitionKey"] == cloud.metadata["partitionKey"]


def test_failed_record_is_retried_before_the_ones_behind_it(
    stream: kinesis.KinesisMetadata, listen: Callable[..., Listener]
) -> None:
    output = kinesis.KinesisOutput("clicks", stream)
    for text in ("a", "b", "c"):
        output.invoke("create", text.encode(), Metadata({"partitionKey": "p"}))
    failed: list[bytes] = []

    def handler(event: BindingEvent) -> None:
        if event.data == b"b" and not failed:
            failed.append(event.data)
            raise RuntimeError("handler failed")

    listener = listen(kinesis.KinesisInput("clicks", stream), handler)
    events = listener.wait_for(4)
    assert [e.data for e in events] == [b"a", b"b", b"b", b"c"]
    assert events[1].metadata["sequenceNumber"] == events[2].metadata["sequenceNumber"]
    assert listener.failures == 1


def test_a_failing_shard_does_not_hold_up_the_others(
    moto_server: MotoEmulator, unique_name: Callable[..., str], listen: Callable[..., Listener]
) -> None:
    values = {"streamName": unique_name(), "consumerName": "app", "region": "us-east-1"}
    metadata = kinesis.KinesisMetadata.model_validate(
        {**values, **_aws.emulate({"moto": moto_server.endpoint})}
    )
    client = _aws.client("kinesis", metadata)
    client.create_stream(StreamName=metadata.stream_name, ShardCount=2)
    # Explicit hash keys put one record on each shard.
    client.put_record(
        StreamName=metadata.stream_name, Data=b"low", PartitionKey="x", ExplicitHashKey="1"
    )
    client.put_record(
        StreamName=metadata.stream_name, Data=b"high", PartitionKey="x", ExplicitHashKey=str(2**127)
    )

    def handler(event: BindingEvent) -> None:
        if event.data == b"low":
            raise RuntimeError("always fails")

    listener = listen(kinesis.KinesisInput("clicks", metadata), handler)
    listener.wait_for(3)
    assert b"high" in [e.data for e in listener.events]
    assert [e.data for e in listener.events].count(b"low") >= 2


def test_input_requires_a_consumer_name_and_mode_is_checked(
    stream: kinesis.KinesisMetadata,
) -> None:
    with pytest.raises(ComponentError, match="consumerName"):
        kinesis.KinesisInput("clicks", stream.model_copy(update={"consumer_name": None}))
    with pytest.raises(ValidationError):
        kinesis.KinesisMetadata.model_validate(
            {"streamName": "s", "region": "us-east-1", "mode": "bogus"}
        )
    assert kinesis.KinesisMetadata.required_names() == ["region", "streamName"]


def test_provision_is_idempotent(stream: kinesis.KinesisMetadata) -> None:
    kinesis.provision(stream)
    summary = _aws.client("kinesis", stream).describe_stream_summary(StreamName=stream.stream_name)
    assert summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"


def test_latest_skips_older_records_and_still_retries_a_failed_one(
    stream: kinesis.KinesisMetadata, listen: Callable[..., Listener]
) -> None:
    output = kinesis.KinesisOutput("clicks", stream)
    output.invoke("create", b"old", Metadata({"partitionKey": "p"}))
    failed: list[bytes] = []

    def handler(event: BindingEvent) -> None:
        if not failed:
            failed.append(event.data)
            raise RuntimeError("handler failed")

    latest = StreamAnnotations.model_validate({"startingPosition": "latest"})
    binding = kinesis.KinesisInput("clicks", stream, annotations=latest)
    listener = listen(binding, handler)
    time.sleep(2)  # the listener holds its LATEST iterators by now
    output.invoke("create", b"new", Metadata({"partitionKey": "p"}))
    # The first record read from LATEST fails: it comes again (no checkpoint yet to go by).
    assert [e.data for e in listener.wait_for(2)] == [b"new", b"new"]


def test_starting_position_must_be_latest_or_trim_horizon(
    stream: kinesis.KinesisMetadata,
) -> None:
    clicks = Component(
        "clicks",
        "bindings.aws.kinesis",
        "v1",
        Path("components/clicks.yaml"),
        {},
        {"startingPosition": "AT_TIMESTAMP"},
    )
    with pytest.raises(ComponentError, match="'LATEST' or 'TRIM_HORIZON'") as caught:
        binding_annotations(clicks, kinesis.binding)
    assert caught.value.field == "metadata.annotations.portabind.io/startingPosition"
    assert kinesis.KinesisInput("clicks", stream).start == "TRIM_HORIZON"
