"""`bindings.aws.kinesis`: Amazon Kinesis Data Streams, input and output
(Dapr's: components-contrib `bindings/aws/kinesis/kinesis.go`).

Output `create` is one PutRecord of the payload; request metadata `partitionKey` picks the
shard, else the component's `partitionKey`, else a random UUID. Dapr's metadata.yaml declares
the component key ("the partition key for the Kinesis stream") but its Go code reads only the
request's (a TODO there moves it to the component): portabind gives the key the meaning
Dapr documents.

The input listener polls GetRecords on every shard (`_shards.poll`): records arrive in order
per shard, and a record whose handler failed is retried, with back-off, before anything behind
it on its shard; the checkpoint lives in memory, so a new listener starts at the oldest record
still in the stream (TRIM_HORIZON), or at new records only with the annotation
`portabind.io/startingPosition: LATEST` (the Lambda trigger's default, see `_shards`). Both
of Dapr's `mode`s read this way locally (moto has no enhanced fan-out). Dapr itself ignores
handler errors; portabind follows Lambda, which retries from the first failed record, so the
handler sees the same delivery contract on both paths.

`event_from_record` is the one mapping from a record to a `BindingEvent`: the Lambda runtime
hands it the records of a Kinesis event, the listener turns each GetRecords entry into that
Lambda shape first (`lambda_record`).
"""

from __future__ import annotations

import base64
import uuid
from typing import TYPE_CHECKING, Any, Literal

from portabind.binding import Binding, OutputBinding
from portabind.bindings.aws import _aws, _shards
from portabind.bindings.aws._shards import StartingPosition, StreamAnnotations
from portabind.errors import BindingError, ComponentError
from portabind.events import BindingEvent, BindingResponse, Metadata, rfc3339
from portabind.metadata import setting

if TYPE_CHECKING:
    from collections.abc import Mapping


class KinesisMetadata(_aws.AwsServiceMetadata):
    binding_type = "bindings.aws.kinesis"

    stream_name: str = setting("streamName", description="stream name")
    consumer_name: str | None = setting(
        "consumerName", None, description="consumer (KCL application) name; input only"
    )
    mode: Literal["shared", "extended"] = setting(
        "mode", "shared", description="shared (polling) or extended (enhanced fan-out)"
    )
    partition_key: str | None = setting(
        "partitionKey", None, description="partition key of `create` when the request has none"
    )


def event_from_record(name: str, record: Mapping[str, Any]) -> BindingEvent:
    """The event for one record of a Lambda Kinesis event.

    `data` is the record's data with Lambda's base64 removed. Metadata: `partitionKey`,
    `sequenceNumber`, `approximateArrivalTimestamp` (RFC 3339), `eventID` and
    `eventSourceARN`."""
    kinesis = record["kinesis"]
    metadata = {
        "partitionKey": str(kinesis["partitionKey"]),
        "sequenceNumber": str(kinesis["sequenceNumber"]),
        "approximateArrivalTimestamp": rfc3339(float(kinesis["approximateArrivalTimestamp"])),
        "eventID": str(record["eventID"]),
        "eventSourceARN": str(record["eventSourceARN"]),
    }
    return BindingEvent(name, base64.b64decode(kinesis["data"]), Metadata(metadata))


def lambda_record(
    shard_id: str, record: Mapping[str, Any], *, stream_arn: str, region: str
) -> dict[str, Any]:
    """A GetRecords entry (boto3's shape) as Lambda would deliver it."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": record["SequenceNumber"],
            "data": base64.b64encode(record["Data"]).decode("ascii"),
            "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"].timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{record['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


class KinesisOutput(OutputBinding[KinesisMetadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: KinesisMetadata) -> None:
        super().__init__(name, metadata)
        self._kinesis = _aws.client("kinesis", metadata)

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._kinesis.put_record(
                StreamName=self.metadata.stream_name,
                Data=data,
                PartitionKey=metadata.get("partitionKey")
                or self.metadata.partition_key
                or str(uuid.uuid4()),
            )
        except (BotoCoreError, ClientError) as error:
            raise BindingError(self.name, "create", str(error)) from error
        return BindingResponse()


class _KinesisStream:
    """`_shards.Stream` over the Kinesis API."""

    def __init__(self, name: str, client: Any, stream_name: str, region: str) -> None:
        self._name = name
        self._kinesis = client
        self._stream = stream_name
        self._region = region
        self._arn: str | None = None

    def shard_ids(self) -> list[str]:
        if self._arn is None:
            summary = self._kinesis.describe_stream_summary(StreamName=self._stream)
            self._arn = str(summary["StreamDescriptionSummary"]["StreamARN"])
        ids: list[str] = []
        request: dict[str, Any] = {"StreamName": self._stream}
        while True:
            page = self._kinesis.list_shards(**request)
            ids += [shard["ShardId"] for shard in page["Shards"]]
            if not page.get("NextToken"):
                return ids
            request = {"NextToken": page["NextToken"]}

    def iterator(self, shard_id: str, kind: str, sequence: str | None) -> str:
        position = {"StartingSequenceNumber": sequence} if sequence is not None else {}
        got = self._kinesis.get_shard_iterator(
            StreamName=self._stream, ShardId=shard_id, ShardIteratorType=kind, **position
        )
        return str(got["ShardIterator"])

    def read(self, iterator: str) -> tuple[list[dict[str, Any]], str | None]:
        got = self._kinesis.get_records(ShardIterator=iterator, Limit=_shards.BATCH)
        return got["Records"], got.get("NextShardIterator")

    def sequence(self, record: dict[str, Any]) -> str:
        return str(record["SequenceNumber"])

    def event(self, shard_id: str, record: dict[str, Any]) -> BindingEvent:
        assert self._arn is not None  # shard_ids() ran before any record was read
        shaped = lambda_record(shard_id, record, stream_arn=self._arn, region=self._region)
        return event_from_record(self._name, shaped)


class KinesisInput(_shards.StreamInput[KinesisMetadata]):
    def __init__(
        self,
        name: str,
        metadata: KinesisMetadata,
        *,
        annotations: StreamAnnotations | None = None,
    ) -> None:
        super().__init__(name, metadata, annotations=annotations)
        if not metadata.consumer_name:
            # Dapr requires it for input (the KCL application / EFO consumer name).
            raise ComponentError(
                "consumerName is required for an input binding",
                component=name,
                field="consumerName",
                hint="name the consumer, e.g. consumerName: my-app",
            )

    def stream(self) -> _shards.Stream:
        client = _aws.client("kinesis", self.metadata)
        return _KinesisStream(self.name, client, self.metadata.stream_name, self.metadata.region)


def provision(metadata: KinesisMetadata) -> None:
    """Create the stream (one shard) if it does not exist and wait until it is active."""
    from botocore.exceptions import ClientError

    kinesis = _aws.client("kinesis", metadata)
    try:
        kinesis.create_stream(StreamName=metadata.stream_name, ShardCount=1)
    except ClientError as error:
        if _aws.error_code(error) != "ResourceInUseException":  # it exists already
            raise
    kinesis.get_waiter("stream_exists").wait(
        StreamName=metadata.stream_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )


binding = Binding(
    metadata=KinesisMetadata,
    annotations=StreamAnnotations,
    output=KinesisOutput,
    input=KinesisInput,
    emulator="moto",
    emulate=_aws.emulate,
    provision=provision,
)

#: What the kinesis and dynamodb listeners read, and the AWS build with them (the Lambda
#: stream triggers' `StartingPosition`).
__all__ = ["StartingPosition", "StreamAnnotations", "binding"]
