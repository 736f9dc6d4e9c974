"""`bindings.azure.blobstorage`: Azure Blob Storage, output only (Dapr's: components-contrib
`bindings/azure/blobstorage/blobstorage.go`).

Operations: create, get, delete, list, presign, bulkGet, bulkCreate, bulkDelete. The container
is created, with `publicAccessLevel`, when a write first finds it missing rather than at start
(`create_if_missing`: a function's cold start makes no call for a container that exists);
until then it lists as empty and its blobs are not found, as Dapr's freshly made one.
`disableEntityManagement` turns that off, as in Dapr. Portability
extension: request metadata `key` names the blob when `blobName` is absent, so an app written
against S3 or GCS (`key`) runs unchanged.

Input (a portabind extension, `portabind.io/trigger: "true"`; `BlobTrigger`): on Azure the
build makes the function a Blob trigger on `<containerName>/<path>` (`source` EventGrid by
default, its event subscription created by the deploy). Locally the listener lists the
container every `pollInterval` (default 1 s) and delivers each blob matching `path` that
appeared or changed (a new ETag) since the last look (`bindings._watch`): blobs there before
it started are not delivered, deletions are not events (as the Blob trigger), a blob written
twice between two looks gives one event, and one the handler fails on is offered again at the
next look. Each event (`blob_event`, the same on every target): `data` is the blob's content;
metadata `blobName`, `container`, `size`, `eTag`, `contentType`, `lastModified` and the blob's
user metadata under its own names.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import logging
import os
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from portabind.annotations import Choice, ExtensionTrigger
from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings.azure._storage import (
    ACCOUNT_NAME_ALIASES,
    StorageMetadata,
    azure_errors,
    create_if_missing,
    emulator,
    is_missing,
    service_client,
)
from portabind.errors import BindingError
from portabind.events import (
    BindingEvent,
    BindingResponse,
    Metadata,
    metadata_value,
    rfc3339,
    unquote,
)
from portabind.metadata import (
    AfterValidator,
    Bounds,
    Duration,
    Secret,
    Truthy,
    model_validator,
    parse_duration,
    setting,
)

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from azure.storage.blob import BlobClient, ContainerClient

log = logging.getLogger(__name__)

BLOB_NOT_FOUND = "blob not found"
#: Azure's error code for a container that does not exist.
CONTAINER_MISSING = "ContainerNotFound"
MISSING_BLOB_NAME = "blobName is a required attribute"
DEFAULT_MAX_RESULTS = 5000
DEFAULT_CONCURRENCY = 10
#: Request metadata that becomes blob HTTP headers (lower-case key → ContentSettings field).
HEADER_KEYS = {
    "contenttype": "content_type",
    "contentmd5": "content_md5",
    "contentencoding": "content_encoding",
    "contentlanguage": "content_language",
    "contentdisposition": "content_disposition",
    "cachecontrol": "cache_control",
}
_NOT_KEY_CHARS = re.compile(r"[^A-Za-z0-9]")
_GO_BOOL = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}


class BlobStorageMetadata(StorageMetadata):
    binding_type = "bindings.azure.blobstorage"
    # getBlobRetryCount, when given, replaces retryCount (components-contrib
    # `common/component/azure/blobstorage/metadata.go`).
    lookup_order = {"retryCount": ("getBlobRetryCount", "retryCount")}
    deprecated = {"getBlobRetryCount": "write retryCount"}

    account_name: str | None = setting("accountName", None, aliases=ACCOUNT_NAME_ALIASES)
    connection_string: Secret | None = setting("connectionString", None, secret=True)
    container_name: str = setting("containerName", aliases=("container", "storageAccountContainer"))
    decode_base64: Truthy = setting("decodeBase64", False)
    get_blob_retry_count: int = setting("retryCount", 3, aliases=("getBlobRetryCount",))
    public_access_level: Literal["none", "blob", "container"] = setting("publicAccessLevel", "none")
    disable_entity_management: Truthy = setting("disableEntityManagement", False)

    @model_validator(mode="after")
    def _account_or_connection_string(self) -> BlobStorageMetadata:
        if not self.account_name and not self.secret("connection_string"):
            raise ValueError("accountName is required (or a connectionString)")
        return self


def container_client(metadata: BlobStorageMetadata) -> ContainerClient:
    from azure.storage.blob import BlobServiceClient

    service = service_client(
        BlobServiceClient,
        metadata,
        "blob",
        connection_string=metadata.secret("connection_string"),
        retry_total=metadata.get_blob_retry_count,
    )
    return service.get_container_client(metadata.container_name)


def create_container(
    metadata: BlobStorageMetadata, *, container: ContainerClient | None = None
) -> None:
    """Create the container if missing, with `publicAccessLevel` (Dapr does this at Init
    unless `disableEntityManagement`; the output does it when a write first finds it
    missing), through `container` when the caller has a client already."""
    from azure.core.exceptions import ResourceExistsError

    access = None if metadata.public_access_level == "none" else metadata.public_access_level
    with contextlib.suppress(ResourceExistsError):
        (container or container_client(metadata)).create_container(public_access=access)


def sanitize_metadata(metadata: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Blob user metadata as Dapr stores it: keys keep only [A-Za-z0-9]; values lose
    non-ASCII and control characters."""
    clean: dict[str, str] = {}
    for key, value in metadata:
        name = _NOT_KEY_CHARS.sub("", key)
        if name != key:
            log.warning("metadata key %r has disallowed characters; stored as %r", key, name)
        if name:
            clean[name] = "".join(c for c in value if 32 <= ord(c) < 127)
    return clean


def _safe_join(directory: str, name: str) -> Path:
    # Like Dapr's securejoin: a blob name cannot climb out of the destination directory.
    return Path(directory, os.path.normpath("/" + name).lstrip("/"))


def _json_body(data: bytes, operation: str, binding: str) -> dict[str, Any]:
    if not data.strip() or data.strip() == b"null":
        return {}
    try:
        body = json.loads(data)
    except ValueError as error:
        raise BindingError(
            binding, operation, f"error parsing {operation} payload: {error}"
        ) from None
    if not isinstance(body, dict):
        raise BindingError(binding, operation, f"the {operation} payload must be a JSON object")
    return body


def _concurrency(body: dict[str, Any], binding: str, operation: str) -> int:
    value = body.get("concurrency")
    if value is None:
        return DEFAULT_CONCURRENCY
    if not isinstance(value, int) or value <= 0:
        raise BindingError(binding, operation, "concurrency must be greater than 0")
    return value


def _delete_snapshots(value: Any, binding: str, operation: str) -> str | None:
    if value in (None, ""):
        return None
    if value not in ("include", "only"):
        raise BindingError(
            binding,
            operation,
            f"invalid delete snapshot option type: {value}; allowed: [include only]",
        )
    return str(value)


def _item_json(item: Any) -> dict[str, Any]:
    """A listed blob in the shape of the Go SDK's `BlobItem`, as Dapr returns it."""

    def time(value: datetime | None) -> str | None:
        return rfc3339(value) if value else None

    settings = item.content_settings
    md5 = settings.content_md5 if settings else None
    return {
        "Name": item.name,
        "Deleted": bool(item.deleted),
        "Snapshot": item.snapshot or "",
        "VersionID": item.version_id,
        "IsCurrentVersion": item.is_current_version,
        "Metadata": item.metadata or None,
        "Properties": {
            "BlobType": item.blob_type.value if item.blob_type else None,
            "ContentLength": item.size,
            "ContentType": settings.content_type if settings else None,
            "ContentEncoding": settings.content_encoding if settings else None,
            "ContentLanguage": settings.content_language if settings else None,
            "ContentDisposition": settings.content_disposition if settings else None,
            "CacheControl": settings.cache_control if settings else None,
            "ContentMD5": base64.b64encode(bytes(md5)).decode() if md5 else None,
            "ETag": item.etag,
            "LastModified": time(item.last_modified),
            "CreationTime": time(item.creation_time),
            "AccessTier": item.blob_tier,
            "ServerEncrypted": item.server_encrypted,
        },
    }


class BlobStorageOutput(OutputBinding[BlobStorageMetadata]):
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

    def __init__(self, name: str, metadata: BlobStorageMetadata) -> None:
        super().__init__(name, metadata)
        self._container = container_client(metadata)
        #: How a write that finds the container missing creates it (None: Dapr's
        #: disableEntityManagement, the write fails): see `create_if_missing`.
        self._create_container = (
            None
            if metadata.disable_entity_management
            else functools.partial(create_container, metadata, container=self._container)
        )

    # -- helpers ---------------------------------------------------------------------------
    def _fail(self, operation: str, message: str) -> BindingError:
        return BindingError(self.name, operation, message)

    def _blob_name(self, metadata: Metadata, operation: str) -> str:
        name = metadata.get("blobName") or metadata.get("key")
        if not name:
            raise self._fail(operation, MISSING_BLOB_NAME)
        return name

    def _decode(self, data: bytes, operation: str) -> bytes:
        if not self.metadata.decode_base64:
            return data
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise self._fail(operation, "data is not valid base64 (decodeBase64 is set)") from None

    def _presign_url(self, blob: BlobClient, sign_ttl: str, operation: str) -> str:
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        try:
            ttl = parse_duration(sign_ttl)
        except ValueError as error:
            raise self._fail(operation, f"cannot parse signTTL duration: {error}") from None
        if ttl <= timedelta(0):
            raise self._fail(operation, f"signTTL must be a positive duration, got {sign_ttl!r}")
        key = getattr(self._container.credential, "account_key", None)
        if not key:
            raise self._fail(
                operation,
                "failed to generate SAS URL: configure the binding with an account key or "
                "connection string",
            )
        token = generate_blob_sas(
            str(blob.account_name),
            blob.container_name,
            blob.blob_name,
            account_key=key,
            permission=BlobSasPermissions(read=True),
            expiry=datetime.now(timezone.utc) + ttl,
        )
        return f"{blob.url}?{token}"

    def _upload(self, blob: BlobClient, body: bytes, **options: Any) -> None:
        create_if_missing(
            CONTAINER_MISSING,
            self._create_container,
            lambda: blob.upload_blob(body, overwrite=True, **options),
        )

    @contextlib.contextmanager
    def _listing(self, operation: str) -> Iterator[None]:
        """A listing's errors; a container not made yet lists as empty, as the one Dapr
        makes at Init would."""
        from azure.core.exceptions import ResourceNotFoundError

        with azure_errors(self.name, operation):
            try:
                yield
            except ResourceNotFoundError as error:
                if self._create_container is None or not is_missing(error, CONTAINER_MISSING):
                    raise

    def _download(self, name: str, operation: str) -> bytes:
        with azure_errors(self.name, operation, not_found=BLOB_NOT_FOUND):
            data: bytes = self._container.download_blob(name).readall()
        return data

    def _download_to_file(self, name: str, file_path: str, operation: str) -> None:
        target = Path(file_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with target.open("wb") as stream, azure_errors(self.name, operation, BLOB_NOT_FOUND):
                self._container.download_blob(name).readinto(stream)
        except BaseException:
            target.unlink(missing_ok=True)
            raise

    def _each(
        self, work: Callable[[Any], dict[str, Any]], items: Sequence[Any], limit: int
    ) -> Sequence[dict[str, Any]]:
        # Here, not at the top: only the bulk operations use threads.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(limit, max(len(items), 1))) as pool:
            return list(pool.map(work, items))

    # -- operations ------------------------------------------------------------------------
    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        from azure.storage.blob import ContentSettings

        name = metadata.get("blobName") or metadata.get("key") or str(uuid.uuid4())
        named_by = "blobName" if metadata.get("blobName") else "key" if metadata.get("key") else ""
        sign_ttl = metadata.get("signTTL", "")
        rest = {k: v for k, v in metadata.items() if k.lower() not in ("signttl", named_by.lower())}
        headers: dict[str, Any] = {}
        for key in list(rest):
            field = HEADER_KEYS.get(key.lower())
            if field is None or not rest[key]:
                continue
            value: Any = rest.pop(key)
            if field == "content_md5":
                try:
                    value = bytearray(base64.b64decode(value, validate=True))
                except (binascii.Error, ValueError):
                    value = b""
                if len(value) != 16:
                    raise self._fail(
                        "create",
                        "the MD5 value specified in Content MD5 is invalid, MD5 value must be "
                        "128 bits and base64 encoded",
                    )
            headers[field] = value
        body = self._decode(unquote(data), "create")
        blob = self._container.get_blob_client(name)
        presign = self._presign_url(blob, sign_ttl, "create") if sign_ttl else ""
        with azure_errors(self.name, "create"):
            self._upload(
                blob,
                body,
                metadata=sanitize_metadata(rest.items()),
                content_settings=ContentSettings(**headers),
            )
        response: dict[str, str] = {"blobURL": blob.url, "blobName": name}
        if presign:
            response["presignURL"] = presign
        return BindingResponse.of_json(response, {"blobName": name})

    def get(self, data: bytes, metadata: Metadata) -> BindingResponse:
        name = self._blob_name(metadata, "get")
        file_path = metadata.get("filePath")
        if file_path:
            self._download_to_file(name, file_path, "get")
            return BindingResponse(None, Metadata({"filePath": file_path}))
        content = self._download(name, "get")
        include = metadata.get("includeMetadata", "").strip()
        if include and include.lower() not in _GO_BOOL:
            raise self._fail("get", f"error parsing metadata: includeMetadata {include!r}")
        user: dict[str, str] = {}
        if _GO_BOOL.get(include.lower(), False):
            with azure_errors(self.name, "get", not_found=BLOB_NOT_FOUND):
                user = dict(self._container.get_blob_client(name).get_blob_properties().metadata)
        return BindingResponse(content, Metadata(user))

    def delete(self, data: bytes, metadata: Metadata) -> BindingResponse:
        name = self._blob_name(metadata, "delete")
        snapshots = _delete_snapshots(metadata.get("deleteSnapshots"), self.name, "delete")
        with azure_errors(self.name, "delete", not_found=BLOB_NOT_FOUND):
            self._container.delete_blob(name, delete_snapshots=snapshots)
        return BindingResponse()

    def list(self, data: bytes, metadata: Metadata) -> BindingResponse:
        body = _json_body(data, "list", self.name)
        include_flags = body.get("include") or {}
        include = [
            sdk
            for flag, sdk in (
                ("snapshots", "snapshots"),
                ("metadata", "metadata"),
                ("uncommittedBlobs", "uncommittedblobs"),
                ("copy", "copy"),
                ("deleted", "deleted"),
            )
            if include_flags.get(flag)
        ]
        max_results = int(body.get("maxResults") or 0)
        max_results = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        blobs: list[dict[str, Any]] = []
        marker, pages = "", 0
        with self._listing("list"):
            pager: Any = self._container.list_blobs(
                name_starts_with=body.get("prefix") or None,
                include=include or None,
                results_per_page=max_results,
            ).by_page(continuation_token=body.get("marker") or None)
            for page in pager:
                pages += 1
                blobs.extend(_item_json(item) for item in page)
                marker = pager.continuation_token or ""
                if len(blobs) >= max_results:
                    break
        return BindingResponse(
            json.dumps(blobs).encode(),
            Metadata({"marker": marker, "number": str(len(blobs)), "pagesTraversed": str(pages)}),
        )

    def presign(self, data: bytes, metadata: Metadata) -> BindingResponse:
        name = self._blob_name(metadata, "presign")
        sign_ttl = metadata.get("signTTL")
        if not sign_ttl:
            raise self._fail("presign", "signTTL is a required attribute for presign operations")
        url = self._presign_url(self._container.get_blob_client(name), sign_ttl, "presign")
        return BindingResponse.of_json({"presignURL": url})

    def _names_under(self, prefix: str, operation: str) -> Sequence[str]:
        names: list[str] = []
        with self._listing(operation):
            names.extend(blob.name for blob in self._container.list_blobs(name_starts_with=prefix))
        return names

    def bulk_get(self, data: bytes, metadata: Metadata) -> BindingResponse:
        body = _json_body(data, "bulkGet", self.name)
        limit = _concurrency(body, self.name, "bulkGet")
        items = [i for i in body.get("items") or [] if i.get("blobName")]
        if body.get("prefix"):
            destination = body.get("destinationDir")
            if not destination:
                raise self._fail("bulkGet", "destinationDir is required when using prefix")
            explicit = {item["blobName"] for item in items}
            items += [
                {"blobName": name, "filePath": str(_safe_join(destination, name))}
                for name in dict.fromkeys(self._names_under(body["prefix"], "bulkGet"))
                if name not in explicit
            ]
        if not items:
            raise self._fail("bulkGet", "at least one of items or prefix is required")

        def fetch(item: dict[str, Any]) -> dict[str, Any]:
            result: dict[str, Any] = {"blobName": item["blobName"]}
            try:
                if item.get("filePath"):
                    self._download_to_file(item["blobName"], item["filePath"], "bulkGet")
                    result["filePath"] = item["filePath"]
                else:
                    content = self._download(item["blobName"], "bulkGet")
                    if content:  # Go's omitempty; bytes travel as base64 in JSON
                        result["data"] = base64.b64encode(content).decode()
            except BindingError as error:
                result["error"] = error.detail
            except OSError as error:
                result["error"] = str(error)
            return result

        results = self._each(fetch, items, limit)
        return BindingResponse.of_json(results, {"number": str(len(results))})

    def bulk_create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        from azure.storage.blob import ContentSettings

        body = _json_body(data, "bulkCreate", self.name)
        items = body.get("items") or []
        if not items:
            raise self._fail("bulkCreate", "items array must not be empty")
        for index, item in enumerate(items):
            if not item.get("blobName"):
                raise self._fail("bulkCreate", f"item at index {index} is missing blobName")
            if not item.get("sourcePath") and item.get("data") is None:
                raise self._fail(
                    "bulkCreate", f"item at index {index} is missing both data and sourcePath"
                )
        limit = _concurrency(body, self.name, "bulkCreate")

        def upload(item: dict[str, Any]) -> dict[str, Any]:
            result: dict[str, Any] = {"blobName": item["blobName"]}
            blob = self._container.get_blob_client(item["blobName"])
            try:
                if item.get("data") is not None:
                    content = str(item["data"]).encode("utf-8")
                else:
                    content = Path(item["sourcePath"]).read_bytes()
                content = self._decode(content, "bulkCreate")
                settings = ContentSettings(content_type=item.get("contentType") or None)
                with azure_errors(self.name, "bulkCreate"):
                    self._upload(blob, content, content_settings=settings)
                result["blobURL"] = blob.url
            except BindingError as error:
                result["error"] = f"error uploading blob: {error.detail}"
            except OSError as error:
                result["error"] = f"error opening source file: {error}"
            return result

        results = self._each(upload, items, limit)
        return BindingResponse.of_json(results, {"number": str(len(results))})

    def bulk_delete(self, data: bytes, metadata: Metadata) -> BindingResponse:
        body = _json_body(data, "bulkDelete", self.name)
        snapshots = _delete_snapshots(body.get("deleteSnapshots"), self.name, "bulkDelete")
        limit = _concurrency(body, self.name, "bulkDelete")
        names = [n for n in body.get("blobNames") or [] if n]
        if body.get("prefix"):
            names += self._names_under(body["prefix"], "bulkDelete")
        names = list(dict.fromkeys(names))
        if not names:
            raise self._fail("bulkDelete", "at least one of prefix or blobNames is required")

        def remove(name: str) -> dict[str, Any]:
            result: dict[str, Any] = {"blobName": name}
            try:
                with azure_errors(self.name, "bulkDelete", not_found=BLOB_NOT_FOUND):
                    self._container.delete_blob(name, delete_snapshots=snapshots)
            except BindingError as error:
                result["error"] = error.detail
            return result

        results = self._each(remove, names, limit)
        return BindingResponse.of_json(results, {"number": str(len(results))})

    def close(self) -> None:
        self._container.close()


class BlobSource(Choice):
    """How Azure's Blob trigger learns of new blobs (`func.BlobSource`)."""

    EVENT_GRID = "EventGrid"
    LOGS_AND_CONTAINER_SCAN = "LogsAndContainerScan"


def _blob_path(value: str) -> str:
    text = value.strip().lstrip("/")
    if text.count("{name}") != 1 or any(c in text.replace("{name}", "") for c in "{}*?"):
        raise ValueError("must hold {name} once and no other pattern, such as incoming/{name}")
    return text


class BlobTrigger(ExtensionTrigger):
    """The Blob trigger (`trigger`): the blobs it fires for (`path` in the container, with
    `{name}` standing for the rest of the blob's name), Azure's `source`, and the local
    listener's `pollInterval`."""

    path: Annotated[str, AfterValidator(_blob_path)] = setting(
        "path", "{name}", description="blob names in the container, e.g. incoming/{name}.csv"
    )
    source: BlobSource = setting(
        "source", BlobSource.EVENT_GRID, description="EventGrid or LogsAndContainerScan (Azure)"
    )
    poll_interval: Annotated[Duration, Bounds(gt=timedelta(0))] = setting(
        "pollInterval", timedelta(seconds=1), description="the local listener's wait between looks"
    )

    def matches(self, blob_name: str) -> bool:
        prefix, suffix = self.path.split("{name}")
        return blob_name.startswith(prefix) and blob_name.endswith(suffix)

    @property
    def prefix(self) -> str:
        return self.path.split("{name}")[0]


def blob_event(
    name: str,
    container: str,
    blob_name: str,
    content: bytes,
    properties: Mapping[str, Any],
    user_metadata: Mapping[str, str] | None,
) -> BindingEvent:
    """The event of one new or changed blob (module docstring). `properties`: `size`,
    `eTag`, `contentType`, `lastModified`, those known."""
    fields = {
        **(user_metadata or {}),
        **{k: metadata_value(v) for k, v in properties.items() if v not in (None, "")},
        "blobName": blob_name,
        "container": container,
    }
    return BindingEvent(name, content, Metadata(fields))


class BlobStorageInput(InputBinding[BlobStorageMetadata]):
    """The local Blob trigger: the container, listed every `pollInterval` (module docstring)."""

    annotations: BlobTrigger

    def __init__(
        self, name: str, metadata: BlobStorageMetadata, *, annotations: BlobTrigger | None = None
    ) -> None:
        super().__init__(name, metadata, annotations=annotations or BlobTrigger())

    def listen(self, deliver: Callable[[BindingEvent], Any], stop: threading.Event) -> None:
        from azure.core.exceptions import AzureError

        from portabind.bindings._watch import Watch

        container = container_client(self.metadata)
        trigger = self.annotations

        def snapshot() -> dict[str, tuple[Any, Any]]:
            listed = container.list_blobs(
                name_starts_with=trigger.prefix or None, include=["metadata"]
            )
            return {b.name: (b.etag, b) for b in listed if trigger.matches(b.name)}

        def changes(before: Any, after: Any) -> list[BindingEvent]:
            if after is None:
                return []  # deletions are not events of the Blob trigger
            with azure_errors(self.name, "trigger", not_found=BLOB_NOT_FOUND):
                content = container.download_blob(
                    after.name, etag=after.etag, match_condition=_if_match()
                ).readall()
            settings = after.content_settings
            properties = {
                "size": after.size,
                "eTag": after.etag,
                "contentType": settings.content_type if settings else None,
                "lastModified": after.last_modified,
            }
            return [
                blob_event(
                    self.name,
                    self.metadata.container_name,
                    after.name,
                    content,
                    properties,
                    after.metadata,
                )
            ]

        try:
            Watch(self.name, snapshot, changes, (AzureError,)).run(
                deliver, stop, trigger.poll_interval.total_seconds()
            )
        finally:
            container.close()


def _if_match() -> Any:
    from azure.core import MatchConditions

    return MatchConditions.IfNotModified


binding = Binding(
    metadata=BlobStorageMetadata,
    annotations=BlobTrigger,
    input=BlobStorageInput,
    output=BlobStorageOutput,
    emulator="azurite",
    emulate=emulator("blob", "endpoint", cleared=("connectionString",)),
    provision=create_container,
    requires=("azure-storage-blob", "azure-identity"),
)
