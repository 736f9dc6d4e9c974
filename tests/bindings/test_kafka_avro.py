"""bindings.kafka with the schema registry and Avro, as Dapr: output `valueSchemaType: Avro`
encodes JSON with the latest version of `<topic>-value`, framed as magic byte, schema ID and
Avro binary; the input (component `valueSchemaType: Avro`) decodes back to JSON. Records go
through the Tansu broker; the registry is a local HTTP server answering the requests
confluent-kafka's SchemaRegistryClient really sends (pytest-httpserver), which checks its
basic authentication."""

from __future__ import annotations

import base64
import io
import json
from typing import TYPE_CHECKING, Any

import fastavro
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from portabind.bindings.kafka import KafkaInput, KafkaMetadata, KafkaOutput
from portabind.errors import BindingError
from portabind.events import Metadata
from tests.bindings.kafka_helpers import create_topic, kafka_metadata

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Listener  # tests/bindings/conftest.py
    from pytest_httpserver import HTTPServer

SCHEMA_ID = 7
ORDER = {
    "type": "record",
    "name": "Order",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "item", "type": "string"},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}
CREDENTIALS = "Basic " + base64.b64encode(b"registry-key:registry-secret").decode()


@pytest.fixture
def topic(unique_name: Callable[..., str], kafka_brokers: str) -> str:
    """A new one-partition topic."""
    name = unique_name()
    create_topic(kafka_brokers, name)
    return name


@pytest.fixture
def registry(httpserver: HTTPServer, topic: str) -> HTTPServer:
    """Schema ID 7 is version 2 and the latest of subject `<topic>-value`."""
    schema = json.dumps(ORDER)
    headers = {"Authorization": CREDENTIALS}
    httpserver.expect_request(
        f"/subjects/{topic}-value/versions/latest", method="GET", headers=headers
    ).respond_with_json(
        {"subject": f"{topic}-value", "version": 2, "id": SCHEMA_ID, "schema": schema}
    )
    httpserver.expect_request(
        f"/schemas/ids/{SCHEMA_ID}", method="GET", headers=headers
    ).respond_with_json({"schema": schema})
    return httpserver


@pytest.fixture
def settings(kafka_brokers: str, topic: str, registry: HTTPServer) -> Callable[..., KafkaMetadata]:
    registry_fields = {
        "schemaRegistryURL": registry.url_for("/"),
        "schemaRegistryAPIKey": "registry-key",
        "schemaRegistryAPISecret": "registry-secret",
    }
    return lambda **values: kafka_metadata(kafka_brokers, topic, **registry_fields, **values)


def _raw_values(brokers: str, topic: str, count: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "unused"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    try:
        for _ in range(60):
            record = consumer.poll(0.5)
            if record is not None and not record.error():
                values.append(record.value())
            if len(values) == count:
                break
    finally:
        consumer.close()
    return values


def _latest_lookups(registry: HTTPServer) -> int:
    return sum(1 for request, _ in registry.log if request.path.endswith("/versions/latest"))


def test_output_encodes_json_with_the_latest_schema_in_the_registry_framing(
    settings: Any, closing: Any, kafka_brokers: str, topic: str, registry: HTTPServer
) -> None:
    output = closing(KafkaOutput("orders", settings()))
    order = {"id": 42, "item": "book", "note": "gift"}
    output.invoke("create", json.dumps(order).encode(), Metadata({"valueSchemaType": "Avro"}))
    output.invoke("create", b'{"id": 43, "item": "pen"}', Metadata({"valueSchemaType": "avro"}))
    first, second = _raw_values(kafka_brokers, topic, 2)
    assert first[:5] == b"\x00" + SCHEMA_ID.to_bytes(4, "big")
    parsed = fastavro.parse_schema(ORDER)
    assert fastavro.schemaless_reader(io.BytesIO(first[5:]), parsed, None) == order
    assert fastavro.schemaless_reader(io.BytesIO(second[5:]), parsed, None) == {
        "id": 43,
        "item": "pen",
        "note": None,
    }
    assert _latest_lookups(registry) == 1  # schemaCachingEnabled (default): asked once


def test_without_schema_caching_every_write_asks_the_registry(
    settings: Any, closing: Any, registry: HTTPServer
) -> None:
    output = closing(KafkaOutput("orders", settings(schemaCachingEnabled="false")))
    for number in (1, 2):
        output.invoke(
            "create",
            json.dumps({"id": number, "item": "x"}).encode(),
            Metadata({"valueSchemaType": "Avro"}),
        )
    assert _latest_lookups(registry) == 2


def test_input_decodes_avro_values_to_json(
    settings: Any, closing: Any, listen: Callable[..., Listener]
) -> None:
    closing(KafkaOutput("orders", settings())).invoke(
        "create", b'{"id": 1, "item": "cup", "note": "blue"}', Metadata({"valueSchemaType": "Avro"})
    )
    (event,) = listen(KafkaInput("orders", settings(valueSchemaType="Avro"))).wait_for(1)
    assert event.json() == {"id": 1, "item": "cup", "note": "blue"}
    assert event.metadata["valueSchemaType"] == "Avro"  # request metadata travels as a header


def test_use_avro_json_writes_and_reads_avros_json_encoding(
    settings: Any, closing: Any, listen: Callable[..., Listener]
) -> None:
    metadata = settings(useAvroJSON="true", valueSchemaType="Avro")
    closing(KafkaOutput("orders", metadata)).invoke(
        "create", b'{"id": 5, "item": "lamp", "note": {"string": "spare"}}', Metadata()
    )
    (event,) = listen(KafkaInput("orders", metadata)).wait_for(1)
    assert event.json() == {"id": 5, "item": "lamp", "note": {"string": "spare"}}


def test_data_that_does_not_fit_the_schema_is_refused_by_name(
    settings: Any, closing: Any, kafka_brokers: str, topic: str
) -> None:
    output = closing(KafkaOutput("orders", settings()))
    with pytest.raises(BindingError, match=f"schema {SCHEMA_ID} of {topic}-value"):
        output.invoke("create", b'{"id": "not a number"}', Metadata({"valueSchemaType": "Avro"}))
    with pytest.raises(Exception, match="'Protobuf' is not a supported value"):
        output.invoke("create", b"{}", Metadata({"valueSchemaType": "Protobuf"}))


def test_a_value_that_does_not_decode_fails_like_the_handler_and_is_dead_lettered(
    settings: Any, kafka_brokers: str, topic: str, listen: Callable[..., Listener]
) -> None:
    dead = f"{topic}-dead"
    create_topic(kafka_brokers, dead)
    producer = Producer({"bootstrap.servers": kafka_brokers})
    producer.produce(topic, b"{}")  # not registry-framed Avro
    assert producer.flush(10) == 0
    metadata = settings(valueSchemaType="Avro", deadLetterTopic=dead, maxDeliveries="1")
    listener = listen(KafkaInput("orders", metadata))
    consumer = Consumer({"bootstrap.servers": kafka_brokers, "group.id": "unused"})
    consumer.assign([TopicPartition(dead, 0, 0)])
    try:
        copy = None
        for _ in range(80):
            copy = consumer.poll(0.5)
            if copy is not None and not copy.error():
                break
    finally:
        consumer.close()
    assert copy is not None and copy.value() == b"{}"
    assert dict(copy.headers())["portabind-error"] == b"SchemaError: value is too short"
    assert listener.events == []  # the handler never saw it


def test_lambdas_msk_records_decode_as_the_local_listener_does(settings: Any) -> None:
    """The one mapping (`event_from_record`) decodes on every target: here a record of a
    Lambda MSK event (base64 value), mapped by the AWS runtime."""
    from portabind.adapters.aws.runtime import kafka_event

    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(ORDER), {"id": 9, "item": "mug"})
    framed = b"\x00" + SCHEMA_ID.to_bytes(4, "big") + body.getvalue()
    record = {
        "topic": "orders",
        "partition": 0,
        "offset": 5,
        "timestamp": 1767225600000,
        "value": base64.b64encode(framed).decode(),
        "headers": [],
    }
    event = kafka_event("orders", record, settings(valueSchemaType="Avro"))
    assert event.json() == {"id": 9, "item": "mug", "note": None}
