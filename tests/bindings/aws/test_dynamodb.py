"""bindings.aws.dynamodb against a real moto server: PutItem with Dapr's attribute
marshalling, the stream listener, and the one stream record → BindingEvent mapping shared
with the Lambda runtime."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from portabind.bindings.aws import _aws, dynamodb
from portabind.bindings.aws.kinesis import StreamAnnotations
from portabind.errors import BindingError, ComponentError
from portabind.events import BindingEvent, Metadata

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Listener  # tests/bindings/conftest.py

    from portabind.adapters.local.emulators.aws import MotoEmulator

EVENT = json.loads((Path(__file__).parents[2] / "events" / "dynamodb-update.json").read_text())
SAMPLE = EVENT["Records"][0]


def test_json_is_marshalled_as_daprs_go_code_does() -> None:
    data = {
        "id": "a-1",
        "int": 5,
        "float": 1.5,
        "big": 12345678901234567890,
        "huge": 1e21,
        "tiny": 1.5e-7,
        "yes": True,
        "none": None,
        "empty": "",
        "list": [1, "x", "", [], {}],
        "emptyList": [],
        "map": {"nested": {"deep": 2.0}},
        "emptyMap": {},
    }
    assert dynamodb.item(json.dumps(data).encode()) == {
        "id": {"S": "a-1"},
        "int": {"N": "5"},
        "float": {"N": "1.5"},
        "big": {"N": "12345678901234567000"},  # a float64, as Go parses every JSON number
        "huge": {"N": "1000000000000000000000"},  # plain decimal, never an exponent
        "tiny": {"N": "0.00000015"},
        "yes": {"BOOL": True},
        "none": {"NULL": True},
        "empty": {"NULL": True},
        "list": {"L": [{"N": "1"}, {"S": "x"}, {"NULL": True}, {"NULL": True}, {"NULL": True}]},
        "emptyList": {"NULL": True},
        "map": {"M": {"nested": {"M": {"deep": {"N": "2"}}}}},
        "emptyMap": {"NULL": True},
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "Expecting value"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b'{"id": "x", "m": {"": 1}}', "map key cannot be empty"),
        (b'{"id": "x", "n": 1e400}', "float64"),
        (b'{"id": "x", "n": NaN}', "NaN"),
    ],
)
def test_data_that_dapr_cannot_marshal_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dynamodb.item(data)


@pytest.fixture
def table(moto_server: MotoEmulator, unique_name: Callable[..., str]) -> dynamodb.DynamoDBMetadata:
    values = {"table": unique_name(), "region": "eu-west-1"}
    metadata = dynamodb.DynamoDBMetadata.model_validate(
        {**values, **_aws.emulate({"moto": moto_server.endpoint})}
    )
    dynamodb.provision(metadata)
    return metadata


def stored(metadata: dynamodb.DynamoDBMetadata, key: str) -> dict[str, Any] | None:
    got = _aws.client("dynamodb", metadata).get_item(
        TableName=metadata.table, Key={"id": {"S": key}}
    )
    found: dict[str, Any] | None = got.get("Item")
    return found


def test_create_puts_the_item_and_overwrites_the_same_key(
    table: dynamodb.DynamoDBMetadata,
) -> None:
    output = dynamodb.DynamoDBOutput("orders", table)
    response = output.invoke("create", b'{"id": "o-1", "qty": 2, "note": ""}', Metadata())
    assert response.data is None and response.metadata == {}
    assert stored(table, "o-1") == {"id": {"S": "o-1"}, "qty": {"N": "2"}, "note": {"NULL": True}}
    output.invoke("create", b'{"id": "o-1", "qty": 3}', Metadata())
    assert stored(table, "o-1") == {"id": {"S": "o-1"}, "qty": {"N": "3"}}


def test_create_errors(table: dynamodb.DynamoDBMetadata) -> None:
    output = dynamodb.DynamoDBOutput("orders", table)
    with pytest.raises(BindingError, match="JSON object"):
        output.invoke("create", b"[]", Metadata())
    with pytest.raises(BindingError, match=r"ValidationException|key"):
        output.invoke("create", b'{"other": 1}', Metadata())  # the table's key is missing
    missing = table.model_copy(update={"table": "pb-no-such-table"})
    with pytest.raises(BindingError, match="ResourceNotFound"):
        dynamodb.DynamoDBOutput("orders", missing).invoke("create", b'{"id": "x"}', Metadata())


def test_lambda_record_maps_to_the_normalized_event() -> None:
    event = dynamodb.event_from_record("changes", SAMPLE)
    assert json.loads(event.data) == SAMPLE  # no payload field: the record as JSON
    assert dict(event.metadata) == {
        "eventID": "c4ca4238a0b923820dcc509a6f75849b",
        "eventName": "INSERT",
        "sequenceNumber": "4421584500000000017450439091",
        "eventSourceARN": SAMPLE["eventSourceARN"],
        "approximateCreationDateTime": "2015-04-09T00:00:00Z",
    }


def test_listener_delivers_insert_modify_remove_in_order(
    table: dynamodb.DynamoDBMetadata, listen: Callable[..., Listener]
) -> None:
    output = dynamodb.DynamoDBOutput("orders", table)
    output.invoke("create", b'{"id": "o-1", "qty": 1}', Metadata())
    output.invoke("create", b'{"id": "o-1", "qty": 2}', Metadata())
    _aws.client("dynamodb", table).delete_item(TableName=table.table, Key={"id": {"S": "o-1"}})
    events = listen(dynamodb.DynamoDBInput("changes", table)).wait_for(3)
    assert [e.metadata["eventName"] for e in events] == ["INSERT", "MODIFY", "REMOVE"]
    modify = events[1].json()
    assert modify["dynamodb"]["NewImage"]["qty"] == {"N": "2"}
    assert modify["dynamodb"]["OldImage"]["qty"] == {"N": "1"}
    assert modify["eventSourceARN"] == events[1].metadata["eventSourceARN"]
    assert f":table/{table.table}/stream/" in modify["eventSourceARN"]
    assert modify["dynamodb"]["SequenceNumber"] == events[1].metadata["sequenceNumber"]


def test_listener_event_matches_the_lambda_event(
    table: dynamodb.DynamoDBMetadata, listen: Callable[..., Listener]
) -> None:
    dynamodb.DynamoDBOutput("orders", table).invoke(
        "create", b'{"id": "101", "Message": "New item!"}', Metadata()
    )
    (local,) = listen(dynamodb.DynamoDBInput("changes", table)).wait_for(1)
    cloud = dynamodb.event_from_record("changes", SAMPLE)
    assert set(local.metadata) == set(cloud.metadata)
    local_record, cloud_record = local.json(), cloud.json()
    assert set(local_record) == set(cloud_record)
    assert set(local_record["dynamodb"]) == set(cloud_record["dynamodb"])
    assert local_record["dynamodb"]["NewImage"] == {
        "id": {"S": "101"},
        "Message": {"S": "New item!"},
    }
    assert isinstance(local_record["dynamodb"]["ApproximateCreationDateTime"], int)


def test_failed_record_is_delivered_again_before_the_next(
    table: dynamodb.DynamoDBMetadata, listen: Callable[..., Listener]
) -> None:
    output = dynamodb.DynamoDBOutput("orders", table)
    for key in ("a", "b"):
        output.invoke("create", json.dumps({"id": key}).encode(), Metadata())
    failed: list[str] = []

    def handler(event: BindingEvent) -> None:
        if not failed:
            failed.append(event.metadata["eventID"])
            raise RuntimeError("handler failed")

    events = listen(dynamodb.DynamoDBInput("changes", table), handler).wait_for(3)
    keys = [e.json()["dynamodb"]["Keys"]["id"]["S"] for e in events]
    assert keys == ["a", "a", "b"]
    assert events[0].metadata["eventID"] == events[1].metadata["eventID"] == failed[0]


def test_listener_needs_a_stream(
    table: dynamodb.DynamoDBMetadata, unique_name: Callable[..., str]
) -> None:
    plain = table.model_copy(update={"table": unique_name("plain")})
    _aws.client("dynamodb", plain).create_table(
        TableName=plain.table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(ComponentError, match="no stream"):
        dynamodb.DynamoDBInput("changes", plain).listen(lambda event: None, threading.Event())
    dynamodb.provision(plain)  # turns the stream on for an existing table
    described = _aws.client("dynamodb", plain).describe_table(TableName=plain.table)["Table"]
    assert described["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }


def test_metadata_requires_table_and_region() -> None:
    assert dynamodb.DynamoDBMetadata.required_names() == ["region", "table"]


def test_listener_waits_for_a_table_created_later(
    table: dynamodb.DynamoDBMetadata,
    unique_name: Callable[..., str],
    listen: Callable[..., Listener],
) -> None:
    later = table.model_copy(update={"table": unique_name("later")})
    listener = listen(dynamodb.DynamoDBInput("changes", later))
    time.sleep(1.5)  # the listener has found no table at least once
    dynamodb.provision(later)
    dynamodb.DynamoDBOutput("orders", later).invoke("create", b'{"id": "late"}', Metadata())
    (event,) = listener.wait_for(1)
    assert event.metadata["eventName"] == "INSERT"


def test_latest_delivers_only_changes_after_the_start(
    table: dynamodb.DynamoDBMetadata, listen: Callable[..., Listener]
) -> None:
    output = dynamodb.DynamoDBOutput("orders", table)
    output.invoke("create", b'{"id": "before"}', Metadata())
    latest = StreamAnnotations.model_validate({"startingPosition": "LATEST"})
    binding = dynamodb.DynamoDBInput("changes", table, annotations=latest)
    listener = listen(binding)
    time.sleep(2)  # the listener holds its LATEST iterators by now
    output.invoke("create", b'{"id": "after"}', Metadata())
    (event,) = listener.wait_for(1)
    assert event.json()["dynamodb"]["Keys"] == {"id": {"S": "after"}}
    time.sleep(1.5)
    assert len(listener.events) == 1
