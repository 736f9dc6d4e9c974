"""`bindings.kafka`: Apache Kafka, input and output, on confluent-kafka (librdkafka) (Dapr's:
components-contrib `bindings/kafka/kafka.go` over `common/component/kafka/`).

confluent-kafka rather than kafka-python: librdkafka is the client Confluent maintains, it has
SASL/SCRAM, OAUTHBEARER with OIDC client credentials, mTLS from PEM text, every compression
codec and idempotent, acknowledged produce built in, which is what Dapr's metadata asks for.

Output `create` produces the payload to `publishTopic` and returns once the broker has
acknowledged the record. Request metadata `partitionKey` (or `__key`) is the record key,
`partitionNumber` the partition; every request metadata entry also becomes a record header.

The input listener is a group consumer of `topics` that stores a record's offset for commit
only after the handler returned. When the handler raises, the offset is not stored and the
consumer seeks back, so the record is delivered again `consumeRetryInterval` later
(docs/delivery.md); a failing record is never skipped. With `deadLetterTopic` (a portabind
extension, like `maxDeliveries`) it is produced there, with the error and its origin as
headers, after `maxDeliveries` failed deliveries, and its offset stored only once the broker
acknowledged that copy. Without it the record is retried until the handler succeeds, as Dapr
does with `consumeRetryEnabled: true`; Dapr's default instead skips it at once and a later
commit loses it silently.

`event_from_record` is the one mapping from a Kafka record to a `BindingEvent`.

Accepted so Dapr components load unchanged, with no effect on librdkafka (which negotiates
the protocol version and manages its own buffers): `version`, `channelBufferSize`,
`metadataTimeout`. Not supported (a clear error): `authType` `oidc_private_key_jwt` and
`awsiam`, and the Avro schema registry (`schemaRegistryURL`, request `valueSchemaType`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote_plus

from pydantic import field_validator, model_validator

from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings.aws import AwsCredentials
from portabind.errors import BindingError, UserError
from portabind.events import BindingEvent, BindingResponse, Metadata
from portabind.metadata import Duration, Secret, Truthy, setting

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

#: How long one produce (`create`, a dead-letter copy) waits for the broker's acknowledgement.
PRODUCE_TIMEOUT = 30.0
#: A record still failing after `maxDeliveries` is logged at error level once per this many
#: further failures: visible without a line per retry.
REPORT_EVERY = 100
#: Characters of the handler's error kept in the `portabind-error` dead-letter header.
ERROR_HEADER_CHARS = 1000
#: How often the listener looks at `stop` while no record arrives.
IDLE_SECONDS = 0.5

_MECHANISMS = {"PLAINTEXT": "PLAIN", "SHA-256": "SCRAM-SHA-256", "SHA-512": "SCRAM-SHA-512"}
_ACKS = {"all": "all", "local": "1", "none": "0"}
_ASSIGNMENT = {"range": "range", "roundrobin": "roundrobin", "sticky": "cooperative-sticky"}
AuthType = Literal[
    "none", "password", "mtls", "oidc", "oidc_private_key_jwt", "certificate", "awsiam"
]


def _ms(value: timedelta) -> int:
    return int(value.total_seconds() * 1000)


class KafkaMetadata(AwsCredentials):
    """Dapr's Kafka fields; the AWS profile fields (inherited) serve only `awsiam`."""

    binding_type = "bindings.kafka"

    region: str | None = setting("region", None, aliases=("awsRegion",))  # type: ignore[assignment]
    brokers: str = setting("brokers", description="comma-separated host:port list")
    auth_type: AuthType = setting("authType")
    topics: str | None = setting("topics", None, description="comma-separated, input")
    publish_topic: str | None = setting("publishTopic", None, description="output topic")
    consumer_group: str | None = setting("consumerGroup", None, aliases=("consumerID",))
    client_id: str = setting("clientID", "sarama", aliases=("clientId",))
    initial_offset: Literal["newest", "oldest"] = setting("initialOffset", "newest")
    consume_retry_enabled: Truthy = setting("consumeRetryEnabled", False)
    consume_retry_interval: Duration = setting("consumeRetryInterval", timedelta(milliseconds=100))
    dead_letter_topic: str | None = setting(
        "deadLetterTopic",
        None,
        description="portabind extension (not in Dapr): topic a record goes to after "
        "maxDeliveries failed deliveries; without it the record is retried until handled",
    )
    max_deliveries: int = setting(
        "maxDeliveries",
        3,
        description="portabind extension (not in Dapr): failed deliveries of a record before "
        "it is dead-lettered, or (without deadLetterTopic) logged at error level",
    )
    heartbeat_interval: Duration = setting("heartbeatInterval", timedelta(seconds=3))
    session_timeout: Duration = setting("sessionTimeout", timedelta(seconds=10))
    version: str = setting("version", "2.0.0.0", description="no effect: negotiated")
    max_message_bytes: int | None = setting("maxMessageBytes", None)
    sasl_username: str | None = setting("saslUsername", None)
    sasl_password: Secret | None = setting("saslPassword", None, secret=True)
    sasl_mechanism: str = setting("saslMechanism", "PLAINTEXT")
    ca_cert: str | None = setting("caCert", None, description="PEM")
    client_cert: str | None = setting("clientCert", None, description="PEM")
    client_key: Secret | None = setting("clientKey", None, secret=True, description="PEM")
    skip_verify: Truthy = setting("skipVerify", False)
    disable_tls: Truthy = setting("disableTls", False)
    oidc_token_endpoint: str | None = setting("oidcTokenEndpoint", None)
    oidc_client_id: str | None = setting("oidcClientID", None)
    oidc_client_secret: Secret | None = setting("oidcClientSecret", None, secret=True)
    oidc_scopes: str = setting("oidcScopes", "openid")
    oidc_extensions: str | None = setting("oidcExtensions", None, description="JSON object")
    oidc_client_assertion_cert: str | None = setting("oidcClientAssertionCert", None)
    oidc_client_assertion_key: Secret | None = setting("oidcClientAssertionKey", None, secret=True)
    oidc_resource: str | None = setting("oidcResource", None)
    oidc_audience: str | None = setting("oidcAudience", None)
    oidc_kid: str | None = setting("oidcKid", None)
    consumer_fetch_default: int = setting("consumerFetchDefault", 1048576)
    consumer_fetch_min: int = setting("consumerFetchMin", 1)
    channel_buffer_size: int = setting("channelBufferSize", 256, description="no effect")
    metadata_refresh_interval: Duration = setting(
        "clientConnectionTopicMetadataRefreshInterval", timedelta(minutes=8)
    )
    keep_alive_interval: Duration = setting(
        "clientConnectionKeepAliveInterval", timedelta(0), description="> 0: TCP keep-alive"
    )
    escape_headers: Truthy = setting("escapeHeaders", False)
    exclude_header_meta_regex: str | None = setting("excludeHeaderMetaRegex", None)
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = setting("compression", "none")
    rebalance_strategy: Literal["range", "sticky", "roundrobin"] = setting(
        "consumerGroupRebalanceStrategy", "range"
    )
    schema_registry_url: str | None = setting("schemaRegistryURL", None)
    schema_registry_api_key: str | None = setting("schemaRegistryAPIKey", None)
    schema_registry_api_secret: Secret | None = setting(
        "schemaRegistryAPISecret", None, secret=True
    )
    schema_caching_enabled: Truthy = setting("schemaCachingEnabled", True)
    schema_latest_version_cache_ttl: Duration = setting(
        "schemaLatestVersionCacheTTL", timedelta(minutes=5)
    )
    use_avro_json: Truthy = setting("useAvroJSON", False)
    dial_timeout: Duration = setting("dialTimeout", timedelta(seconds=30))
    read_timeout: Duration = setting("readTimeout", timedelta(seconds=30))
    write_timeout: Duration = setting("writeTimeout", timedelta(seconds=30))
    metadata_timeout: Duration = setting("metadataTimeout", timedelta(0), description="no effect")
    producer_required_acks: Literal["all", "local", "none"] = setting("producerRequiredAcks", "all")
    producer_retry_max: int = setting("producerRetryMax", 5)

    @field_validator(
        "auth_type", "initial_offset", "compression", "rebalance_strategy", mode="before"
    )
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("sasl_mechanism")
    @classmethod
    def _mechanism(cls, value: str) -> str:
        if value.upper() not in _MECHANISMS:
            raise ValueError("saslMechanism must be PLAINTEXT, SHA-256 or SHA-512")
        return value.upper()

    @field_validator("exclude_header_meta_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"excludeHeaderMetaRegex is not a valid regex: {error}") from None
        return value

    @model_validator(mode="after")
    def _supported(self) -> KafkaMetadata:
        if self.auth_type in ("oidc_private_key_jwt", "awsiam"):
            raise ValueError(
                f"authType {self.auth_type} is not supported by portabind's kafka binding; "
                "use none, password, mtls, certificate or oidc"
            )
        if self.schema_registry_url:
            raise ValueError("the Avro schema registry (schemaRegistryURL) is not supported")
        if self.max_deliveries < 1:
            raise ValueError("maxDeliveries must be at least 1")
        if self.dead_letter_topic and self.consume_retry_enabled:
            # Dapr's consumeRetryEnabled retries until the handler succeeds: the dead-letter
            # topic would never be used, which a user setting both would not expect.
            raise ValueError(
                "deadLetterTopic is not used with consumeRetryEnabled: true, which retries "
                "a record until the handler succeeds; set one or the other"
            )
        if self.auth_type == "password" and not self.sasl_username:
            raise ValueError("authType password needs saslUsername and saslPassword")
        if self.auth_type == "mtls" and not (self.client_cert and self.client_key):
            raise ValueError("authType mtls needs clientCert and clientKey")
        if self.auth_type == "oidc" and not (self.oidc_token_endpoint and self.oidc_client_id):
            raise ValueError(
                "authType oidc needs oidcTokenEndpoint, oidcClientID, oidcClientSecret"
            )
        return self

    def excluded(self, key: str) -> bool:
        """Whether `excludeHeaderMetaRegex` keeps this key out of headers and metadata."""
        pattern = self.exclude_header_meta_regex
        return bool(pattern) and re.search(pattern or "", key) is not None


def client_config(metadata: KafkaMetadata) -> dict[str, Any]:
    """librdkafka settings shared by the producer and the consumer."""
    config: dict[str, Any] = {
        "bootstrap.servers": metadata.brokers,
        "client.id": metadata.client_id,
        "socket.connection.setup.timeout.ms": _ms(metadata.dial_timeout),
        "socket.timeout.ms": _ms(max(metadata.read_timeout, metadata.write_timeout)),
        "topic.metadata.refresh.interval.ms": _ms(metadata.metadata_refresh_interval),
        "socket.keepalive.enable": metadata.keep_alive_interval > timedelta(0),
    }
    # As in Dapr: no TLS with authType none or disableTls, TLS for every other type.
    tls = metadata.auth_type != "none" and not metadata.disable_tls
    sasl = metadata.auth_type in ("password", "oidc")
    config["security.protocol"] = ("SASL_" if sasl else "") + ("SSL" if tls else "PLAINTEXT")
    if tls:
        if metadata.ca_cert:
            config["ssl.ca.pem"] = metadata.ca_cert
        if metadata.skip_verify:
            config["enable.ssl.certificate.verification"] = False
            config["ssl.endpoint.identification.algorithm"] = "none"
        if metadata.client_cert and metadata.client_key:
            config["ssl.certificate.pem"] = metadata.client_cert
            config["ssl.key.pem"] = metadata.secret("client_key")
    if metadata.auth_type == "password":
        config["sasl.mechanism"] = _MECHANISMS[metadata.sasl_mechanism]
        config["sasl.username"] = metadata.sasl_username
        config["sasl.password"] = metadata.secret("sasl_password") or ""
    if metadata.auth_type == "oidc":
        config["sasl.mechanism"] = "OAUTHBEARER"
        config["sasl.oauthbearer.method"] = "oidc"
        config["sasl.oauthbearer.token.endpoint.url"] = metadata.oidc_token_endpoint
        config["sasl.oauthbearer.client.id"] = metadata.oidc_client_id
        config["sasl.oauthbearer.client.secret"] = metadata.secret("oidc_client_secret") or ""
        config["sasl.oauthbearer.scope"] = " ".join(
            scope.strip() for scope in metadata.oidc_scopes.split(",") if scope.strip()
        )
        if metadata.oidc_extensions:
            extensions = json.loads(metadata.oidc_extensions)
            config["sasl.oauthbearer.extensions"] = ",".join(
                f"{key}={value}" for key, value in extensions.items()
            )
    if metadata.max_message_bytes:
        config["message.max.bytes"] = metadata.max_message_bytes
    return config


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def event_from_record(
    name: str,
    *,
    value: bytes | None,
    key: bytes | str | None,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    headers: Iterable[tuple[str, bytes | str | None]] | None,
    metadata: KafkaMetadata | None = None,
) -> BindingEvent:
    """The event for one Kafka record: `data` is the value; metadata the record headers
    (UTF-8) under their own names, then Dapr's `__key` (when the record has one), `__topic`,
    `__partition`, `__offset` and `__timestamp` (Unix milliseconds), which a header cannot
    mask. `escapeHeaders` URL-escapes header values and the key; `excludeHeaderMetaRegex`
    leaves matching headers out."""
    escape = metadata is not None and metadata.escape_headers

    def shown(text: str) -> str:
        return quote_plus(text, safe="") if escape else text

    fields: dict[str, str] = {}
    for header, header_value in headers or ():
        if metadata is None or not metadata.excluded(header):
            fields[header] = shown(_text(header_value))
    if key:
        fields["__key"] = shown(_text(key))
    fields["__topic"] = topic
    fields["__partition"] = str(partition)
    fields["__offset"] = str(offset)
    if timestamp_ms is not None and timestamp_ms >= 0:
        fields["__timestamp"] = str(timestamp_ms)
    return BindingEvent(name, value or b"", Metadata(fields))


class _ProduceFailed(Exception):
    """The broker did not acknowledge a record; the message says why."""


class _Publisher:
    """A producer whose `send` returns once the broker acknowledged the record: `create` and
    the listener's dead-lettering produce this way."""

    def __init__(self, metadata: KafkaMetadata) -> None:
        from confluent_kafka import Producer

        self._producer = Producer(
            {
                **client_config(metadata),
                "acks": _ACKS[metadata.producer_required_acks],
                "retries": metadata.producer_retry_max,
                "compression.type": metadata.compression,
            }
        )

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None,
        headers: list[tuple[str, bytes | str | None]],
        partition: int | None = None,
    ) -> None:
        """Produce one record and wait for its acknowledgement; `_ProduceFailed` if none came."""
        from confluent_kafka import KafkaException

        done = threading.Event()
        outcome: list[Any] = []

        def delivered(error: Any, record: Any) -> None:
            outcome.append(error)
            done.set()

        options: dict[str, Any] = {} if partition is None else {"partition": partition}
        try:
            self._producer.produce(
                topic, value, key=key, headers=headers or None, on_delivery=delivered, **options
            )
            # poll() serves delivery callbacks; several threads may poll at once.
            waited = 0.0
            while not done.is_set() and waited < PRODUCE_TIMEOUT:
                self._producer.poll(0.1)
                waited += 0.1
        except (KafkaException, BufferError) as error:
            raise _ProduceFailed(str(error)) from error
        if not done.is_set():
            raise _ProduceFailed(f"no acknowledgement in {PRODUCE_TIMEOUT}s")
        if outcome[0] is not None:
            raise _ProduceFailed(str(outcome[0]))

    def close(self) -> None:
        # flush() delivers what is queued; close() frees the client now, instead of whenever
        # the garbage collector gets to it, so no background thread keeps dialling a broker
        # that has gone away.
        self._producer.flush(PRODUCE_TIMEOUT)
        self._producer.close()


class KafkaOutput(OutputBinding[KafkaMetadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: KafkaMetadata) -> None:
        super().__init__(name, metadata)
        if not metadata.publish_topic:
            raise UserError(
                f"output binding {name} (bindings.kafka) needs publishTopic",
                hint="add the metadata field publishTopic: the topic `create` produces to",
            )
        self._publisher = _Publisher(metadata)

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        if metadata.get("valueSchemaType"):
            raise UserError("request metadata valueSchemaType (Avro) is not supported")
        key = metadata.get("partitionKey") or metadata.get("__key")
        partition = None
        if "partitionNumber" in metadata:
            try:
                partition = int(metadata["partitionNumber"])
            except ValueError:
                raise UserError(
                    f"request metadata partitionNumber {metadata['partitionNumber']!r} "
                    "is not an integer"
                ) from None
        headers: list[tuple[str, bytes | str | None]] = [
            (k, v.encode()) for k, v in metadata.items() if not self.metadata.excluded(k)
        ]
        try:
            self._publisher.send(
                self.metadata.publish_topic or "",
                data,
                key=key.encode() if key else None,
                headers=headers,
                partition=partition,
            )
        except _ProduceFailed as error:
            raise BindingError(self.name, "create", str(error)) from error
        return BindingResponse()

    def close(self) -> None:
        self._publisher.close()


def _coordinates(record: Any) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed record."""
    return str(record.topic()), int(record.partition()), int(record.offset())


def _dead_letter_headers(
    record_headers: Iterable[tuple[str, bytes | str | None]] | None,
    error: BaseException,
    where: tuple[str, int, int],
) -> list[tuple[str, bytes | str | None]]:
    """The headers of a record's dead-letter copy: its own, then the handler's error (type and
    message, truncated) and the record's origin."""
    topic, partition, offset = where
    reason = f"{type(error).__name__}: {error}"[:ERROR_HEADER_CHARS]
    return [
        *(record_headers or ()),
        ("portabind-error", reason.encode()),
        ("portabind-original-topic", topic.encode()),
        ("portabind-original-partition", str(partition).encode()),
        ("portabind-original-offset", str(offset).encode()),
    ]


class KafkaInput(InputBinding[KafkaMetadata]):
    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        topics = [t.strip() for t in (self.metadata.topics or "").split(",") if t.strip()]
        if not topics:
            log.warning("%s: no topics to consume (metadata topics is empty)", self.name)
            stop.wait()
            return
        if not self.metadata.consumer_group:
            raise UserError(
                f"input binding {self.name} (bindings.kafka) needs consumerGroup",
                hint="add the metadata field consumerGroup (alias consumerID)",
            )
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        dead_letters = _Publisher(self.metadata) if self.metadata.dead_letter_topic else None
        consumer = Consumer(
            {
                **client_config(self.metadata),
                "group.id": self.metadata.consumer_group,
                "auto.offset.reset": (
                    "earliest" if self.metadata.initial_offset == "oldest" else "latest"
                ),
                "session.timeout.ms": _ms(self.metadata.session_timeout),
                "heartbeat.interval.ms": _ms(self.metadata.heartbeat_interval),
                "max.partition.fetch.bytes": self.metadata.consumer_fetch_default,
                "fetch.min.bytes": self.metadata.consumer_fetch_min,
                "partition.assignment.strategy": _ASSIGNMENT[self.metadata.rebalance_strategy],
                # Offsets are stored only for handled (or dead-lettered) records and committed
                # in the background and on close: a failing record is never committed past.
                "enable.auto.commit": True,
                "enable.auto.offset.store": False,
            }
        )
        failures: dict[tuple[str, int, int], int] = {}
        try:
            consumer.subscribe(topics)
            while not stop.is_set():
                record = consumer.poll(IDLE_SECONDS)
                if record is None:
                    continue
                if record.error():
                    log.warning("%s: Kafka consumer: %s", self.name, record.error())
                    continue
                where = _coordinates(record)
                done = self._done(deliver, record, failures, dead_letters)
                try:
                    if done:
                        failures.pop(where, None)
                        consumer.store_offsets(record)
                    elif not stop.wait(self.metadata.consume_retry_interval.total_seconds()):
                        # Read this record again: the partition restarts at its offset.
                        consumer.seek(TopicPartition(*where))
                except KafkaException as error:
                    # The partition went to another consumer meanwhile (a rebalance). Its new
                    # owner starts from the last commit, so nothing is lost.
                    log.warning("%s: record %s/%s@%s: %s", self.name, *where, error)
        finally:
            consumer.close()
            if dead_letters is not None:
                dead_letters.close()

    def _done(
        self,
        deliver: Callable[[BindingEvent], None],
        record: Any,
        failures: dict[tuple[str, int, int], int],
        dead_letters: _Publisher | None,
    ) -> bool:
        """Deliver one record. True when its offset may be stored: it was handled, or the
        broker acknowledged its copy on the dead-letter topic."""
        _, stamp = record.timestamp()
        event = event_from_record(
            self.name,
            value=record.value(),
            key=record.key(),
            topic=record.topic(),
            partition=record.partition(),
            offset=record.offset(),
            timestamp_ms=stamp,
            headers=record.headers(),
            metadata=self.metadata,
        )
        where = _coordinates(record)
        try:
            deliver(event)
            return True
        except Exception as error:  # the handler's failure
            count = failures[where] = failures.get(where, 0) + 1
            budget = self.metadata.max_deliveries
            if dead_letters is not None and count >= budget:
                return self._dead_lettered(dead_letters, record, error, count)
            if count < budget:
                log.warning(
                    "%s: record %s/%s@%s failed (%s); redelivering", self.name, *where, error
                )
            elif (count - budget) % REPORT_EVERY == 0:
                log.error(
                    "%s: record %s/%s@%s has failed %d deliveries (%s); still retrying: it is "
                    "never skipped (set deadLetterTopic to move such records aside)",
                    self.name,
                    *where,
                    count,
                    error,
                )
            return False

    def _dead_lettered(
        self, dead_letters: _Publisher, record: Any, error: Exception, count: int
    ) -> bool:
        """Copy a record that failed `count` times to `deadLetterTopic`; True once acknowledged."""
        where = _coordinates(record)
        topic = self.metadata.dead_letter_topic or ""
        try:
            dead_letters.send(
                topic,
                record.value(),
                key=record.key(),
                headers=_dead_letter_headers(record.headers(), error, where),
            )
        except _ProduceFailed as failure:
            log.error(
                "%s: record %s/%s@%s failed %d deliveries (%s) and could not be written to "
                "dead-letter topic %s (%s); it stays uncommitted and comes round again",
                self.name,
                *where,
                count,
                error,
                topic,
                failure,
            )
            return False
        log.error(
            "%s: record %s/%s@%s failed %d deliveries (%s); moved to dead-letter topic %s",
            self.name,
            *where,
            count,
            error,
            topic,
        )
        return True


binding = Binding(metadata=KafkaMetadata, output=KafkaOutput, input=KafkaInput)
