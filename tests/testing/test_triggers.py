"""The trigger kinds test_client.py leaves out, each through its target runtime's entry: what
the handler receives is the normalized event (docs/events.md) of the message sent."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from portabind.bundled import load_app
from portabind.testing import TestClient

if TYPE_CHECKING:
    from pathlib import Path

# Each handler hands what it received to the recorded output `seen`.
APP = """
from portabind import App, BindingEvent, Output

app = App()


def echo(event: BindingEvent, seen: Output) -> None:
    if b"poison" in event.data:
        raise ValueError("poison")
    seen.invoke("create", data=event.data, metadata=dict(event.metadata.items()))


for name in {names!r}:
    app.add_handler(name, echo)
"""

KAFKA = {"brokers": "kafka:9092", "topics": "orders", "consumerGroup": "g", "authType": "none"}
COMPONENTS: dict[str, dict[str, tuple[str, dict[str, str], dict[str, str]]]] = {
    "aws": {
        "table": ("bindings.aws.dynamodb", {"table": "profiles", "region": "us-east-1"}, {}),
        "alerts": (
            "bindings.aws.sns",
            {"topicArn": "arn:aws:sns:us-east-1:123456789012:alerts", "region": "us-east-1"},
            {},
        ),
        "stream": ("bindings.kafka", KAFKA, {}),
        "jobs": ("bindings.rabbitmq", {"host": "amqp://broker", "queueName": "jobs"}, {}),
        "sensors": ("bindings.mqtt3", {"url": "tcp://broker:1883", "topic": "sensors/#"}, {}),
        "archive": (
            "bindings.aws.s3",
            {"bucket": "archive", "region": "us-east-1"},
            {"trigger": "true", "existing": "true"},
        ),
    },
    "azure": {
        "bus": (
            "bindings.azure.servicebusqueues",
            {"namespaceName": "shop", "queueName": "jobs"},
            {},
        ),
        "grid": (
            "bindings.azure.eventgrid",
            {
                "scope": "/subscriptions/s1/resourceGroups/rg",
                "eventSubscriptionName": "to-fn",
                "subscriberEndpoint": "https://example.com/api/events",
            },
            {},
        ),
        "feed": (
            "bindings.azure.cosmosdb",
            {
                "url": "https://shop.documents.azure.com:443/",
                "database": "shop",
                "collection": "orders",
                "partitionKey": "customer",
            },
            {"trigger": "true"},
        ),
        "stream": ("bindings.kafka", KAFKA, {}),
        "jobs": ("bindings.rabbitmq", {"host": "amqp://broker", "queueName": "jobs"}, {}),
    },
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("triggers")
    names = sorted({name for profile in COMPONENTS.values() for name in profile})
    (root / "app.py").write_text(APP.format(names=names))
    for profile, components in COMPONENTS.items():
        documents: list[dict[str, Any]] = [
            {
                "apiVersion": "dapr.io/v1alpha1",
                "kind": "Component",
                "metadata": {
                    "name": name,
                    "annotations": {f"portabind.io/{k}": v for k, v in annotations.items()},
                },
                "spec": {
                    "type": kind,
                    "version": "v1",
                    "metadata": [{"name": k, "value": v} for k, v in fields.items()],
                },
            }
            for name, (kind, fields, annotations) in components.items()
        ]
        documents.append(
            {
                "apiVersion": "dapr.io/v1alpha1",
                "kind": "Component",
                "metadata": {"name": "seen"},
                "spec": {
                    "type": "bindings.http",
                    "version": "v1",
                    "metadata": [{"name": "url", "value": "http://127.0.0.1:9"}],
                },
            }
        )
        (root / "components" / profile).mkdir(parents=True)
        (root / "components" / profile / "all.yaml").write_text(yaml.safe_dump_all(documents))
    return root


def client(project: Path, profile: str) -> TestClient:
    return TestClient(load_app(project), components=project / "components" / profile)


def test_lambda_notifications_streams_and_brokers(project: Path) -> None:
    with client(project, "aws") as aws:
        assert aws.send("table", {"id": "ada"}, metadata={"eventName": "MODIFY"}).ok
        assert aws.send("alerts", "disk full", metadata={"severity": "high"}).ok
        assert aws.send_batch("stream", ["a", "b"], metadata={"__key": "k", "trace": "t"}).ok
        assert aws.send_batch("jobs", ["j1", "j2"], metadata={"tenant": "acme"}).ok
        assert aws.send("sensors", b"\x01\x02", metadata={"topic": "sensors/kitchen"}).ok
        table, alert, first, second, job, _, sensor = aws.outputs["seen"]
    record = json.loads(table.data)  # a stream record without payload: the record as JSON
    assert record["dynamodb"]["NewImage"] == {"id": {"S": "ada"}}
    assert table.metadata["eventName"] == "MODIFY"
    assert (alert.data, alert.metadata["severity"]) == (b"disk full", "high")
    assert alert.metadata["topicArn"] == "arn:aws:sns:us-east-1:123456789012:alerts"
    assert (first.data, second.data) == (b"a", b"b")
    assert (first.metadata["__key"], first.metadata["trace"], first.metadata["__topic"]) == (
        "k",
        "t",
        "orders",
    )
    assert int(second.metadata["__offset"]) == int(first.metadata["__offset"]) + 1
    assert (job.data, job.metadata["tenant"]) == (b"j1", "acme")
    assert (sensor.data, sensor.metadata["topic"]) == (b"\x01\x02", "sensors/kitchen")


def test_an_existing_buckets_objects_arrive_through_eventbridge(project: Path) -> None:
    with client(project, "aws") as aws:
        assert aws.send("archive", b"abc", metadata={"key": "in/a b.csv"}).ok
        (seen,) = aws.outputs["seen"]
    assert (seen.metadata["key"], seen.metadata["bucket"]) == ("in/a b.csv", "archive")
    assert json.loads(seen.data)["s3"]["object"]["size"] == 3


def test_a_failed_amazon_mq_batch_fails_every_message(project: Path) -> None:
    with client(project, "aws") as aws:
        result = aws.send_batch("jobs", ["j1", "poison"])
    assert len(result.failed) == 2  # no partial response: the broker redelivers the batch
    assert str(result.error) == "poison"


def test_azure_messaging_and_event_triggers(project: Path) -> None:
    with client(project, "azure") as azure:
        assert azure.send("bus", {"job": 1}, metadata={"color": "red", "label": "nightly"}).ok
        assert azure.send("grid", {"id": 8}, metadata={"eventType": "Order.Created"}).ok
        assert azure.send_batch("feed", [{"id": "o-1", "n": 1}, {"id": "o-2", "n": 2}]).ok
        assert azure.send("stream", "v", metadata={"__key": "k", "trace": "t"}).ok
        assert azure.send("jobs", "j1").ok
        message, grid, doc1, doc2, record, job = azure.outputs["seen"]
    assert (json.loads(message.data), message.metadata["color"]) == ({"job": 1}, "red")
    assert message.metadata["label"] == "nightly" and message.metadata["id"]
    assert (json.loads(grid.data), grid.metadata["eventType"]) == ({"id": 8}, "Order.Created")
    assert [json.loads(doc1.data)["n"], json.loads(doc2.data)["n"]] == [1, 2]
    assert (record.data, record.metadata["__key"], record.metadata["trace"]) == (b"v", "k", "t")
    assert job.data == b"j1"


def test_a_failed_cosmos_batch_fails_every_document(project: Path) -> None:
    with client(project, "azure") as azure:
        result = azure.send_batch("feed", [{"id": "ok"}, {"id": "bad", "poison": True}])
    assert result.failed == ["ok", "bad"]  # the function's retry policy delivers the batch again
    assert str(result.error) == "poison"
