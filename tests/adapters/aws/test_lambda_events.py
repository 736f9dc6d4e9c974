"""Lambda-shaped events (tests/events/lambda-*.json) through the entry built for the
`everything` app: the normalized `BindingEvent` each handler sees, and the reply Lambda reads
(only failed records; streams: the first failed record; HTTP: the response)."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from portabind.adapters.aws import build
from portabind.secrets import secret_env_name
from portabind.tooling.project import load_project

if TYPE_CHECKING:
    from types import ModuleType

    from portabind.events import BindingEvent

HERE = Path(__file__).resolve().parent
EVERYTHING = HERE / "apps" / "everything"


def lambda_event(name: str) -> dict[str, Any]:
    path = HERE.parents[1] / "events" / f"lambda-{name.replace('_', '-')}.json"
    event: dict[str, Any] = json.loads(path.read_text())
    return event


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("everything")
    build.build(load_project(EVERYTHING), out)
    return out


@pytest.fixture
def entry(built: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The built entry module, freshly imported as a cold start would; the Kafka
    components' secrets come from the environment variables SAM sets."""
    for component in ("payments", "telemetry"):
        monkeypatch.setenv(secret_env_name(component, "saslPassword"), "not-used-by-lambda")
    spec = importlib.util.spec_from_file_location("built_entry", built / "portabind_lambda.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seen(entry: ModuleType) -> list[BindingEvent]:
    """What the app's handlers recorded (its module's `seen` list)."""
    function = entry.function.app.handlers["orders"].function
    recorded: list[BindingEvent] = sys.modules[function.__module__].seen
    return recorded


def test_sqs_reports_only_the_failed_message(entry: ModuleType) -> None:
    reply = entry.handle_orders(lambda_event("sqs"), None)
    assert reply == {
        "batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]
    }
    first, failed, third = seen(entry)
    assert first.data == b'{"id": 1}' and third.data == b'{"id": 3}'
    assert first.metadata["tenant"] == "acme"
    assert first.metadata["messageId"] == "059f36b4-87a3-44ab-83d2-661975830a7d"
    assert first.metadata["SentTimestamp"] == "2018-12-17T21:37:29.183000Z"
    assert failed.metadata["ApproximateReceiveCount"] == "3"
    assert "tenant" not in failed.metadata  # attributes never leak between records


def test_a_fifo_batch_stops_at_its_first_failure_and_reports_the_rest(entry: ModuleType) -> None:
    event = lambda_event("sqs")
    for record in event["Records"]:
        record["eventSourceARN"] += ".fifo"
    reply = entry.handle_orders(event, None)
    assert reply == {
        "batchItemFailures": [
            {"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"},
            {"itemIdentifier": "6d0e5b9a-0c34-4c5e-9a7a-0d1d3c4f3a11"},
        ]
    }
    assert [e.data for e in seen(entry)] == [b'{"id": 1}', b"please fail"]  # not the third


def test_kinesis_reports_the_first_failed_sequence_number_and_stops(entry: ModuleType) -> None:
    reply = entry.handle_clicks(lambda_event("kinesis"), None)
    assert reply == {
        "batchItemFailures": [
            {"itemIdentifier": "49590338271490256608559692538361571095921575989136588802"}
        ]
    }
    # Lambda retries from the failed record: the ones behind it are not run now.
    assert [e.data for e in seen(entry)] == [b"click 1", b"click 2 fail"]
    first = seen(entry)[0]
    assert dict(first.metadata) == {
        "partitionKey": "pk-1",
        "sequenceNumber": "49590338271490256608559692538361571095921575989136588801",
        "approximateArrivalTimestamp": "2018-12-17T22:10:50.987000Z",
        "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588801",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/everything-clicks",
    }


def test_kinesis_batch_without_failures_reports_none(entry: ModuleType) -> None:
    event = lambda_event("kinesis")
    event["Records"] = [
        r for r in event["Records"] if b"fail" not in base64.b64decode(r["kinesis"]["data"])
    ]
    assert entry.handle_clicks(event, None) == {"batchItemFailures": []}
    assert [e.data for e in seen(entry)] == [b"click 1", b"click 3"]


def test_dynamodb_stream_reports_the_first_failed_sequence_number(entry: ModuleType) -> None:
    reply = entry.handle_profiles(lambda_event("dynamodb"), None)
    assert reply == {"batchItemFailures": [{"itemIdentifier": "222"}]}
    insert, modify = seen(entry)
    record = lambda_event("dynamodb")["Records"][0]
    assert json.loads(insert.data) == record  # no payload field: the record as JSON
    assert insert.metadata["eventName"] == "INSERT"
    assert modify.metadata["sequenceNumber"] == "222"


def test_sns_message_is_passed_untouched(entry: ModuleType) -> None:
    assert entry.handle_alerts(lambda_event("sns"), None) is None
    (event,) = seen(entry)
    assert event.data == b"eyJub3QiOiAiZGVjb2RlZCJ9"  # looks like base64, stays as sent
    assert event.metadata["severity"] == "high"
    assert event.metadata["topicArn"] == "arn:aws:sns:us-east-1:123456789012:everything-alerts"
    assert event.metadata["subject"] == "disk"


def test_sns_failure_raises_for_lambda_to_retry(entry: ModuleType) -> None:
    event = lambda_event("sns")
    event["Records"][0]["Sns"]["Message"] = "fail"
    with pytest.raises(RuntimeError, match="asked to fail"):
        entry.handle_alerts(event, None)


def test_s3_notification_and_eventbridge_give_the_same_keys(entry: ModuleType) -> None:
    entry.handle_uploads(lambda_event("s3"), None)
    entry.handle_archive(lambda_event("s3_eventbridge"), None)
    notified, bridged = seen(entry)
    assert notified.metadata["key"] == "incoming/red flower:1.jpg"  # URL-decoded
    assert notified.metadata["bucket"] == "everything-uploads"
    assert bridged.metadata["key"] == "2026/red flower:1.jpg"  # EventBridge: as is
    assert bridged.metadata["bucket"] == "everything-archive"
    assert set(bridged.metadata) - {"versionId"} == set(notified.metadata)
    assert json.loads(notified.data) == lambda_event("s3")["Records"][0]


def test_schedule_tick(entry: ModuleType) -> None:
    assert entry.handle_nightly(lambda_event("schedule"), None) is None
    (tick,) = seen(entry)
    assert tick.data == b""
    assert tick.metadata["timeZone"] == "Europe/Paris"
    assert tick.metadata["readTimeUTC"].endswith("Z")
    assert tick.metadata["scheduledTime"] == "2026-11-23T01:30:00Z"
    assert tick.metadata["executionId"] == "f1e2d3c4-0000-4000-8000-123456789abc"


def test_http_api_request_and_response(entry: ModuleType) -> None:
    response = entry.handle_webhook(lambda_event("http_v2"), None)
    assert response["statusCode"] == 200
    assert response["headers"] == {"content-type": "application/json"}
    assert json.loads(response["body"]) == {
        "received": '{"action": "opened"}',
        "path": "/hooks/github",
    }
    (request,) = seen(entry)
    assert request.data == b'{"action": "opened"}'  # base64 removed (isBase64Encoded)
    assert request.metadata["method"] == "POST"
    assert request.metadata["path"] == "/hooks/github"
    assert request.metadata["requestId"] == "JKJaXmPLvHcESHA="
    assert request.metadata["query"] == "a=1&b=2"
    assert request.metadata["X-Hub-Signature"] == "sha256=abc"
    assert request.metadata["Cookie"] == "s=1; t=2"


def test_rest_api_request_without_body_gets_204(entry: ModuleType) -> None:
    response = entry.handle_webhook(lambda_event("http_v1"), None)
    assert response["statusCode"] == 204 and response["body"] == ""
    (request,) = seen(entry)
    assert request.metadata["method"] == "DELETE"
    assert request.metadata["X-Trace"] == "a, b"
    assert request.metadata["query"] == "x=1&x=2"
    assert request.data == b""


def test_self_managed_kafka_reports_each_partitions_first_failure(entry: ModuleType) -> None:
    reply = entry.handle_payments(lambda_event("self_managed_kafka"), None)
    assert reply == {
        "batchItemFailures": [{"itemIdentifier": {"partition": "payments-0", "offset": 16}}]
    }
    assert [e.data for e in seen(entry)] == [b"pay 15", b"pay 16 fail", b"pay 4"]
    first = seen(entry)[0]
    assert dict(first.metadata) == {
        "tenant": "acme",
        "__key": "order-15",
        "__topic": "payments",
        "__partition": "0",
        "__offset": "15",
        "__timestamp": "1700000000015",
    }


def test_msk_binary_value_and_no_key(entry: ModuleType) -> None:
    with pytest.raises(RuntimeError, match="telemetry-3 offset 100"):
        # on-demand mode: Lambda ignores partial replies, so a failure fails the batch
        event = lambda_event("msk")
        event["records"]["telemetry-3"][0]["value"] = base64.b64encode(b"fail").decode()
        entry.handle_telemetry(event, None)
    entry.handle_telemetry(lambda_event("msk"), None)
    event = seen(entry)[-1]
    assert event.data == b"\x00\x01binary"
    assert "__key" not in event.metadata
    assert event.metadata["unit"] == "celsius"


def test_amazon_mq_message(entry: ModuleType) -> None:
    assert entry.handle_jobs(lambda_event("mq"), None) is None
    (job,) = seen(entry)
    assert job.data == b"job one"
    # string headers only (as Dapr's rabbitmq input), keys URL-query-escaped
    assert dict(job.metadata) == {"tenant": "acme", "trace+id": "t-1"}


def test_iot_rule_message(entry: ModuleType) -> None:
    assert entry.handle_sensors(lambda_event("iot"), None) is None
    (reading,) = seen(entry)
    assert reading.data == b"\x01\x02 21.5"
    assert dict(reading.metadata) == {"topic": "sensors/kitchen/temperature"}
