"""The public event generators: each event is read by its platform's own library (Powertools'
data classes, `azure.functions`, `cloudevents`), and an AWS event has the fields of the real
Lambda events in tests/events (which `sam local generate-event` writes too)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from aws_lambda_powertools.utilities.data_classes import (
    APIGatewayProxyEventV2,
    DynamoDBStreamEvent,
    EventBridgeEvent,
    KafkaEvent,
    KinesisStreamEvent,
    S3Event,
    SNSEvent,
    SQSEvent,
)
from aws_lambda_powertools.utilities.data_classes.rabbit_mq_event import RabbitMQEvent
from cloudevents.conversion import to_structured
from cloudevents.http import from_http

from portabind.testing.events import aws, azure, gcp

SAMPLES = Path(__file__).parents[1] / "events"


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return loaded


def keys(record: dict[str, Any], *path: str) -> set[str]:
    for part in path:
        record = record[part]
    return set(record)


@pytest.mark.parametrize(
    ("generated", "real", "path"),
    [
        (aws.sqs("x")["Records"][0], "lambda-sqs.json", ()),
        (aws.kinesis("x")["Records"][0], "lambda-kinesis.json", ("kinesis",)),
        (aws.dynamodb({"id": "a"})["Records"][0], "lambda-dynamodb.json", ()),
        (aws.sns("x")["Records"][0], "lambda-sns.json", ("Sns",)),
        (aws.s3("k")["Records"][0], "lambda-s3.json", ("s3", "object")),
        (aws.schedule(), "lambda-schedule.json", ()),
        (aws.iot("x"), "lambda-iot.json", ()),
    ],
)
def test_aws_events_have_the_fields_lambda_sends(
    generated: dict[str, Any], real: str, path: tuple[str, ...]
) -> None:
    found = sample(real)
    record = found["Records"][0] if "Records" in found else found
    assert keys(generated, *path) >= keys(record, *path)


def test_sqs_is_read_by_powertools_with_attributes_per_record() -> None:
    event = SQSEvent(aws.sqs({"id": 1}, "two", attributes={"tenant": "acme"}))
    first, second = event.records
    assert json.loads(first.body) == {"id": 1}
    assert second.body == "two"
    assert first.message_id != second.message_id
    tenant = second.message_attributes["tenant"]
    assert tenant is not None and tenant.string_value == "acme"
    assert first.event_source_arn == "arn:aws:sqs:us-east-1:123456789012:MyQueue"


def test_stream_events_are_read_by_powertools_in_order() -> None:
    kinesis = KinesisStreamEvent(aws.kinesis(b"\x00raw", "b", partition_key="pk"))
    records = list(kinesis.records)
    assert records[0].kinesis.data_as_bytes() == b"\x00raw"
    assert records[0].kinesis.partition_key == "pk"
    sequences = [int(r.kinesis.sequence_number) for r in records]
    assert sequences == sorted(sequences) and len(set(sequences)) == 2
    dynamodb = DynamoDBStreamEvent(aws.dynamodb({"id": "a", "n": 2, "ok": True}))
    (record,) = dynamodb.records
    assert record.dynamodb is not None
    assert record.dynamodb.new_image == {"id": "a", "n": 2, "ok": True}
    assert record.dynamodb.keys == {"id": "a"}


def test_notifications_are_read_by_powertools() -> None:
    sns = SNSEvent(aws.sns("hello", subject="s", attributes={"severity": "high"}))
    assert sns.sns_message == "hello"
    assert sns.record.sns.message_attributes["severity"].value == "high"
    s3 = S3Event(aws.s3("in/a file.csv", bucket="b", size=4))
    assert (s3.bucket_name, s3.object_key) == ("b", "in/a file.csv")
    assert s3.raw_event["Records"][0]["s3"]["object"]["key"] == "in/a+file.csv"  # as S3 sends it
    assert s3.record.s3.get_object.size == 4


def test_an_eventbridge_object_created_event_has_the_fields_eventbridge_sends() -> None:
    event = EventBridgeEvent(aws.s3_eventbridge("in/a b.csv", bucket="b", size=3))
    assert (event.detail_type, event.source) == ("Object Created", "aws.s3")
    assert event.detail["object"]["key"] == "in/a b.csv"  # EventBridge does not encode it
    real = sample("lambda-s3-eventbridge.json")
    assert set(event.raw_event) >= set(real)
    # less the sample's version-id: a versioned bucket's only
    assert set(event.detail["object"]) >= set(real["detail"]["object"]) - {"version-id"}


def test_http_is_an_api_gateway_v2_request() -> None:
    event = APIGatewayProxyEventV2(
        aws.http("PUT", "/notes/1", {"t": 1}, headers={"X-Tag": "a"}, query={"dry": "1"})
    )
    assert (event.request_context.http.method, event.raw_path) == ("PUT", "/notes/1")
    assert event.json_body == {"t": 1}
    assert event.headers["x-tag"] == "a"
    assert event.query_string_parameters == {"dry": "1"}
    binary = APIGatewayProxyEventV2(aws.http(body=b"\xff", base64_body=True))
    assert binary.is_base64_encoded
    assert base64.b64decode(binary.body or "") == b"\xff"


def test_kafka_and_mq_batches_are_read_by_powertools() -> None:
    kafka = KafkaEvent(aws.kafka("v1", "v2", topic="t", key="k", headers={"trace": "x"}))
    first, second = kafka.records
    assert (first.topic, first.decoded_value, first.decoded_key) == ("t", b"v1", b"k")
    assert first.decoded_headers == {"trace": b"x"}
    assert second.offset == first.offset + 1
    assert kafka.event_source == "aws:kafka"
    assert aws.kafka("v", self_managed=True)["eventSource"] == "SelfManagedKafka"
    mq = RabbitMQEvent(aws.mq("job", queue="jobs", headers={"tenant": "acme"}))
    ((queue, messages),) = mq.rmq_messages_by_queue.items()
    assert queue.startswith("jobs::")
    assert messages[0].decoded_data == "job"


def test_azure_objects_are_the_functions_library_types() -> None:
    queue = azure.queue_message({"id": 1})
    assert isinstance(queue, func.QueueMessage)
    assert queue.get_json() == {"id": 1} and queue.dequeue_count == 1
    bus = azure.service_bus_message("m", application_properties={"color": "red"}, subject="s")
    assert isinstance(bus, func.ServiceBusMessage)
    assert (bus.get_body(), bus.application_properties, bus.subject) == (
        b"m",
        {"color": "red"},
        "s",
    )
    hubs = azure.event_hub_events("a", "b", partition="3", properties={"unit": "C"})
    assert [e.get_body() for e in hubs] == [b"a", b"b"]
    assert hubs[0].sequence_number is not None and hubs[1].sequence_number is not None
    assert hubs[0].sequence_number < hubs[1].sequence_number
    grid = azure.event_grid_event({"id": 8}, event_type="Order.Created")
    assert isinstance(grid, func.EventGridEvent) and grid.get_json() == {"id": 8}
    cloud = azure.event_grid_cloud_event({"id": 7}, event_type="Order.Created")
    assert isinstance(cloud, func.CloudEvent) and cloud.get_json() == {"id": 7}
    assert (cloud.type, cloud.specversion) == ("Order.Created", "1.0")
    documents = azure.cosmos_documents({"id": "o-1", "n": 1})
    assert isinstance(documents, func.DocumentList) and documents[0]["n"] == 1
    stream = azure.blob(b"a,b", name="in/x.csv", metadata={"origin": "scan"})
    assert (stream.name, stream.length, stream.read()) == ("in/x.csv", 3, b"a,b")
    request = azure.http_request("GET", "https://app/api/notes?dry=1")
    assert isinstance(request, func.HttpRequest) and request.params == {"dry": "1"}
    record = azure.kafka_event("v", key="k", headers={"trace": "x"})
    assert isinstance(record, func.KafkaEvent) and record.get_body() == b"v"
    assert azure.timer(past_due=True).past_due


def test_gcp_cloud_events_survive_the_wire_as_cloudevents_reads_them() -> None:
    published = gcp.pubsub({"id": 1}, attributes={"tenant": "acme"}, ordering_key="c-7")
    headers, body = to_structured(published)
    received = from_http(dict(headers), body)
    assert received["type"] == gcp.PUBSUB_PUBLISHED
    message = received.data["message"]
    assert base64.b64decode(message["data"]) == b'{"id":1}'
    assert (message["attributes"], message["orderingKey"]) == ({"tenant": "acme"}, "c-7")
    stored = gcp.storage("in/a.csv", bucket="b", size=3)
    assert stored["type"] == gcp.STORAGE_FINALIZED
    resource = stored.data
    assert (resource["name"], resource["bucket"], resource["size"]) == ("in/a.csv", "b", "3")


def test_gcp_requests_carry_what_cloud_functions_and_cloud_scheduler_send() -> None:
    request = gcp.http_request("PUT", "/notes", {"t": 1}, query={"dry": "1"})
    assert (request.method, request.path, request.args["dry"]) == ("PUT", "/notes", "1")
    assert request.get_json() == {"t": 1}
    assert request.headers["Function-Execution-Id"]
    tick = gcp.scheduler_request("nightly")
    assert tick.headers["X-CloudScheduler-JobName"] == "nightly"
