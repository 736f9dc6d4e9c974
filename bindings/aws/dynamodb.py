"""`bindings.aws.dynamodb`: Amazon DynamoDB, output (Dapr's: components-contrib
`bindings/aws/dynamodb/dynamodb.go`) and a portabind input on the table's stream.

Output `create` writes the payload, a JSON object, with PutItem; the object becomes a DynamoDB
item exactly as Dapr's Go code makes it (`json.Unmarshal` into `interface{}`, then
`dynamodbattribute.MarshalMap` with its defaults): every number is a float64 written in plain
decimal (`N`), empty strings, lists and objects become `NULL`, and an empty key is an error.

The input is an extension (Dapr has none): the listener polls the table's DynamoDB stream
(`_shards.poll`, in order per shard, a failed record retried before the ones behind it, from
the oldest record for a new listener unless `portabind.io/startingPosition` says LATEST). In
the cloud the same component becomes a Lambda `DynamoDB` trigger. `event_from_record` is the
one mapping from a stream record to a `BindingEvent`: the Lambda runtime hands it the records
of a DynamoDB event, the listener turns each GetRecords entry into that Lambda shape first
(`lambda_record`).

`provision` (emulator only) creates the table with the string partition key `id`
(`KEY_ATTRIBUTE`) and a NEW_AND_OLD_IMAGES stream, and turns the stream on for an existing
table.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from portabind.binding import Binding, OutputBinding
from portabind.bindings.aws import _aws, _shards
from portabind.errors import BindingError, ComponentError
from portabind.events import BindingEvent, BindingResponse, Metadata, compact_json, rfc3339
from portabind.metadata import setting

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The partition key of a table `provision` creates (a string attribute).
KEY_ATTRIBUTE = "id"
#: The stream view `provision` turns on: the trigger then sees old and new images.
STREAM_VIEW = "NEW_AND_OLD_IMAGES"


class DynamoDBMetadata(_aws.AwsServiceMetadata):
    binding_type = "bindings.aws.dynamodb"

    table: str = setting("table", description="table name")


def _number(value: float) -> str:
    """Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest digits, never an exponent."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def attribute(value: Any) -> dict[str, Any]:
    """One JSON value as a DynamoDB AttributeValue, by `dynamodbattribute.Marshal`'s rules."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value} if value else {"NULL": True}
    if isinstance(value, int | float):
        if math.isinf(value):  # Go's json.Unmarshal refuses a number beyond float64
            raise ValueError(f"number {value} is out of the float64 range")
        return {"N": _number(float(value))}
    if isinstance(value, list):
        return {"L": [attribute(item) for item in value]} if value else {"NULL": True}
    if isinstance(value, dict):
        if "" in value:
            raise ValueError("map key cannot be empty")
        return (
            {"M": {key: attribute(item) for key, item in value.items()}}
            if value
            else {"NULL": True}
        )
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name}")


def item(data: bytes) -> dict[str, Any]:
    """The PutItem `Item` for a JSON object. Numbers are parsed as Go's float64 would be."""
    value = json.loads(data, parse_int=float, parse_constant=_refuse_constant)
    if not isinstance(value, dict):
        raise ValueError("data must be a JSON object")
    return {key: attribute(nested) for key, nested in value.items()} if value else {}


def event_from_record(name: str, record: Mapping[str, Any]) -> BindingEvent:
    """The event for one record of a Lambda DynamoDB event.

    A stream record has no payload field, so `data` is the whole record as JSON (DynamoDB
    typed attributes as the stream has them). Metadata: `eventID`, `eventName` (INSERT,
    MODIFY, REMOVE), `sequenceNumber`, `eventSourceARN` and `approximateCreationDateTime`
    (RFC 3339)."""
    change = record["dynamodb"]
    metadata = {
        "eventID": str(record["eventID"]),
        "eventName": str(record["eventName"]),
        "sequenceNumber": str(change["SequenceNumber"]),
        "eventSourceARN": str(record["eventSourceARN"]),
    }
    if change.get("ApproximateCreationDateTime") is not None:
        created = float(change["ApproximateCreationDateTime"])
        metadata["approximateCreationDateTime"] = rfc3339(created)
    data = compact_json(record)
    return BindingEvent(name, data, Metadata(metadata))


def lambda_record(record: Mapping[str, Any], *, stream_arn: str) -> dict[str, Any]:
    """A DynamoDB Streams GetRecords entry (boto3's shape) as Lambda would deliver it: the
    creation time as Unix seconds (the API's own unit, rounded down to the second) and the
    stream's ARN added."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if created is not None:
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    shaped = {
        key: record[key]
        for key in ("eventID", "eventName", "eventVersion", "eventSource", "awsRegion")
        if key in record
    }
    shaped["dynamodb"] = change
    if "userIdentity" in record:  # TTL deletions carry the service's identity
        shaped["userIdentity"] = record["userIdentity"]
    shaped["eventSourceARN"] = stream_arn
    return shaped


class DynamoDBOutput(OutputBinding[DynamoDBMetadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: DynamoDBMetadata) -> None:
        super().__init__(name, metadata)
        self._dynamodb = _aws.client("dynamodb", metadata)

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        try:
            put = item(data)
        except (ValueError, UnicodeDecodeError) as error:
            raise BindingError(self.name, "create", f"cannot marshal item: {error}") from None
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._dynamodb.put_item(TableName=self.metadata.table, Item=put)
        except (BotoCoreError, ClientError) as error:
            raise BindingError(self.name, "create", str(error)) from error
        return BindingResponse()


class _TableStream:
    """`_shards.Stream` over the DynamoDB Streams API, on the table's latest stream."""

    def __init__(self, name: str, metadata: DynamoDBMetadata) -> None:
        self._name = name
        self._table = metadata.table
        self._dynamodb = _aws.client("dynamodb", metadata)
        self._streams = _aws.client("dynamodbstreams", metadata)
        self._arn = ""

    def _stream_arn(self) -> str:
        described = self._dynamodb.describe_table(TableName=self._table)["Table"]
        arn = described.get("LatestStreamArn")
        if not arn or not described.get("StreamSpecification", {}).get("StreamEnabled"):
            raise ComponentError(
                f"table {self._table!r} has no stream to read changes from",
                component=self._name,
                field="table",
                hint=f"enable DynamoDB Streams on the table (view type {STREAM_VIEW})",
            )
        return str(arn)

    def shard_ids(self) -> list[str]:
        if not self._arn:
            self._arn = self._stream_arn()
        ids: list[str] = []
        request: dict[str, Any] = {"StreamArn": self._arn}
        while True:
            described = self._streams.describe_stream(**request)["StreamDescription"]
            ids += [shard["ShardId"] for shard in described["Shards"]]
            if not described.get("LastEvaluatedShardId"):
                return ids
            request["ExclusiveStartShardId"] = described["LastEvaluatedShardId"]

    def iterator(self, shard_id: str, kind: str, sequence: str | None) -> str:
        position = {"SequenceNumber": sequence} if sequence is not None else {}
        got = self._streams.get_shard_iterator(
            StreamArn=self._arn, ShardId=shard_id, ShardIteratorType=kind, **position
        )
        return str(got["ShardIterator"])

    def read(self, iterator: str) -> tuple[list[dict[str, Any]], str | None]:
        got = self._streams.get_records(ShardIterator=iterator, Limit=_shards.BATCH)
        return got["Records"], got.get("NextShardIterator")

    def sequence(self, record: dict[str, Any]) -> str:
        return str(record["dynamodb"]["SequenceNumber"])

    def event(self, shard_id: str, record: dict[str, Any]) -> BindingEvent:
        return event_from_record(self._name, lambda_record(record, stream_arn=self._arn))


class DynamoDBInput(_shards.StreamInput[DynamoDBMetadata]):
    """A missing table is waited for (logged, retried); a table without a stream is a
    component error that ends the listener. `portabind.io/startingPosition` as for Kinesis."""

    def stream(self) -> _shards.Stream:
        return _TableStream(self.name, self.metadata)


def provision(metadata: DynamoDBMetadata) -> None:
    """Create the table (partition key `id`, a stream) or turn on the stream of an existing
    table."""
    from botocore.exceptions import ClientError

    dynamodb = _aws.client("dynamodb", metadata)
    stream = {"StreamEnabled": True, "StreamViewType": STREAM_VIEW}
    try:
        dynamodb.create_table(
            TableName=metadata.table,
            KeySchema=[{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": KEY_ATTRIBUTE, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification=stream,
        )
    except ClientError as error:
        if _aws.error_code(error) != "ResourceInUseException":  # it exists already
            raise
        table = dynamodb.describe_table(TableName=metadata.table)["Table"]
        if not table.get("StreamSpecification", {}).get("StreamEnabled"):
            dynamodb.update_table(TableName=metadata.table, StreamSpecification=stream)
    dynamodb.get_waiter("table_exists").wait(
        TableName=metadata.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )


binding = Binding(
    metadata=DynamoDBMetadata,
    annotations=_shards.StreamAnnotations,
    output=DynamoDBOutput,
    input=DynamoDBInput,
    emulator="moto",
    emulate=_aws.emulate,
    provision=provision,
)
