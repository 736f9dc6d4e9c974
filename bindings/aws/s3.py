"""`bindings.aws.s3`: Amazon S3 (and S3-compatible stores), output only
(Dapr's: components-contrib `bindings/aws/s3/s3.go`).

Operations and their data follow Dapr: `create` (body unquoted, optionally base64-decoded,
response `{"location", "versionID", "presignURL"?}` and metadata `key`), `get`, `delete`,
`list` (the SDK's ListObjectsOutput as JSON), `presign`, and the bulk operations `bulkGet`,
`bulkCreate`, `bulkDelete`. Request metadata `decodeBase64`, `encodeBase64`, `filePath`,
`presignTTL` and `storageClass` override the component's values for one call.

The input is an extension (Dapr has none; in the cloud the component becomes a Lambda `S3`
trigger or an EventBridge rule): locally the listener adds a notification of the bucket's
`s3:ObjectCreated:*` events (SAM's default; `S3Annotations` change them)
to an SQS queue of its own, keeping the bucket's other notifications, and polls that queue
(`_relay`). `event_from_record` is the one mapping
from an S3 event record to a `BindingEvent`; Lambda's records and the queued notifications
have the same shape.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from portabind.annotations import Annotations, CommaList, text_matching
from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings.aws import _aws, _relay
from portabind.errors import BindingError, NotFound
from portabind.events import (
    BindingEvent,
    BindingResponse,
    Metadata,
    compact_json,
    metadata_value,
    unquote,
)
from portabind.metadata import Bounds, Truthy, is_truthy, parse_duration, setting

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Mapping

#: The bucket events the local listener subscribes to (SAM's default for an S3 trigger).
NOTIFY_EVENTS = ("s3:ObjectCreated:*",)
DEFAULT_MAX_RESULTS = 1000
DEFAULT_CONCURRENCY = 10
#: DeleteObjects takes at most 1000 keys per call.
DELETE_BATCH = 1000
#: The fields of the Go SDK's ListObjectsOutput, which Dapr marshals whole: absent ones are
#: null there, so they are null here too and a handler can index them on any response.
_LIST_FIELDS = (
    "CommonPrefixes",
    "Contents",
    "Delimiter",
    "EncodingType",
    "IsTruncated",
    "Marker",
    "MaxKeys",
    "Name",
    "NextMarker",
    "Prefix",
    "RequestCharged",
)
#: Request metadata that overrides the component's field of the same name for one call.
_OVERRIDES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "decodeBase64": ("decode_base64", is_truthy),
    "encodeBase64": ("encode_base64", is_truthy),
    "filePath": ("file_path", str),
    "presignTTL": ("presign_ttl", str),
    "storageClass": ("storage_class", str),
}


class S3Metadata(_aws.AwsServiceMetadata):
    binding_type = "bindings.aws.s3"

    bucket: str = setting("bucket")
    force_path_style: Truthy = setting("forcePathStyle", False)
    decode_base64: Truthy = setting("decodeBase64", False)
    encode_base64: Truthy = setting("encodeBase64", False)
    disable_ssl: Truthy = setting("disableSSL", False)
    insecure_ssl: Truthy = setting("insecureSSL", False)
    # Dapr decodes these three from the component too; requests usually set them.
    file_path: str | None = setting("filePath", None)
    presign_ttl: str | None = setting("presignTTL", None)
    storage_class: str | None = setting("storageClass", None)


def _endpoint(metadata: S3Metadata) -> str | None:
    """The endpoint URL; one without a scheme gets http:// under `disableSSL`, as in Dapr."""
    endpoint = metadata.endpoint
    if not endpoint or "://" in endpoint:
        return endpoint or None
    return ("http://" if metadata.disable_ssl else "https://") + endpoint


def _client(metadata: S3Metadata) -> Any:
    return _aws.client(
        "s3",
        metadata,
        endpoint=_endpoint(metadata),
        use_ssl=not metadata.disable_ssl,
        verify=not metadata.insecure_ssl,
        # SigV4, as Dapr's SDK signs: botocore would presign us-east-1 URLs with SigV2.
        config={
            "signature_version": "s3v4",
            "s3": {"addressing_style": "path" if metadata.force_path_style else "auto"},
        },
    )


def event_from_record(name: str, record: Mapping[str, Any]) -> BindingEvent:
    """The event for one S3 event record (from a Lambda event or a queued notification).

    A notification has no payload field, so `data` is the record as JSON. Metadata: `key`
    (URL-decoded: S3 encodes it in events, a space as `+`), `bucket`, `eventName`,
    `eventTime`, and `size`, `eTag` and `versionId` when the record has them."""
    s3 = record["s3"]
    found = s3["object"]
    metadata = {
        "key": urllib.parse.unquote_plus(found["key"]),
        "bucket": str(s3["bucket"]["name"]),
        "eventName": str(record["eventName"]),
        "eventTime": str(record["eventTime"]),
    }
    for field in ("size", "eTag", "versionId"):
        if found.get(field) is not None:
            metadata[field] = metadata_value(found[field])
    data = compact_json(record)
    return BindingEvent(name, data, Metadata(metadata))


def _tagging(tags: str) -> str:
    """Dapr's `tags` request metadata (`k1=v1,k2=v2`) as S3's URL-encoded `Tagging`."""
    pairs = []
    for pair in tags.split(","):
        key, _, value = pair.partition("=")
        if key.strip():
            pairs.append((key.strip(), value.strip()))
    return urllib.parse.urlencode(pairs)


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return metadata_value(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class S3Output(OutputBinding[S3Metadata]):
    operations = (
        "create",
        "get",
        "delete",
        "list",
        "presign",
        "bulkGet",
        "bulkCreate",
        "bulkDelete",
    )

    def __init__(self, name: str, metadata: S3Metadata) -> None:
        super().__init__(name, metadata)
        self._endpoint = _endpoint(metadata)
        self._s3 = _client(metadata)

    # -- helpers -----------------------------------------------------------------------
    def _error(self, operation: str, message: str) -> BindingError:
        return BindingError(self.name, operation, f"s3 binding error: {message}")

    def _merged(self, metadata: Metadata) -> S3Metadata:
        update = {
            attribute: convert(metadata[key])
            for key, (attribute, convert) in _OVERRIDES.items()
            if metadata.get(key)
        }
        return self.metadata.model_copy(update=update) if update else self.metadata

    def _key(self, operation: str, metadata: Metadata) -> str:
        key = metadata.get("key", "")
        if not key:
            raise self._error(operation, "required metadata 'key' missing")
        return key

    def _call(self, operation: str, method: str, **parameters: Any) -> Any:
        """Call S3 `method` on the component's bucket; a missing object becomes
        `NotFound("object not found")`, as in Dapr."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._s3, method)(Bucket=self.metadata.bucket, **parameters)
        except ClientError as error:
            if _aws.error_code(error) in ("NoSuchKey", "404"):
                raise NotFound(self.name, operation, "object not found") from error
            raise self._error(operation, f"{operation} operation failed: {error}") from error
        except BotoCoreError as error:
            raise self._error(operation, f"{operation} operation failed: {error}") from error

    def _decode(self, operation: str, body: bytes) -> bytes:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as error:
            raise self._error(operation, f"decode: {error}") from None

    def _payload(self, operation: str, data: bytes) -> dict[str, Any]:
        """The JSON request data of list and the bulk operations; empty or `null` is `{}`."""
        try:
            payload = json.loads(data) if data.strip() else None
        except ValueError as error:
            raise self._error(operation, f"unable to parse request data: {error}") from None
        if payload is None:
            return {}
        if not isinstance(payload, dict):
            raise self._error(operation, "request data must be a JSON object")
        return payload

    def _location(self, key: str) -> str:
        """Where the object lives, in the shape of the Go SDK uploader's `Location`."""
        path = urllib.parse.quote(key, safe="/~")
        bucket = self.metadata.bucket
        if self._endpoint:
            return f"{self._endpoint.rstrip('/')}/{bucket}/{path}"
        region = self.metadata.region
        if self.metadata.force_path_style:
            return f"https://s3.{region}.amazonaws.com/{bucket}/{path}"
        return f"https://{bucket}.s3.{region}.amazonaws.com/{path}"

    def _presign_url(self, operation: str, key: str, ttl: str) -> str:
        try:
            seconds = int(parse_duration(ttl).total_seconds())
        except ValueError as error:
            raise self._error(operation, f"cannot parse duration {ttl}: {error}") from None
        if seconds <= 0:
            raise self._error(operation, f"presignTTL must be positive, got {ttl}")
        # Signing is local: no request is made, so no service error can occur here.
        url: str = self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.metadata.bucket, "Key": key}, ExpiresIn=seconds
        )
        return url

    def _put(self, operation: str, key: str, body: bytes, **extra: str) -> dict[str, Any]:
        put: dict[str, Any] = self._call(operation, "put_object", Key=key, Body=body, **extra)
        return put

    def _read(self, operation: str, key: str) -> bytes:
        got = self._call(operation, "get_object", Key=key)
        data: bytes = got["Body"].read()
        return data

    # -- operations --------------------------------------------------------------------
    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        options = self._merged(metadata)
        key = metadata.get("key") or str(uuid.uuid4())
        if options.file_path:
            try:
                body = Path(options.file_path).read_bytes()
            except OSError as error:
                raise self._error("create", f"file read error: {error}") from None
        else:
            body = unquote(data)
        if options.decode_base64:
            body = self._decode("create", body)
        extra: dict[str, str] = {}
        content_type = metadata.get("Content-Type", "").strip()
        if content_type:
            extra["ContentType"] = content_type
        if options.storage_class:
            extra["StorageClass"] = options.storage_class
        tags = metadata.get("tags", "")
        if tags:
            extra["Tagging"] = _tagging(tags)
        put = self._put("create", key, body, **extra)
        response: dict[str, Any] = {
            "location": self._location(key),
            "versionID": put.get("VersionId"),
        }
        if options.presign_ttl:
            response["presignURL"] = self._presign_url("create", key, options.presign_ttl)
        return BindingResponse.of_json(response, {"key": key})

    def get(self, data: bytes, metadata: Metadata) -> BindingResponse:
        options = self._merged(metadata)
        body = self._read("get", self._key("get", metadata))
        return BindingResponse(base64.b64encode(body) if options.encode_base64 else body)

    def delete(self, data: bytes, metadata: Metadata) -> BindingResponse:
        key = self._key("delete", metadata)
        self._call("delete", "delete_object", Key=key)
        return BindingResponse()

    def list(self, data: bytes, metadata: Metadata) -> BindingResponse:
        payload = self._payload("list", data)
        max_results = int(payload.get("maxResults") or 0)
        request: dict[str, Any] = {
            "MaxKeys": max_results if max_results >= 1 else DEFAULT_MAX_RESULTS,
        }
        for field, parameter in (
            ("marker", "Marker"),
            ("prefix", "Prefix"),
            ("delimiter", "Delimiter"),
        ):
            if payload.get(field):
                request[parameter] = str(payload[field])
        listed = self._call("list", "list_objects", **request)
        result = {field: listed.get(field) for field in _LIST_FIELDS}
        return BindingResponse(json.dumps(result, default=_json_default).encode())

    def presign(self, data: bytes, metadata: Metadata) -> BindingResponse:
        options = self._merged(metadata)
        key = self._key("presign", metadata)
        if not options.presign_ttl:
            raise self._error("presign", "required metadata 'presignTTL' missing")
        return BindingResponse.of_json(
            {"presignURL": self._presign_url("presign", key, options.presign_ttl)}
        )

    def _each(
        self, payload: dict[str, Any], work: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> BindingResponse:
        """Run `work` on every item, `concurrency` at a time; an item's failure is reported
        in its own result (`error`), never as the whole call's."""
        items = payload.get("items") or []
        if not isinstance(items, list) or not all(
            isinstance(i, dict) and i.get("key") for i in items
        ):
            raise self._error("bulk", 'request data needs "items": a list of objects with a "key"')
        concurrency = int(payload.get("concurrency") or DEFAULT_CONCURRENCY)

        def guarded(item: dict[str, Any]) -> dict[str, Any]:
            try:
                return work(item)
            except (BindingError, OSError) as error:
                detail = error.detail if isinstance(error, BindingError) else str(error)
                return {"key": item["key"], "error": detail}

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            return BindingResponse.of_json(list(pool.map(guarded, items)))

    def bulk_get(self, data: bytes, metadata: Metadata) -> BindingResponse:
        def get_one(item: dict[str, Any]) -> dict[str, Any]:
            body = self._read("bulkGet", item["key"])
            if item.get("filePath"):
                Path(item["filePath"]).write_bytes(body)
                return {"key": item["key"], "filePath": item["filePath"]}
            # Dapr's item data is a Go []byte, which JSON carries as base64.
            return {"key": item["key"], "data": base64.b64encode(body).decode("ascii")}

        return self._each(self._payload("bulkGet", data), get_one)

    def bulk_create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        options = self._merged(metadata)

        def create_one(item: dict[str, Any]) -> dict[str, Any]:
            if item.get("filePath"):
                body = Path(item["filePath"]).read_bytes()
            else:
                body = str(item.get("data") or "").encode("utf-8")
                if options.decode_base64:
                    body = self._decode("bulkCreate", body)
            extra = {"ContentType": str(item["contentType"])} if item.get("contentType") else {}
            if options.storage_class:
                extra["StorageClass"] = options.storage_class
            self._put("bulkCreate", item["key"], body, **extra)
            return {"key": item["key"], "location": self._location(item["key"])}

        return self._each(self._payload("bulkCreate", data), create_one)

    def bulk_delete(self, data: bytes, metadata: Metadata) -> BindingResponse:
        keys = self._payload("bulkDelete", data).get("keys") or []
        if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
            raise self._error("bulkDelete", 'request data needs "keys": a list of object keys')
        failed: dict[str, str] = {}
        for start in range(0, len(keys), DELETE_BATCH):
            objects = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
            deleted = self._call(
                "bulkDelete", "delete_objects", Delete={"Objects": objects, "Quiet": True}
            )
            for error in deleted.get("Errors", []):
                failed[error["Key"]] = f"{error.get('Code', '')}: {error.get('Message', '')}"
        return BindingResponse.of_json(
            [{"key": k, "error": failed[k]} if k in failed else {"key": k} for k in keys]
        )


#: An S3 event type (`s3:ObjectCreated:*`, `s3:ObjectRemoved:Delete`, `s3:ObjectRestore`, …).
S3EventType = Annotated[
    str,
    text_matching(
        r"s3:[A-Za-z]+(?::(?:[A-Za-z]+|\*))?", "an S3 event type such as s3:ObjectCreated:*"
    ),
]


class S3Annotations(Annotations):
    """The notification an S3 trigger subscribes to; the local listener and the AWS build
    (for a bucket the stack creates) both read it."""

    events: Annotated[CommaList[S3EventType], Bounds(min_length=1)] = setting(
        "events", NOTIFY_EVENTS, description="comma-separated S3 event types"
    )
    prefix: str | None = setting("prefix", None, description="object key prefix filter")
    suffix: str | None = setting("suffix", None, description="object key suffix filter")


class S3Input(InputBinding[S3Metadata]):
    """A listener on the bucket's notifications, chosen by `S3Annotations`."""

    annotations: S3Annotations

    def __init__(
        self, name: str, metadata: S3Metadata, *, annotations: S3Annotations | None = None
    ) -> None:
        super().__init__(name, metadata, annotations=annotations or S3Annotations())

    def _notification(self, queue_arn: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Id": f"portabind-{self.name}",
            "QueueArn": queue_arn,
            "Events": list(self.annotations.events),
        }
        rules = [
            {"Name": part, "Value": value}
            for part, value in (
                ("prefix", self.annotations.prefix),
                ("suffix", self.annotations.suffix),
            )
            if value
        ]
        if rules:
            entry["Filter"] = {"Key": {"FilterRules": rules}}
        return entry

    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        bucket = self.metadata.bucket

        def attach(sqs: Any, url: str, queue_arn: str) -> None:
            _relay.allow(sqs, url, queue_arn, "s3.amazonaws.com", f"arn:aws:s3:::{bucket}")
            s3 = _client(self.metadata)
            current = s3.get_bucket_notification_configuration(Bucket=bucket)
            current.pop("ResponseMetadata", None)
            entry = self._notification(queue_arn)
            # Replace only this listener's entry: the bucket may notify others too.
            queues = [
                other
                for other in current.get("QueueConfigurations", [])
                if other.get("Id") != entry["Id"]
            ]
            s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={**current, "QueueConfigurations": [*queues, entry]},
            )

        def events(body: str) -> list[BindingEvent]:
            # S3's `s3:TestEvent`, sent when the notification is set, has no records.
            return [event_from_record(self.name, r) for r in json.loads(body).get("Records", [])]

        queue = _relay.queue_name("s3", self.name, bucket)
        endpoint = _endpoint(self.metadata)
        _relay.relay(
            self.name, self.metadata, queue, attach, events, deliver, stop, endpoint=endpoint
        )


def provision(metadata: S3Metadata) -> None:
    """Create the bucket if it does not exist."""
    from botocore.exceptions import ClientError

    s3 = _client(metadata)
    request: dict[str, Any] = {"Bucket": metadata.bucket}
    if metadata.region and metadata.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": metadata.region}
    try:
        s3.create_bucket(**request)
    except ClientError as error:
        if _aws.error_code(error) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


binding = Binding(
    metadata=S3Metadata,
    annotations=S3Annotations,
    output=S3Output,
    input=S3Input,
    emulator="moto",
    emulate=_aws.emulate,
    provision=provision,
)
