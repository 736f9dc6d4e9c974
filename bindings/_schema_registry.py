"""Avro values through a Confluent schema registry, as Dapr's kafka component writes and reads
them (components-contrib `common/component/kafka/kafka.go`, `SerializeValue` and
`DeserializeValue`).

A value on the wire is the magic byte 0, the schema ID (4 bytes, big-endian) and the Avro
binary encoding. Encoding takes JSON and the latest version of the subject `<topic>-value`;
decoding looks the writer's schema up by the value's ID and gives JSON back. The JSON is plain
JSON (a union's value as is) unless `useAvroJSON`, which uses Avro's JSON encoding (a union's
value wrapped as `{"<type>": value}`), both ways.

The registry is read with confluent-kafka's `SchemaRegistryClient` (`GET
/subjects/<subject>/versions/latest`, `GET /schemas/ids/<id>`), with basic authentication
from `schemaRegistryAPIKey`/`schemaRegistryAPISecret`. With `schemaCachingEnabled` the latest
version of a subject is kept for `schemaLatestVersionCacheTTL`; without it, each write asks
the registry. A schema looked up by ID never changes, so it is always kept. fastavro does the
encoding; both are imported when a `Registry` is made.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import timedelta

MAGIC = b"\x00"
HEADER_BYTES = 5


class SchemaError(Exception):
    """A value could not be encoded or decoded; the message says why."""


def subject(topic: str) -> str:
    """The registry subject of a topic's values (Dapr's naming)."""
    return f"{topic}-value"


def _plain(value: Any) -> Any:
    """JSON for what Avro decodes to beyond JSON's types: bytes as Avro's JSON encoding writes
    them (one character per byte), anything else (decimals, times, UUIDs) as its text."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


class Registry:
    def __init__(
        self,
        url: str,
        *,
        api_key: str | None,
        api_secret: str | None,
        caching: bool,
        latest_ttl: timedelta,
        avro_json: bool,
    ) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        config: dict[str, Any] = {"url": url}
        if api_key:
            config["basic.auth.user.info"] = f"{api_key}:{api_secret or ''}"
        if caching:
            config["cache.latest.ttl.sec"] = latest_ttl.total_seconds()
        self._client = SchemaRegistryClient(config)
        self._caching = caching
        self._avro_json = avro_json
        self._parsed: dict[int, Any] = {}

    def _schema(self, schema_id: int, text: str | None) -> Any:
        """The parsed (fastavro) schema of a registry ID."""
        import fastavro

        if schema_id not in self._parsed:
            try:
                self._parsed[schema_id] = fastavro.parse_schema(json.loads(text or "null"))
            except (ValueError, fastavro.schema.SchemaParseException) as error:
                raise SchemaError(f"schema {schema_id} is not an Avro schema: {error}") from None
        return self._parsed[schema_id]

    def _registry(self, what: str, call: Any, *arguments: Any) -> Any:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            return call(*arguments)
        except SchemaRegistryError as error:
            raise SchemaError(f"schema registry, {what}: {error.error_message}") from None
        except Exception as error:  # the HTTP client's: unreachable, TLS, timeouts
            raise SchemaError(f"schema registry, {what}: {error}") from None

    def encode(self, topic: str, data: bytes) -> bytes:
        """JSON `data` as a registry-framed Avro value of the subject's latest schema."""
        import fastavro
        from fastavro.validation import ValidationError

        if not self._caching:
            self._client.clear_latest_caches()  # type: ignore[no-untyped-call]
        name = subject(topic)
        latest = self._registry(f"latest {name}", self._client.get_latest_version, name)
        schema = self._schema(latest.schema_id, latest.schema.schema_str)
        try:
            if self._avro_json:
                line = json.dumps(json.loads(data))  # fastavro reads one document per line
                record = next(iter(fastavro.json_reader(io.StringIO(line), schema)))
            else:
                record = json.loads(data)
                fastavro.validation.validate(record, schema, raise_errors=True)
            body = io.BytesIO()
            fastavro.schemaless_writer(body, schema, record)
        except (ValueError, TypeError, KeyError, ValidationError, StopIteration) as error:
            raise SchemaError(
                f"the data does not fit schema {latest.schema_id} of {name}: {error}"
            ) from None
        return MAGIC + int(latest.schema_id).to_bytes(4, "big") + body.getvalue()

    def decode(self, value: bytes) -> bytes:
        """A registry-framed Avro value as JSON."""
        import fastavro

        if len(value) < HEADER_BYTES:
            raise SchemaError("value is too short")
        schema_id = int.from_bytes(value[1:HEADER_BYTES], "big")
        found = self._registry(f"schema {schema_id}", self._client.get_schema, schema_id)
        schema = self._schema(schema_id, found.schema_str)
        try:
            record = fastavro.schemaless_reader(io.BytesIO(value[HEADER_BYTES:]), schema, None)
        except (ValueError, EOFError, IndexError) as error:
            raise SchemaError(
                f"the value does not decode with schema {schema_id}: {error}"
            ) from None
        if self._avro_json:
            text = io.StringIO()
            fastavro.json_writer(text, schema, [record])
            return text.getvalue().strip().encode()
        return json.dumps(record, default=_plain).encode()
