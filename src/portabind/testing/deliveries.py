"""How each trigger kind delivers a `send`: the platform's event built from the payloads
and metadata, handed to the entry callable, and the platform's reply read back as a
`SendResult`. `BY_TARGET[target][kind]`, where `kind` is the name of the target runtime's
`Function` method (`Trigger.entry`).

Where the platform reports records (SQS, Kinesis, DynamoDB streams, provisioned Kafka), the
failed ones are those it names; where an invocation fails as a whole (it raises), every
record of that invocation is failed, since the platform delivers all of them again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portabind.errors import UserError
from portabind.events import BindingEvent, Metadata
from portabind.testing.events import aws, azure, gcp
from portabind.testing.results import SendResult

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from portabind.app import App
    from portabind.components import Component

    Delivery = Callable[["Send"], SendResult]


@dataclass
class Send:
    """One `send_batch`: the entry the platform calls, the input component, the payloads and
    the metadata (a delivery takes out the keys it places, the rest are user attributes)."""

    entry: Callable[..., Any]
    component: Component
    payloads: list[bytes]
    metadata: dict[str, str]

    def only(self, *keys: str) -> dict[str, str]:
        """The metadata, refused when it has a key the platform has no place for."""
        wanted = {key.lower() for key in keys}
        extra = sorted(key for key in self.metadata if key.lower() not in wanted)
        if extra:
            raise UserError(
                f"{self.component.name!r} ({self.component.type}): the trigger's event carries "
                f"no {', '.join(extra)}",
                hint=f"metadata it carries: {', '.join(keys)}" if keys else "send no metadata",
            )
        return self.metadata

    def take(self, key: str) -> str | None:
        """Metadata `key` (any case), removed from the rest, which become user attributes."""
        for found in list(self.metadata):
            if found.lower() == key.lower():
                return self.metadata.pop(found)
        return None

    def setting(self, *fields: str) -> str | None:
        """The component's literal value of the first of `fields` it sets (a bucket, a
        topic), to name the resource in the event as the platform would."""
        values = {key.lower(): value for key, value in self.component.binding_values().items()}
        for name in fields:
            value = values.get(name.lower())
            if value is not None and value.literal:
                return value.literal
        return None

    def json_payloads(self) -> list[Any]:
        try:
            return [json.loads(payload) for payload in self.payloads]
        except ValueError as error:
            raise UserError(
                f"{self.component.name!r} ({self.component.type}) delivers JSON documents: "
                f"send a dict ({error})"
            ) from None


def _call(entry: Callable[..., Any], ids: Sequence[str], *arguments: Any) -> SendResult:
    """One invocation: a raise fails every record of it."""
    try:
        return SendResult(response=entry(*arguments))
    except Exception as error:  # the handler's failure, as the platform sees it
        return SendResult(failed=list(ids), error=error)


def _each(results: Sequence[SendResult]) -> SendResult:
    """Several invocations (one per record) as one result."""
    errors = [result.error for result in results if result.error is not None]
    return SendResult(
        failed=[record for result in results for record in result.failed],
        error=errors[0] if errors else None,
        response=[result.response for result in results],
    )


def _reported(result: SendResult, to_id: Callable[[Any], str]) -> SendResult:
    """A Lambda partial batch response: the records it names failed."""
    if result.error is None and isinstance(result.response, dict):
        failures = result.response.get("batchItemFailures") or []
        result.failed = [to_id(failure["itemIdentifier"]) for failure in failures]
    return result


def _reply(result: SendResult, status: int, body: bytes, headers: Mapping[str, str]) -> SendResult:
    result.status, result.body, result.headers = status, body, Metadata(headers)
    return result


def local(app: App, name: str, payloads: Sequence[bytes], metadata: Metadata) -> SendResult:
    """No platform: each payload handed to the app as an event, as `portabind run` does."""
    return _each(
        [
            _call(app.handle, [str(index)], BindingEvent(name, payload, metadata))
            for index, payload in enumerate(payloads)
        ]
    )


# --- AWS Lambda ------------------------------------------------------------------------------


def _aws_sqs(send: Send) -> SendResult:
    event = aws.sqs(*send.payloads, attributes=send.metadata)
    ids = [record["messageId"] for record in event["Records"]]
    return _reported(_call(send.entry, ids, event, None), str)


def _aws_kinesis(send: Send) -> SendResult:
    key = send.only("partitionKey").get("partitionKey", "partitionKey-03")
    stream = send.setting("streamName") or "MyStream"
    event = aws.kinesis(*send.payloads, stream=stream, partition_key=key)
    ids = [record["kinesis"]["sequenceNumber"] for record in event["Records"]]
    return _reported(_call(send.entry, ids, event, None), str)


def _aws_dynamodb(send: Send) -> SendResult:
    name = send.only("eventName").get("eventName", "INSERT")
    table = send.setting("table") or "ExampleTableWithStream"
    event = aws.dynamodb(*send.json_payloads(), table=table, event_name=name)
    ids = [record["dynamodb"]["SequenceNumber"] for record in event["Records"]]
    return _reported(_call(send.entry, ids, event, None), str)


def _aws_sns(send: Send) -> SendResult:
    subject = send.take("subject")
    topic = (send.setting("topicArn") or "ExampleTopic").rpartition(":")[2]
    event = aws.sns(*send.payloads, topic=topic, subject=subject, attributes=send.metadata)
    ids = [record["Sns"]["MessageId"] for record in event["Records"]]
    return _call(send.entry, ids, event, None)


def _aws_s3(send: Send) -> SendResult:
    """An S3 notification, or for an existing bucket (`portabind.io/existing`, which the
    build subscribes to through an EventBridge rule) an "Object Created" event."""
    key = send.only("key").get("key", "test/key")
    bucket = send.setting("bucket") or "example-bucket"
    existing = (send.component.annotation("existing") or "").lower() == "true"
    notification = aws.s3_eventbridge if existing else aws.s3
    results = [
        _call(send.entry, [key], notification(key, bucket=bucket, size=len(payload)), None)
        for payload in send.payloads
    ]
    return _each(results)


def _aws_cron(send: Send) -> SendResult:
    send.only()
    event = aws.schedule(send.component.name)
    return _call(send.entry, [event["executionId"]], event, None)


def _aws_iot(send: Send) -> SendResult:
    topic = send.only("topic").get("topic") or send.setting("topic") or "topic/test"
    return _each(
        [
            _call(send.entry, [str(index)], aws.iot(payload, topic=topic), None)
            for index, payload in enumerate(send.payloads)
        ]
    )


def _aws_mq(send: Send) -> SendResult:
    queue = send.setting("queueName") or "pizzaQueue"
    event = aws.mq(*send.payloads, queue=queue, headers=send.metadata)
    ids = [
        message["basicProperties"]["messageId"]
        for messages in event["rmqMessagesByQueue"].values()
        for message in messages
    ]
    return _call(send.entry, ids, event, None)


def _aws_kafka(send: Send) -> SendResult:
    key = send.take("__key")
    topic = (send.setting("topics") or "mytopic").split(",")[0]
    event = aws.kafka(*send.payloads, topic=topic, key=key, headers=send.metadata)
    ids = [
        f"{partition}:{record['offset']}"
        for partition, records in event["records"].items()
        for record in records
    ]
    result = _call(send.entry, ids, event, None)
    return _reported(result, lambda found: f"{found['partition']}:{found['offset']}")


def _http_request(send: Send) -> tuple[str, str, str, dict[str, str]]:
    """An HTTP send's `method` and path and query (`path`, may carry `?query`) from the
    metadata, by default a request the trigger answers (its path; POST, or its first method
    when it takes no POST); the rest are request headers."""
    from portabind.bindings.http import component_trigger

    trigger = component_trigger(send.component)
    answered = trigger.methods or ("POST",)
    method = send.take("method") or ("POST" if "POST" in answered else answered[0])
    path, _, query = (send.take("path") or trigger.path).partition("?")
    return method, path, query, send.metadata


def _aws_http(send: Send) -> SendResult:
    import base64
    from urllib.parse import parse_qsl

    method, path, query, headers = _http_request(send)
    results = []
    for payload in send.payloads:
        event = aws.http(method, path, payload, headers=headers, query=dict(parse_qsl(query)))
        result = _call(send.entry, [event["requestContext"]["requestId"]], event, None)
        response = result.response
        if result.error is not None:
            results.append(_reply(result, 500, b"", {}))
            continue
        body = response.get("body") or ""
        raw = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
        results.append(_reply(result, response["statusCode"], raw, response.get("headers") or {}))
    return results[0] if len(results) == 1 else _each(results)


# --- Azure Functions -------------------------------------------------------------------------


def _azure_queue(send: Send) -> SendResult:
    send.only()
    messages = [azure.queue_message(payload) for payload in send.payloads]
    return _each([_call(send.entry, [str(m.id)], m) for m in messages])


def _azure_service_bus(send: Send) -> SendResult:
    subject = send.take("label")
    correlation = send.take("correlationID")
    messages = [
        azure.service_bus_message(
            payload,
            application_properties=send.metadata,
            subject=subject,
            correlation_id=correlation,
        )
        for payload in send.payloads
    ]
    return _each([_call(send.entry, [str(m.message_id)], m) for m in messages])


def _azure_event_hubs(send: Send) -> SendResult:
    key = send.take("x-opt-partition-key")
    events = azure.event_hub_events(*send.payloads, partition_key=key, properties=send.metadata)
    return _call(send.entry, [str(event.sequence_number) for event in events], events)


def _azure_event_grid(send: Send) -> SendResult:
    fields = send.only("eventType", "subject")
    events = [
        azure.event_grid_event(
            payload,
            event_type=fields.get("eventType", "Contoso.Items.ItemReceived"),
            subject=fields.get("subject", "items/1"),
        )
        for payload in send.payloads
    ]
    return _each([_call(send.entry, [event.id], event) for event in events])


def _azure_cosmosdb(send: Send) -> SendResult:
    send.only()
    documents = azure.cosmos_documents(*send.json_payloads())
    return _call(send.entry, [str(document["id"]) for document in documents], documents)


def _azure_blob(send: Send) -> SendResult:
    blob_name = send.take("blobName") or send.take("key") or "workitem.txt"
    container = send.setting("container", "containerName") or "samples-workitems"
    name = f"{container}/{blob_name}"
    return _each(
        [
            _call(send.entry, [name], azure.blob(payload, name=name, metadata=send.metadata))
            for payload in send.payloads
        ]
    )


def _azure_timer(send: Send) -> SendResult:
    send.only()
    context = azure.Context(send.component.name)
    return _call(send.entry, [context.invocation_id], azure.timer(), context)


def _azure_http(send: Send) -> SendResult:
    method, path, query, headers = _http_request(send)
    url = f"https://app.azurewebsites.net{path}" + (f"?{query}" if query else "")
    results = []
    for payload in send.payloads:
        request = azure.http_request(method, url, payload, headers=headers)
        context = azure.Context(send.component.name)
        result = _call(send.entry, [context.invocation_id], request, context)
        if result.error is not None:
            results.append(_reply(result, 500, b"", {}))
            continue
        response = result.response
        results.append(
            _reply(result, response.status_code, response.get_body(), dict(response.headers))
        )
    return results[0] if len(results) == 1 else _each(results)


def _azure_kafka(send: Send) -> SendResult:
    key = send.take("__key")
    topic = (send.setting("topics") or "mytopic").split(",")[0]
    records = [
        azure.kafka_event(payload, topic=topic, offset=index, key=key, headers=send.metadata)
        for index, payload in enumerate(send.payloads)
    ]
    return _each([_call(send.entry, [f"{topic}-0:{r.offset}"], r) for r in records])


def _azure_rabbitmq(send: Send) -> SendResult:
    send.only()
    return _each(
        [
            _call(send.entry, [str(index)], azure.rabbitmq_message(payload))
            for index, payload in enumerate(send.payloads)
        ]
    )


# --- Cloud Functions -------------------------------------------------------------------------


def _gcp_pubsub(send: Send) -> SendResult:
    key = send.take("orderingKey")
    topic = send.setting("topic") or "my-topic"
    events = [
        gcp.pubsub(payload, attributes=send.metadata, ordering_key=key, topic=topic)
        for payload in send.payloads
    ]
    return _each([_call(send.entry, [str(event["id"])], event) for event in events])


def _gcp_storage(send: Send) -> SendResult:
    key = send.take("key") or "test/object"
    bucket = send.setting("bucket") or "my-bucket"
    events = [
        gcp.storage(key, bucket=bucket, size=len(payload), metadata=send.metadata)
        for payload in send.payloads
    ]
    return _each([_call(send.entry, [key], event) for event in events])


def _flask_reply(result: SendResult) -> SendResult:
    if result.error is not None:
        return _reply(result, 500, b"", {})
    body, status, headers = result.response
    return _reply(result, status, body.encode() if isinstance(body, str) else body, headers)


def _gcp_http(send: Send) -> SendResult:
    from urllib.parse import parse_qsl

    method, path, query, headers = _http_request(send)
    results = []
    for payload in send.payloads:
        request = gcp.http_request(
            method, path, payload, headers=headers, query=dict(parse_qsl(query))
        )
        results.append(_flask_reply(_call(send.entry, ["0"], request)))
    return results[0] if len(results) == 1 else _each(results)


def _gcp_scheduled(send: Send) -> SendResult:
    send.only()
    request = gcp.scheduler_request(send.component.name)
    return _flask_reply(_call(send.entry, [request.headers["X-CloudScheduler-JobName"]], request))


BY_TARGET: dict[str, dict[str, Delivery]] = {
    "aws": {
        "sqs": _aws_sqs,
        "kinesis": _aws_kinesis,
        "dynamodb": _aws_dynamodb,
        "sns": _aws_sns,
        "s3": _aws_s3,
        "cron": _aws_cron,
        "iot": _aws_iot,
        "mq": _aws_mq,
        "kafka": _aws_kafka,
        "http": _aws_http,
    },
    "azure": {
        "queue": _azure_queue,
        "service_bus": _azure_service_bus,
        "event_hubs": _azure_event_hubs,
        "event_grid": _azure_event_grid,
        "cosmosdb": _azure_cosmosdb,
        "blob": _azure_blob,
        "timer": _azure_timer,
        "http": _azure_http,
        "kafka": _azure_kafka,
        "rabbitmq": _azure_rabbitmq,
    },
    "gcp": {
        "pubsub": _gcp_pubsub,
        "storage": _gcp_storage,
        "http": _gcp_http,
        "scheduled": _gcp_scheduled,
    },
}
