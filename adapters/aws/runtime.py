"""The AWS Lambda side of a built app: what the generated entry module calls.

`Function.load` imports the bundled app and components once per execution environment (cold
start) and attaches a `Runtime`; SAM hands each secret to the function as the environment
variable `secret_env_name` names, which the runtime's resolver reads before any secret store.

`Function.<trigger>(component)` returns the Lambda handler for one input binding. Every
record is normalized by its binding module's mapping (the one the local listener uses) and
handed to the app; the handler's outcome becomes Lambda's reply:

- SQS: every record runs and only the failed ones are reported in `batchItemFailures`; SQS
  deletes the rest and redelivers the failures after their visibility timeout. When every
  record failed the invocation raises (as Powertools' `BatchProcessor` does), so the batch
  counts as a failed invocation; SQS redelivers all of it either way.
- Kinesis, DynamoDB streams, Kafka in provisioned mode (`portabind.io/provisionedPollers`):
  records run in order and the first
  failure stops the batch (per Kafka partition): Lambda retries from the reported record, so
  running the records behind it would only run them twice. Kafka without partial responses
  (on-demand mode, where Lambda ignores them) raises instead, and Lambda retries the batch.
- SNS, S3, EventBridge, Scheduler, IoT (asynchronous invokes) and Amazon MQ: a failure raises,
  so Lambda retries the event (async: per EventInvokeConfig; MQ: the whole batch).
- HTTP API: the handler's return value is the response (`bindings.http.http_reply`); a
  failure raises and API Gateway answers 500.

Every failed record is logged with its id and traceback through this module's logger, which
propagates to the root logger the Lambda runtime sends to the function's log. An event that is
not what the function's trigger delivers (an SNS event at the SQS function) raises
`WrongEvent` before any handler runs, rather than passing as an empty success.

Import cost is cold-start latency: this module imports only the core; binding mappings are
imported when a handler is made. Per-record cost is batch latency: a record's handler and
its parameters are worked out once, when the app registers it, and its metadata is made
only if the handler reads it.
"""

from __future__ import annotations

import base64
import functools
import logging
from typing import TYPE_CHECKING, Any

from portabind.bundled import BundledFunction
from portabind.errors import PortabindError
from portabind.events import BindingEvent, Metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from portabind.app import App
    from portabind.bindings.kafka import KafkaMetadata

    Handler = Callable[[dict[str, Any], Any], Any]

log = logging.getLogger(__name__)
#: What the template's ScheduleV2 `Input` carries from the scheduler's context.
SCHEDULER_KEYS = ("scheduledTime", "executionId", "scheduleArn")


class WrongEvent(PortabindError):
    """The function received an event its trigger does not deliver."""


class BatchFailed(PortabindError):
    """Every record of a batch failed: the invocation fails and the batch comes again."""


def _sourced(
    event: Any, component: str, trigger: str, sources: tuple[str, ...], field: str
) -> dict[str, Any]:
    """`event` if its `field` names one of `sources` (the trigger's eventSource)."""
    found = event.get(field) if isinstance(event, dict) else None
    if found not in sources:
        raise WrongEvent(
            f"{component}: the {trigger} function got an event whose {field} is {found!r}, "
            f"not {' or '.join(map(repr, sources))}: check what invokes it"
        )
    return event  # type: ignore[no-any-return]  # a dict, checked above


def _records(
    event: Any, component: str, trigger: str, source: str, field: str = "eventSource"
) -> list[Any]:
    """The `Records` of a batch event, each checked to come from `source` (`aws:sqs`)."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records:
        raise WrongEvent(
            f"{component}: the {trigger} function got an event without Records, not a "
            f"{trigger} batch: check what invokes it"
        )
    for record in records:
        _sourced(record, component, trigger, (source,), field)
    return records


def _bytes(value: Any) -> bytes:
    """A Kafka header value or RabbitMQ header as Lambda gives it: a list of byte values
    (or `{"bytes": [...]}`), else text."""
    if isinstance(value, dict) and "bytes" in value:
        value = value["bytes"]
    if isinstance(value, list):
        return bytes(value)
    return str(value).encode("utf-8")


def kafka_event(
    name: str, record: Mapping[str, Any], metadata: KafkaMetadata | None = None
) -> BindingEvent:
    """One record of an MSK or self-managed Kafka event, mapped by `bindings.kafka`: the
    value and key lose Lambda's base64, headers (lists of byte values) become UTF-8."""
    from portabind.bindings.kafka import event_from_record

    key = record.get("key")
    value = record.get("value")
    return event_from_record(
        name,
        value=base64.b64decode(value) if value is not None else None,
        key=base64.b64decode(key) if key else None,
        topic=str(record["topic"]),
        partition=int(record["partition"]),
        offset=int(record["offset"]),
        timestamp_ms=int(record["timestamp"]) if record.get("timestamp") is not None else None,
        headers=[
            (header, _bytes(raw))
            for entry in record.get("headers") or ()
            for header, raw in entry.items()
        ],
        metadata=metadata,
    )


def mq_event(name: str, message: Mapping[str, Any]) -> BindingEvent:
    """One Amazon MQ (RabbitMQ) message, mapped by `bindings.rabbitmq`: the body loses
    Lambda's base64; Lambda hands string headers as byte lists, which become text again."""
    from portabind.bindings.rabbitmq import event_from_message

    properties = message.get("basicProperties") or {}
    headers = {
        key: _bytes(value).decode("utf-8", errors="replace")
        if isinstance(value, dict | list)
        else value
        for key, value in (properties.get("headers") or {}).items()
    }
    return event_from_message(name, base64.b64decode(message.get("data") or ""), headers)


def http_event(name: str, event: Mapping[str, Any]) -> BindingEvent:
    """An API Gateway request (HTTP API payload 2.0, or 1.0 / REST API), mapped by
    `bindings.http.request_event`: the body loses base64 when `isBase64Encoded`."""
    from portabind.bindings.http import request_event

    context = event.get("requestContext") or {}
    body: Any = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        body = base64.b64decode(body)
    headers: list[tuple[str, str]]
    if event.get("version") == "2.0":
        method = context["http"]["method"]
        path = event.get("rawPath") or context["http"]["path"]
        query = event.get("rawQueryString") or ""
        headers = list((event.get("headers") or {}).items())
        if event.get("cookies"):  # payload 2.0 moves Cookie headers out of `headers`
            headers.append(("cookie", "; ".join(event["cookies"])))
    else:
        from urllib.parse import urlencode

        method, path = event["httpMethod"], event["path"]
        multi = event.get("multiValueHeaders") or {
            k: [v] for k, v in (event.get("headers") or {}).items()
        }
        headers = [(k, v) for k, values in multi.items() for v in values]
        query = urlencode(
            [
                (k, v)
                for k, values in (event.get("multiValueQueryStringParameters") or {}).items()
                for v in values
            ]
        )
    return request_event(
        name,
        method=method,
        path=path,
        headers=headers,
        query=query,
        body=body,
        request_id=context.get("requestId"),
    )


def s3_record(event: Mapping[str, Any]) -> dict[str, Any]:
    """An EventBridge "Object Created" event in the shape of the S3 notification record it
    stands for, so one mapping reads both. EventBridge gives the key as is; a notification
    URL-encodes it (spaces as `+`), which the mapping undoes, so it is encoded here."""
    from urllib.parse import quote_plus

    detail = event["detail"]
    found = detail["object"]
    s3_object = {"key": quote_plus(found["key"], safe="/"), "size": found.get("size")}
    for source, target in (
        ("etag", "eTag"),
        ("version-id", "versionId"),
        ("sequencer", "sequencer"),
    ):
        if found.get(source) is not None:
            s3_object[target] = found[source]
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": event.get("region"),
        "eventTime": event.get("time"),
        "eventName": f"ObjectCreated:{detail.get('reason', 'PutObject').removesuffix('Object')}",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {
                "name": detail["bucket"]["name"],
                "arn": f"arn:aws:s3:::{detail['bucket']['name']}",
            },
            "object": s3_object,
        },
    }


def iot_event(name: str, event: Mapping[str, Any]) -> BindingEvent:
    """An IoT topic rule's message, mapped by `bindings.mqtt3`: the rule (build.py) sends the
    payload base64-encoded beside the topic it was published to."""
    from portabind.bindings.mqtt3 import event_from_message

    return event_from_message(name, str(event["topic"]), base64.b64decode(event["data"]))


def _first_failure(
    app: App,
    records: Iterable[Any],
    to_event: Callable[[Any], BindingEvent],
    identifier: Callable[[Any], str],
) -> Any | None:
    """Handle `records` in order up to the first failure; returns that record, or None."""
    for record in records:
        try:
            app.handle(to_event(record))
        except Exception:
            log.exception("record %s failed; Lambda delivers it again", identifier(record))
            return record
    return None


def _kafka_record_id(partition: str, record: Mapping[str, Any]) -> str:
    return f"{partition} offset {record['offset']}"


class Function(BundledFunction):
    """A built app, loaded at cold start and reused by every invocation."""

    def sqs(self, component: str) -> Handler:
        """The Lambda handler for SQS batches delivered to input binding `component`. From a
        FIFO queue, the first failure ends the batch: it and every message after it are
        reported failed, unhandled, as AWS asks of FIFO functions, so that no message of a
        group is handled before one that came first."""
        from portabind.bindings.aws.sqs import event_from_message

        app = self.app

        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            records = _records(event, component, "SQS", "aws:sqs")
            failures = []
            for index, record in enumerate(records):
                try:
                    app.handle(event_from_message(component, record))
                except Exception:
                    log.exception("message %s failed; SQS delivers it again", record["messageId"])
                    if str(record.get("eventSourceARN", "")).endswith(".fifo"):
                        failures += [{"itemIdentifier": r["messageId"]} for r in records[index:]]
                        break
                    failures.append({"itemIdentifier": record["messageId"]})
            if len(failures) == len(records):
                raise BatchFailed(
                    f"{component}: all {len(records)} messages of the batch failed (each is "
                    "logged above); SQS delivers them again"
                )
            return {"batchItemFailures": failures}

        return handler

    def _stream(
        self,
        to_records: Callable[[Any], list[Any]],
        to_event: Callable[[Any], BindingEvent],
        identifier: Callable[[Any], str],
    ) -> Handler:
        app = self.app

        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            failed = _first_failure(app, to_records(event), to_event, identifier)
            return {
                "batchItemFailures": []
                if failed is None
                else [{"itemIdentifier": identifier(failed)}]
            }

        return handler

    def kinesis(self, component: str) -> Handler:
        """Kinesis batches: the first failed record's sequence number is reported."""
        from portabind.bindings.aws.kinesis import event_from_record

        return self._stream(
            lambda event: _records(event, component, "Kinesis", "aws:kinesis"),
            lambda record: event_from_record(component, record),
            lambda record: str(record["kinesis"]["sequenceNumber"]),
        )

    def dynamodb(self, component: str) -> Handler:
        """DynamoDB stream batches: the first failed record's sequence number is reported."""
        from portabind.bindings.aws.dynamodb import event_from_record

        return self._stream(
            lambda event: _records(event, component, "DynamoDB stream", "aws:dynamodb"),
            lambda record: event_from_record(component, record),
            lambda record: str(record["dynamodb"]["SequenceNumber"]),
        )

    def _each(self, events: Callable[[dict[str, Any]], Iterable[BindingEvent]]) -> Handler:
        """An asynchronous or retried-as-a-whole source: any failure raises."""
        app = self.app

        def handler(event: dict[str, Any], context: Any) -> None:
            for binding_event in events(event):
                app.handle(binding_event)

        return handler

    def sns(self, component: str) -> Handler:
        from portabind.bindings.aws.sns import event_from_record

        return self._each(
            lambda event: (
                event_from_record(component, record)
                for record in _records(event, component, "SNS", "aws:sns", "EventSource")
            )
        )

    def s3(self, component: str) -> Handler:
        """S3 notifications (a bucket of the stack) or EventBridge "Object Created" events
        (an existing bucket), both mapped by `bindings.aws.s3.event_from_record`."""
        from portabind.bindings.aws.s3 import event_from_record

        def events(event: dict[str, Any]) -> Iterable[BindingEvent]:
            if isinstance(event, dict) and "Records" in event:
                records = _records(event, component, "S3", "aws:s3")
            else:
                records = [s3_record(_sourced(event, component, "S3", ("aws.s3",), "source"))]
            return (event_from_record(component, record) for record in records)

        return self._each(events)

    def cron(self, component: str) -> Handler:
        """EventBridge Scheduler ticks: `bindings.cron.event_for`, plus the scheduler's
        `scheduledTime`, `executionId` and `scheduleArn` (the template's `Input`)."""
        from portabind.bindings.cron import CronMetadata, event_for

        runtime = self.runtime

        def events(event: dict[str, Any]) -> Iterable[BindingEvent]:
            # The template's Input always names the schedule; anything else is another source.
            if not isinstance(event, dict) or not str(event.get("scheduleArn", "")):
                raise WrongEvent(
                    f"{component}: the schedule function got an event without the "
                    "scheduler's scheduleArn: check what invokes it"
                )
            metadata = runtime.metadata(component)
            assert isinstance(metadata, CronMetadata)
            schedule = metadata.parsed()
            tick = event_for(component, schedule)
            extra = {k: str(event[k]) for k in SCHEDULER_KEYS if event.get(k) is not None}
            return (BindingEvent(component, tick.data, Metadata({**extra, **tick.metadata})),)

        return self._each(events)

    def iot(self, component: str) -> Handler:
        return self._each(lambda event: (iot_event(component, event),))

    def mq(self, component: str) -> Handler:
        """Amazon MQ batches: Lambda has no partial response here, so a failure fails the
        batch and the broker redelivers all of it."""
        return self._each(
            lambda event: (
                mq_event(component, message)
                for messages in _sourced(
                    event, component, "Amazon MQ", ("aws:rmq",), "eventSource"
                )["rmqMessagesByQueue"].values()
                for message in messages
            )
        )

    def kafka(self, component: str, *, partial_batch: bool = False) -> Handler:
        """MSK / self-managed Kafka batches, one list per partition. With `partial_batch`
        (provisioned mode, where Lambda reads partial responses: the build decides it from
        `portabind.io/provisionedPollers`), each partition stops at its first failure and
        reports it (Powertools' identifier shape); otherwise the first failure raises and
        Lambda retries the batch."""
        from portabind.bindings.kafka import KafkaMetadata

        app, runtime = self.app, self.runtime

        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            # escapeHeaders and excludeHeaderMetaRegex shape the metadata, as locally
            metadata = runtime.metadata(component)
            assert isinstance(metadata, KafkaMetadata)
            failures = []
            kafka_sources = ("aws:kafka", "SelfManagedKafka")
            batch = _sourced(event, component, "Kafka", kafka_sources, "eventSource")
            for partition, records in batch["records"].items():
                failed = _first_failure(
                    app,
                    records,
                    lambda record: kafka_event(component, record, metadata),
                    functools.partial(_kafka_record_id, partition),
                )
                if failed is not None:
                    if not partial_batch:
                        raise RuntimeError(
                            f"{component}: handler failed on {partition} offset "
                            f"{failed['offset']}; Lambda retries the batch"
                        )
                    failures.append(
                        {"itemIdentifier": {"partition": partition, "offset": failed["offset"]}}
                    )
            return {"batchItemFailures": failures}

        return handler

    def http(self, component: str) -> Handler:
        """API Gateway requests: the handler's return value is the response."""
        from portabind.bindings.http import http_reply

        app = self.app

        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            if not isinstance(event, dict) or "requestContext" not in event:
                raise WrongEvent(
                    f"{component}: the HTTP function got an event without a requestContext, "
                    "not an API Gateway request: check what invokes it"
                )
            reply = http_reply(app.handle(http_event(component, event)))
            text = reply.content_type is not None and not reply.content_type.startswith(
                "application/octet-stream"
            )
            response: dict[str, Any] = {
                "statusCode": reply.status,
                "body": reply.body.decode("utf-8")
                if text
                else base64.b64encode(reply.body).decode("ascii"),
                "isBase64Encoded": not text and bool(reply.body),
            }
            if reply.content_type is not None:
                response["headers"] = {"content-type": reply.content_type}
            return response

        return handler
