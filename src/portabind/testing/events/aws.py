"""AWS Lambda events, as `sam local generate-event` writes them and Lambda delivers them.

Each function returns the event as the dict Lambda hands a handler: one record per payload
given, ids unique per record, ARNs in `REGION` and `ACCOUNT`. A payload is bytes, text, or
anything JSON-serialisable (sent as JSON), as `app.invoke_binding` takes it.

```python
from portabind.testing.events import aws

event = aws.sqs({"id": 1}, {"id": 2}, attributes={"tenant": "acme"})
```
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, urlencode

from portabind.events import to_bytes

if TYPE_CHECKING:
    from collections.abc import Mapping

REGION = "us-east-1"
ACCOUNT = "123456789012"


def _text(payload: Any) -> str:
    """A payload as the text a text-only field (an SQS body, an SNS message) carries."""
    return to_bytes(payload).decode("utf-8")


def _b64(payload: Any) -> str:
    return base64.b64encode(to_bytes(payload)).decode("ascii")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def sqs(
    *bodies: Any, queue: str = "MyQueue", attributes: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An SQS batch, one record per body; `attributes` become String message attributes of
    each record."""
    records = []
    for body in bodies:
        text = _text(body)
        sent = str(_now_ms())
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": base64.b64encode(uuid.uuid4().bytes * 2).decode("ascii"),
                "body": text,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": sent,
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": sent,
                },
                "messageAttributes": {
                    key: {
                        "stringValue": value,
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": "String",
                    }
                    for key, value in (attributes or {}).items()
                },
                "md5OfBody": hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


def kinesis(
    *payloads: Any, stream: str = "MyStream", partition_key: str = "partitionKey-03"
) -> dict[str, Any]:
    """A Kinesis batch, one record per payload (base64 in `data`, as Lambda sends it), with
    increasing sequence numbers on one shard."""
    base = 49590338271490256608559692538361571095921575989136588800 + _now_ms()
    records = []
    for index, payload in enumerate(payloads):
        sequence = str(base + index)
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": partition_key,
                    "sequenceNumber": sequence,
                    "data": _b64(payload),
                    "approximateArrivalTimestamp": time.time(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000006:{sequence}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/lambda-role",
                "awsRegion": REGION,
                "eventSourceARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{stream}",
            }
        )
    return {"Records": records}


def attribute_value(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value (the stream's JSON)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float | Decimal):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes):
        return {"B": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {"M": {k: attribute_value(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [attribute_value(v) for v in value]}
    raise TypeError(f"no DynamoDB attribute value for {type(value).__name__}")


def dynamodb(
    *new_images: Mapping[str, Any],
    table: str = "ExampleTableWithStream",
    key: str = "id",
    event_name: str = "INSERT",
) -> dict[str, Any]:
    """A DynamoDB stream batch, one record per new item image (plain values, converted to
    attribute values); `key` names the item's key attribute."""
    records = []
    for index, image in enumerate(new_images):
        item = {name: attribute_value(value) for name, value in image.items()}
        records.append(
            {
                "eventID": uuid.uuid4().hex,
                "eventName": event_name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "dynamodb": {
                    "ApproximateCreationDateTime": int(time.time()),
                    "Keys": {key: item[key]} if key in item else {},
                    "NewImage": item,
                    "SequenceNumber": str(_now_ms() * 100 + index),
                    "SizeBytes": len(to_bytes(dict(image))),
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
                "eventSourceARN": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"
                "/stream/2015-06-27T00:48:05.899",
            }
        )
    return {"Records": records}


def sns(
    *messages: Any,
    topic: str = "ExampleTopic",
    subject: str | None = None,
    attributes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An SNS notification per message; `attributes` become String message attributes."""
    arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{topic}"
    return {
        "Records": [
            {
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{arn}:{uuid.uuid4()}",
                "EventSource": "aws:sns",
                "Sns": {
                    "SignatureVersion": "1",
                    "Timestamp": _iso(),
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "EXAMPLE",
                    "MessageId": str(uuid.uuid4()),
                    "Message": _text(message),
                    "MessageAttributes": {
                        key: {"Type": "String", "Value": value}
                        for key, value in (attributes or {}).items()
                    },
                    "Type": "Notification",
                    "UnsubscribeUrl": "EXAMPLE",
                    "TopicArn": arn,
                    "Subject": subject,
                },
            }
            for message in messages
        ]
    }


def s3(
    *keys: str, bucket: str = "example-bucket", size: int = 1024, event_name: str = "Put"
) -> dict[str, Any]:
    """An S3 notification, one `ObjectCreated:<event_name>` record per object key (which S3
    URL-encodes in notifications)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": _iso(),
                "eventName": f"ObjectCreated:{event_name}",
                "userIdentity": {"principalId": "EXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": "EXAMPLE123456789",
                    "x-amz-id-2": "EXAMPLE123/5678abcdefghijklambdaisawesome/"
                    "mnopqrstuvwxyzABCDEFGH",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "testConfigRule",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "EXAMPLE"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": "0123456789abcdef0123456789abcdef",
                        "sequencer": "0A1B2C3D4E5F678901",
                    },
                },
            }
            for key in keys
        ]
    }


def s3_eventbridge(key: str, *, bucket: str = "example-bucket", size: int = 1024) -> dict[str, Any]:
    """An EventBridge "Object Created" event of an S3 bucket with EventBridge notifications
    on (the key as is: EventBridge does not URL-encode it)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": _iso()[:19] + "Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": key,
                "size": size,
                "etag": "0123456789abcdef0123456789abcdef",
                "sequencer": "0A1B2C3D4E5F678901",
            },
            "request-id": "EXAMPLE123456789",
            "requester": ACCOUNT,
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }


def schedule(
    schedule_name: str = "MySchedule", scheduled_time: datetime | None = None
) -> dict[str, Any]:
    """What an EventBridge Scheduler schedule of a cron component sends: the `Input` the
    built template gives it (the scheduler's `scheduledTime`, `executionId` and
    `scheduleArn`)."""
    moment = scheduled_time or datetime.now(timezone.utc)
    return {
        "scheduledTime": moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "executionId": str(uuid.uuid4()),
        "scheduleArn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{schedule_name}",
    }


def http(
    method: str = "POST",
    path: str = "/",
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API request (payload format 2.0). The body is text unless
    `base64_body` (binary bodies), as API Gateway sends it."""
    raw = None if body is None else to_bytes(body)
    request_id = base64.b32encode(uuid.uuid4().bytes[:10]).decode("ascii")
    all_headers = {"content-type": "application/json", **(headers or {})}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(dict(query or {})),
        "headers": {k.lower(): v for k, v in all_headers.items()},
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "api-id",
            "domainName": "id.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "id",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.168.0.1",
                "userAgent": "agent",
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": datetime.now(timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": _now_ms(),
        },
        "isBase64Encoded": base64_body,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if raw is not None:
        event["body"] = base64.b64encode(raw).decode("ascii") if base64_body else raw.decode()
    return event


def kafka(
    *values: Any,
    topic: str = "mytopic",
    partition: int = 0,
    key: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    self_managed: bool = False,
) -> dict[str, Any]:
    """An MSK (or, with `self_managed`, a self-managed Kafka) batch, one record per value on
    one partition with increasing offsets; value and key in base64 and headers as byte
    lists, as Lambda sends them."""
    first_offset = _now_ms() % 1_000_000
    records = [
        {
            "topic": topic,
            "partition": partition,
            "offset": first_offset + index,
            "timestamp": _now_ms(),
            "timestampType": "CREATE_TIME",
            "key": None if key is None else _b64(key),
            "value": _b64(value),
            "headers": [
                {name: list(text.encode("utf-8"))} for name, text in (headers or {}).items()
            ],
        }
        for index, value in enumerate(values)
    ]
    event: dict[str, Any] = {
        "bootstrapServers": "b-1.demo-cluster.kafka.us-east-1.amazonaws.com:9092",
        "records": {f"{topic}-{partition}": records},
    }
    if self_managed:
        return {"eventSource": "SelfManagedKafka", **event}
    cluster = f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/demo-cluster/{uuid.uuid4()}-1"
    return {"eventSource": "aws:kafka", "eventSourceArn": cluster, **event}


def mq(
    *bodies: Any, queue: str = "pizzaQueue", headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An Amazon MQ for RabbitMQ batch, one message per body (base64 in `data`); string
    `headers` arrive as byte lists, as Lambda sends them."""
    broker = f"arn:aws:mq:{REGION}:{ACCOUNT}:broker:pizzaBroker:b-{uuid.uuid4()}"
    messages = [
        {
            "basicProperties": {
                "contentType": "text/plain",
                "contentEncoding": None,
                "headers": {
                    name: {"bytes": list(text.encode("utf-8"))}
                    for name, text in (headers or {}).items()
                },
                "deliveryMode": 1,
                "priority": 34,
                "correlationId": None,
                "replyTo": None,
                "expiration": "60000",
                "messageId": str(uuid.uuid4()),
                "timestamp": "Jan 1, 1970, 12:33:41 AM",
                "type": None,
                "userId": "AIDACKCEVSQ6C2EXAMPLE",
                "appId": None,
                "clusterId": None,
                "bodySize": len(to_bytes(body)),
            },
            "redelivered": False,
            "data": _b64(body),
        }
        for body in bodies
    ]
    return {
        "eventSource": "aws:rmq",
        "eventSourceArn": broker,
        "rmqMessagesByQueue": {f"{queue}::/": messages},
    }


def iot(payload: Any, topic: str = "topic/test") -> dict[str, Any]:
    """What the IoT topic rule of an mqtt3 component sends: the message base64-encoded beside
    the topic it was published to (the rule's SQL in the built template)."""
    return {"data": _b64(payload), "topic": topic}
