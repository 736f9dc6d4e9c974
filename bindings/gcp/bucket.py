"""`bindings.gcp.bucket`: Cloud Storage objects, output only (Dapr's: components-contrib
`bindings/gcp/bucket/bucket.go`).

Operations: `create`, `get`, `delete`, `list`, `sign`, `bulkGet`, `copy`, `rename`, `move`.
The object is named by request metadata `key` (`name` is Dapr's legacy spelling and, as in
Dapr, wins when both are given). Per request, `decodeBase64`, `encodeBase64`, `signTTL` and
`contentType` override the component. Object listings use the Go SDK's `ObjectAttrs` field
names, as Dapr returns them; an empty listing is `[]` where Dapr's Go code gives `null`.

Input (a portabind extension, `portabind.io/trigger: "true"`; `BucketTrigger`): on GCP the
build makes a CloudEvent function on `google.cloud.storage.object.v1.finalized` (or the
`events` annotation's: deleted, archived, metadataUpdated) filtered to the bucket. Locally the
listener lists the bucket every `pollInterval` (default 1 s, `bindings._watch`): a new
generation of an object is `finalized`, a new metageneration of the same generation
`metadataUpdated`, an object gone `deleted`; objects there before it started give none, two
writes between looks give one event, `archived` (versioned buckets) is never seen, and an
object the handler fails on is offered again at the next look. Each event (`object_event`,
the same on every target): `data` is the event's payload, the object's resource as JSON
(the CloudEvent's `data`); metadata `bucket`, `key` (the object name), `generation`,
`metageneration`, `size`, `contentType`, `timeCreated`, `updated`, `etag`, `md5Hash`,
`crc32c`, `storageClass`, `eventType` (the CloudEvent type), and the object's custom metadata
under its own names.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from portabind.annotations import Choice, CommaList, ExtensionTrigger
from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings.gcp._gcp import (
    STORAGE_EMULATOR_ENV,
    GcpMetadata,
    credentials,
    emulate_credentials,
    service_account_credentials,
)
from portabind.errors import BindingError, NotFound
from portabind.events import (
    BindingEvent,
    BindingResponse,
    Metadata,
    compact_json,
    metadata_value,
    rfc3339,
    unquote,
)
from portabind.metadata import Bounds, Duration, Truthy, is_truthy, parse_duration, setting

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from google.cloud.storage import Blob, Client

OBJECT_URL = "https://storage.googleapis.com/{bucket}/{key}"
DEFAULT_MAX_RESULTS = 1000
#: Go's zero `time.Time` as JSON: what `ObjectAttrs` shows for a time the object lacks.
_GO_ZERO_TIME = "0001-01-01T00:00:00Z"


class BucketMetadata(GcpMetadata):
    binding_type = "bindings.gcp.bucket"
    # Dapr's bucket reads the camelCase names first, its pubsub the snake_case ones
    # (components-contrib `bindings/gcp/bucket/bucket.go`, `bindings/gcp/pubsub/pubsub.go`).
    lookup_order = {name: (*aliases, name) for name, aliases in GcpMetadata.field_keys().items()}

    bucket: str = setting("bucket")
    decode_base64: Truthy = setting(
        "decodeBase64", False, description="base64-decode the payload of `create`"
    )
    encode_base64: Truthy = setting(
        "encodeBase64", False, description="base64-encode the object `get` returns"
    )
    content_type: str | None = setting(
        "contentType", None, description="content type of created objects"
    )
    sign_ttl: Duration | None = setting(
        "signTTL", None, description="how long a `sign` URL is valid (Go duration)"
    )


def _go_time(value: datetime | None) -> str:
    return rfc3339(value) if value is not None else _GO_ZERO_TIME


def _crc32c(encoded: str | None) -> int:
    """Go's `ObjectAttrs.CRC32C` is the checksum as a number; the JSON API sends it base64."""
    return int.from_bytes(base64.b64decode(encoded), "big") if encoded else 0


def object_attrs(blob: Blob | None = None, prefix: str = "") -> dict[str, Any]:
    """An object (or, with `prefix`, a listing's common prefix) as Dapr returns it: the JSON
    of the Go SDK's `storage.ObjectAttrs`, field names and zero values included."""
    return {
        "Bucket": blob.bucket.name if blob else "",
        "Name": blob.name if blob else "",
        "ContentType": (blob.content_type if blob else None) or "",
        "ContentLanguage": (blob.content_language if blob else None) or "",
        "CacheControl": (blob.cache_control if blob else None) or "",
        "ContentEncoding": (blob.content_encoding if blob else None) or "",
        "ContentDisposition": (blob.content_disposition if blob else None) or "",
        "Size": (blob.size if blob else None) or 0,
        # Go marshals the []byte MD5 as base64, the form the JSON API already uses.
        "MD5": (blob.md5_hash if blob else None) or None,
        "CRC32C": _crc32c(blob.crc32c if blob else None),
        "MediaLink": (blob.media_link if blob else None) or "",
        "Metadata": (blob.metadata if blob else None) or None,
        "Generation": (blob.generation if blob else None) or 0,
        "Metageneration": (blob.metageneration if blob else None) or 0,
        "StorageClass": (blob.storage_class if blob else None) or "",
        "Created": _go_time(blob.time_created if blob else None),
        "Updated": _go_time(blob.updated if blob else None),
        "Etag": (blob.etag if blob else None) or "",
        "Prefix": prefix,
    }


def _json_payload(data: bytes, operation: str, name: str) -> dict[str, Any]:
    """The JSON object an operation takes as data; empty or `null` data is `{}`."""
    try:
        value = json.loads(data) if data.strip() else None
    except ValueError as error:
        raise BindingError(name, operation, f"data is not valid JSON: {error}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BindingError(name, operation, "data must be a JSON object")
    return value


class BucketOutput(OutputBinding[BucketMetadata]):
    operations = ("create", "get", "delete", "list", "sign", "bulkGet", "copy", "rename", "move")

    def __init__(self, name: str, metadata: BucketMetadata) -> None:
        super().__init__(name, metadata)
        self._client: Client | None = None

    # -- helpers --------------------------------------------------------------------------
    @property
    def client(self) -> Client:
        if self._client is None:
            from google.cloud import storage

            self._client = storage.Client(
                project=self.metadata.project_id,
                credentials=credentials(self.metadata, STORAGE_EMULATOR_ENV),
            )
        return self._client

    def _blob(self, key: str, bucket: str | None = None) -> Blob:
        return self.client.bucket(bucket or self.metadata.bucket).blob(key)

    def _key(self, metadata: Metadata, operation: str) -> str:
        key = metadata.get("name") or metadata.get("key")
        if not key:
            raise BindingError(
                self.name, operation, "gcp bucket binding error: can't read key value"
            )
        return key

    def _flag(self, metadata: Metadata, name: str, default: bool) -> bool:
        value = metadata.get(name)
        return is_truthy(value) if value else default

    def _call(self, operation: str, what: str, action: Callable[[], Any]) -> Any:
        """Run one SDK call, turning a 404 into NotFound and any other failure into
        BindingError (both naming the binding and the operation)."""
        from google.api_core import exceptions

        try:
            return action()
        except exceptions.NotFound:
            raise NotFound(self.name, operation, f"object not found: {what}") from None
        except exceptions.GoogleAPIError as error:
            raise BindingError(self.name, operation, f"{what}: {error}") from error

    # -- operations ------------------------------------------------------------------------
    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        key = metadata.get("name") or metadata.get("key") or str(uuid.uuid4())
        body = unquote(data)
        if self._flag(metadata, "decodeBase64", self.metadata.decode_base64):
            try:
                # Go's base64 decoder skips line breaks; anything else must be valid.
                body = base64.b64decode(body.replace(b"\r", b"").replace(b"\n", b""), validate=True)
            except (binascii.Error, ValueError) as error:
                raise BindingError(self.name, "create", f"data is not base64: {error}") from None
        content_type = metadata.get("contentType") or self.metadata.content_type
        blob = self._blob(key)
        self._call("create", key, lambda: blob.upload_from_string(body, content_type=content_type))
        url = OBJECT_URL.format(bucket=self.metadata.bucket, key=quote(key, safe="/!$&'()*+,;=:@"))
        return BindingResponse.of_json({"objectURL": url})

    def get(self, data: bytes, metadata: Metadata) -> BindingResponse:
        key = self._key(metadata, "get")
        blob = self._blob(key)
        content: bytes = self._call("get", key, blob.download_as_bytes)
        if self._flag(metadata, "encodeBase64", self.metadata.encode_base64):
            content = base64.b64encode(content)
        return BindingResponse(content)

    def delete(self, data: bytes, metadata: Metadata) -> BindingResponse:
        key = self._key(metadata, "delete")
        self._call("delete", key, self._blob(key).delete)
        return BindingResponse()

    def list(self, data: bytes, metadata: Metadata) -> BindingResponse:
        payload = _json_payload(data, "list", self.name)
        limit = int(payload.get("maxResults") or DEFAULT_MAX_RESULTS)

        def listing() -> list[dict[str, Any]]:
            pages = self.client.list_blobs(
                self.metadata.bucket,
                prefix=payload.get("prefix") or None,
                delimiter=payload.get("delimiter") or None,
            )
            blobs = list(pages)
            # Go's iterator yields objects and common prefixes in one name-ordered stream.
            entries = [(blob.name, object_attrs(blob)) for blob in blobs]
            entries += [(prefix, object_attrs(prefix=prefix)) for prefix in pages.prefixes]
            return [attrs for _, attrs in sorted(entries, key=lambda entry: entry[0])][:limit]

        return BindingResponse.of_json(self._call("list", self.metadata.bucket, listing))

    def sign(self, data: bytes, metadata: Metadata) -> BindingResponse:
        key = self._key(metadata, "sign")
        raw_ttl = metadata.get("signTTL")
        try:
            ttl = parse_duration(raw_ttl) if raw_ttl else self.metadata.sign_ttl
        except ValueError as error:
            raise BindingError(self.name, "sign", f"signTTL: {error}") from None
        if ttl is None:
            raise BindingError(
                self.name, "sign", "gcp bucket binding error: required metadata 'signTTL' missing"
            )
        blob = self._blob(key)
        url: str = self._call("sign", key, lambda: self._signed_url(blob, ttl))
        return BindingResponse.of_json({"signURL": url})

    def _signed_url(self, blob: Blob, ttl: timedelta) -> str:
        """A V4 signed GET URL, signed with the component's key, or else through the IAM
        signBlob API as the service account of the ambient credentials (how a Cloud Function
        signs without a key file)."""
        signer = service_account_credentials(self.metadata)
        if signer is not None:
            return str(
                blob.generate_signed_url(
                    version="v4", expiration=ttl, method="GET", credentials=signer
                )
            )
        ambient: Any = self.client._credentials
        email = getattr(ambient, "service_account_email", None)
        if not email:
            raise BindingError(
                self.name,
                "sign",
                "signing needs a service-account key (private_key_id, private_key, "
                "client_email) or credentials of a service account",
            )
        if not ambient.valid:
            from google.auth.transport.requests import Request

            ambient.refresh(Request())
        return str(
            blob.generate_signed_url(
                version="v4",
                expiration=ttl,
                method="GET",
                service_account_email=email,
                access_token=ambient.token,
            )
        )

    def bulk_get(self, data: bytes, metadata: Metadata) -> BindingResponse:
        encode = self._flag(metadata, "encodeBase64", self.metadata.encode_base64)

        def read_all() -> list[dict[str, Any]]:
            found = []
            for blob in self.client.list_blobs(self.metadata.bucket):
                content = blob.download_as_bytes()
                if encode:
                    content = base64.b64encode(content)
                found.append(
                    {
                        "name": blob.name,
                        # Go marshals the []byte data as base64.
                        "data": base64.b64encode(content).decode("ascii"),
                        "attrs": object_attrs(blob),
                    }
                )
            return found

        return BindingResponse.of_json(self._call("bulkGet", self.metadata.bucket, read_all))

    def _destination(self, data: bytes, metadata: Metadata, operation: str) -> tuple[str, str, str]:
        """(source key, destination bucket, destination key) of `copy` and `move`."""
        key = self._key(metadata, operation)
        payload = _json_payload(unquote(data), operation, self.name)
        bucket = payload.get("destinationBucket") or ""
        new_key = payload.get("destinationKey") or ""
        if not bucket and not new_key:
            raise BindingError(
                self.name,
                operation,
                "gcp bucket binding error: required 'destinationBucket' or 'destinationKey' "
                "missing",
            )
        return key, bucket or self.metadata.bucket, new_key or key

    def _copy(self, operation: str, key: str, bucket: str, new_key: str) -> None:
        source_bucket = self.client.bucket(self.metadata.bucket)
        source = source_bucket.blob(key)
        target = self.client.bucket(bucket)
        self._call(operation, key, lambda: source_bucket.copy_blob(source, target, new_key))

    def copy(self, data: bytes, metadata: Metadata) -> BindingResponse:
        key, bucket, new_key = self._destination(data, metadata, "copy")
        self._copy("copy", key, bucket, new_key)
        return BindingResponse(f"object {key} copied to {bucket}/{new_key}".encode())

    def move(self, data: bytes, metadata: Metadata) -> BindingResponse:
        key, bucket, new_key = self._destination(data, metadata, "move")
        if (bucket, new_key) == (self.metadata.bucket, key):
            raise BindingError(
                self.name, "move", "gcp bucket binding error: destination equals the source"
            )
        self._copy("move", key, bucket, new_key)
        self._call("move", key, self._blob(key).delete)
        return BindingResponse(f"object {key} moved to {bucket}/{new_key}".encode())

    def rename(self, data: bytes, metadata: Metadata) -> BindingResponse:
        key = self._key(metadata, "rename")
        new_name = _json_payload(unquote(data), "rename", self.name).get("newName")
        if not new_name:
            raise BindingError(
                self.name, "rename", "gcp bucket binding error: required 'newName' missing"
            )
        self._copy("rename", key, self.metadata.bucket, new_name)
        self._call("rename", key, self._blob(key).delete)
        return BindingResponse(f"object {key} renamed to {new_name}".encode())

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


def provision(metadata: BucketMetadata) -> None:
    """Create the bucket if missing."""
    from google.api_core import exceptions
    from google.cloud import storage

    client = storage.Client(
        project=metadata.project_id, credentials=credentials(metadata, STORAGE_EMULATOR_ENV)
    )
    try:
        with contextlib.suppress(exceptions.Conflict):
            client.create_bucket(metadata.bucket)
    finally:
        client.close()


EVENT_PREFIX = "google.cloud.storage.object.v1."
#: The object resource's fields that become metadata (with `name` as `key`).
OBJECT_FIELDS = (
    "bucket",
    "generation",
    "metageneration",
    "size",
    "contentType",
    "timeCreated",
    "updated",
    "etag",
    "md5Hash",
    "crc32c",
    "storageClass",
)


class ObjectEvent(Choice):
    """A Cloud Storage event a trigger fires on (the part after `EVENT_PREFIX`)."""

    FINALIZED = "finalized"
    DELETED = "deleted"
    ARCHIVED = "archived"
    METADATA_UPDATED = "metadataUpdated"

    @property
    def event_type(self) -> str:
        return EVENT_PREFIX + self.value


class BucketTrigger(ExtensionTrigger):
    """The Cloud Storage trigger (`trigger`): its `events` (GCP deploys one function per
    event type) and the local listener's `pollInterval`."""

    events: Annotated[CommaList[ObjectEvent], Bounds(min_length=1)] = setting(
        "events",
        (ObjectEvent.FINALIZED,),
        description="comma-separated: finalized, deleted, archived, metadataUpdated",
    )
    poll_interval: Annotated[Duration, Bounds(gt=timedelta(0))] = setting(
        "pollInterval", timedelta(seconds=1), description="the local listener's wait between looks"
    )


def object_event(name: str, event_type: str, resource: Mapping[str, Any]) -> BindingEvent:
    """The event of one Cloud Storage notification: `resource` is the object as the JSON API
    shows it (the CloudEvent's data)."""
    fields = {
        **{str(k): str(v) for k, v in (resource.get("metadata") or {}).items()},
        **{k: metadata_value(resource[k]) for k in OBJECT_FIELDS if resource.get(k) is not None},
        "key": str(resource.get("name", "")),
        "eventType": event_type,
    }
    data = compact_json(dict(resource))
    return BindingEvent(name, data, Metadata(fields))


class BucketInput(InputBinding[BucketMetadata]):
    """The local Cloud Storage trigger: the bucket, listed every `pollInterval` (module
    docstring)."""

    annotations: BucketTrigger

    def __init__(
        self, name: str, metadata: BucketMetadata, *, annotations: BucketTrigger | None = None
    ) -> None:
        super().__init__(name, metadata, annotations=annotations or BucketTrigger())

    def listen(self, deliver: Callable[[BindingEvent], Any], stop: threading.Event) -> None:
        from google.api_core.exceptions import GoogleAPIError
        from google.cloud import storage

        from portabind.bindings._watch import Watch

        client = storage.Client(
            project=self.metadata.project_id,
            credentials=credentials(self.metadata, STORAGE_EMULATOR_ENV),
        )
        wanted = set(self.annotations.events)

        def snapshot() -> dict[str, tuple[Any, dict[str, Any]]]:
            listed = client.list_blobs(self.metadata.bucket)
            return {b.name: ((b.generation, b.metageneration), dict(b._properties)) for b in listed}

        def changes(before: Any, after: Any) -> list[BindingEvent]:
            if after is None:
                kind, resource = ObjectEvent.DELETED, before
            elif before is None or before["generation"] != after["generation"]:
                kind, resource = ObjectEvent.FINALIZED, after
            else:
                kind, resource = ObjectEvent.METADATA_UPDATED, after
            if kind not in wanted:
                return []
            return [object_event(self.name, kind.event_type, resource)]

        try:
            Watch(self.name, snapshot, changes, (GoogleAPIError,)).run(
                deliver, stop, self.annotations.poll_interval.total_seconds()
            )
        finally:
            client.close()


binding = Binding(
    metadata=BucketMetadata,
    annotations=BucketTrigger,
    input=BucketInput,
    output=BucketOutput,
    emulator="gcs",
    emulate=emulate_credentials,
    provision=provision,
    requires=("google-cloud-storage",),
)
