"""`bindings.azure.cosmosdb`: Azure Cosmos DB (SQL API) documents, output `create` (Dapr's:
components-contrib `bindings/azure/cosmosdb/cosmosdb.go`), and the change feed as an input
extension.

Output `create`: the data is a JSON document with an `id`; the field `partitionKey` names (a
dotted path such as `customer.region` for a nested one) must hold a non-empty string, as
Dapr requires, and must be the container's partition key path, which the azure-cosmos SDK
reads the key from. An existing `id` fails (409), as Dapr's `CreateItem`.

Input (a portabind extension, `portabind.io/trigger: "true"`): on Azure the build makes the
function a Cosmos DB trigger (the change feed, leases in `leaseContainer`). Locally the
listener polls the container for documents whose `_ts` (last-modified time, in whole
seconds) is at least the last one it delivered, oldest first, every `feedPollDelay`: the
local Cosmos DB server has no change feed. Like the change feed, it sees each created or
updated document in its latest version, not deletions, and starts from now unless
`startFromBeginning`. Unlike it: order within one second is by id, not by write; two updates
of a document between polls give one event; and a document the handler fails on is offered
again at the next poll, the later ones waiting behind it (on Azure a retry policy retries
the batch the same way).

Each document is one event (`document_event`, the same on every target): `data` is the
document as written, without the system properties, which are metadata under their own
names (`_rid`, `_etag`, `_ts`, `_lsn`) beside `id`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

from portabind.annotations import ExtensionTrigger, Flag, text_matching
from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings.azure import COSMOS_KEY
from portabind.bindings.azure._storage import EntraMetadata, azure_errors
from portabind.errors import BindingError
from portabind.events import (
    BindingEvent,
    BindingResponse,
    Metadata,
    compact_json,
    metadata_value,
)
from portabind.metadata import Bounds, Duration, Secret, setting

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator, Mapping

log = logging.getLogger(__name__)

#: Set by `portabind run --emulate` (and the tests) to the local Cosmos DB server's URL: a
#: component pointing there skips certificate checks (its certificate is self-signed).
EMULATOR_ENV = "PORTABIND_COSMOS_EMULATOR"
#: The properties Cosmos DB adds to a document.
SYSTEM_PROPERTIES = ("_rid", "_self", "_etag", "_attachments", "_ts", "_lsn")
DEFAULT_POLL = timedelta(seconds=1)


class CosmosMetadata(EntraMetadata):
    binding_type = "bindings.azure.cosmosdb"

    url: str = setting(
        "url", description="the account's URL, https://<account>.documents.azure.com:443/"
    )
    master_key: Secret | None = setting(
        "masterKey", None, secret=True, description="omit to authenticate with Entra ID"
    )
    database: str = setting("database")
    collection: str = setting("collection", description="the container")
    partition_key: str = setting(
        "partitionKey",
        description="the document field holding the partition key (dotted for a nested one)",
    )


class CosmosAnnotations(ExtensionTrigger):
    """The change-feed trigger (`trigger`), read by the local listener and the Azure build."""

    lease_container: Annotated[str, text_matching(r"[^/\\#?]{1,255}", "a container name")] = (
        setting("leaseContainer", "leases", description="where Azure keeps the feed's leases")
    )
    start_from_beginning: Flag = setting(
        "startFromBeginning", False, description="deliver the documents that exist already"
    )
    feed_poll_delay: Annotated[Duration, Bounds(gt=timedelta(0))] = setting(
        "feedPollDelay", DEFAULT_POLL, description="wait between looks at the container"
    )


def cosmos_client(metadata: CosmosMetadata) -> Any:
    """The SDK's client for the account: the master key, else Entra ID."""
    from azure.cosmos import CosmosClient

    key = metadata.secret("master_key")
    local = os.environ.get(EMULATOR_ENV, "").rstrip("/")
    emulated = bool(local) and metadata.url.rstrip("/") == local
    if emulated:  # its certificate is self-signed: say so once, not on every request
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return CosmosClient(
        metadata.url,
        credential=key if key else metadata.entra_credential(),
        connection_verify=not emulated,
    )


def container_client(metadata: CosmosMetadata) -> Any:
    database = cosmos_client(metadata).get_database_client(metadata.database)
    return database.get_container_client(metadata.collection)


def partition_key_value(document: Mapping[str, Any], path: str) -> str:
    """The partition key of a document as Dapr reads it; ValueError with Dapr's message."""
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ValueError(
                f"missing partitionKey field {path} from request body - key not found {part}"
            )
        value = value[part]
    if not isinstance(value, str):
        raise ValueError("partition key is not a string")
    if not value:
        raise ValueError(f"partitionKey field {path} from request body is empty")
    return value


def document_event(name: str, document: Mapping[str, Any]) -> BindingEvent:
    """The event of one document (module docstring)."""
    payload = {k: v for k, v in document.items() if k not in SYSTEM_PROPERTIES}
    fields = {
        key: metadata_value(document[key])
        for key in ("id", *SYSTEM_PROPERTIES)
        if key in document and key not in ("_self", "_attachments")
    }
    data = compact_json(payload)
    return BindingEvent(name, data, Metadata(fields))


class CosmosOutput(OutputBinding[CosmosMetadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: CosmosMetadata) -> None:
        super().__init__(name, metadata)
        self._container = container_client(metadata)
        with azure_errors(name, "init"):  # Dapr reads the container at Init
            self._container.read()

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        try:
            document = json.loads(data)
        except ValueError as error:
            raise BindingError(self.name, "create", f"data is not JSON: {error}") from None
        if not isinstance(document, dict):
            raise BindingError(self.name, "create", "the data must be a JSON object")
        try:
            partition_key_value(document, self.metadata.partition_key)
        except ValueError as error:
            raise BindingError(self.name, "create", str(error)) from None
        with azure_errors(self.name, "create"):
            self._container.create_item(document)
        return BindingResponse()


def changed_since(container: Any, since: int) -> Iterator[dict[str, Any]]:
    """The documents last modified at or after `since` (Unix seconds), oldest first."""
    query = "SELECT * FROM c WHERE c._ts >= @since ORDER BY c._ts ASC"
    found = container.query_items(
        query, parameters=[{"name": "@since", "value": since}], enable_cross_partition_query=True
    )
    return iter(sorted(found, key=lambda doc: (doc["_ts"], str(doc.get("id")))))


class CosmosInput(InputBinding[CosmosMetadata]):
    """The local stand-in for the change feed: polling by `_ts` (module docstring)."""

    annotations: CosmosAnnotations

    def __init__(
        self, name: str, metadata: CosmosMetadata, *, annotations: CosmosAnnotations | None = None
    ) -> None:
        super().__init__(name, metadata, annotations=annotations or CosmosAnnotations())

    def listen(self, deliver: Callable[[BindingEvent], Any], stop: threading.Event) -> None:
        from azure.core.exceptions import AzureError

        container = container_client(self.metadata)
        since = 0 if self.annotations.start_from_beginning else int(time.time())
        #: Documents delivered in the second `since`: their _rid → _etag.
        delivered: dict[str, str] = {}
        pause = self.annotations.feed_poll_delay.total_seconds()
        while not stop.is_set():
            try:
                changed = list(changed_since(container, since))
            except AzureError as error:
                log.warning("%s: reading the container failed: %s", self.name, error)
                changed = []
            for document in changed:
                if stop.is_set() or delivered.get(document["_rid"]) == document["_etag"]:
                    continue
                try:
                    deliver(document_event(self.name, document))
                except Exception:
                    log.exception("%s: handler failed on document %s", self.name, document["id"])
                    break  # offered again at the next poll; the later ones wait behind it
                if document["_ts"] > since:
                    since, delivered = document["_ts"], {}
                delivered[document["_rid"]] = document["_etag"]
            stop.wait(pause)


def provision(metadata: CosmosMetadata) -> None:
    """Create the database and the container (partitioned by `partitionKey`) if missing."""
    from azure.cosmos import PartitionKey

    client = cosmos_client(metadata)
    database = client.create_database_if_not_exists(metadata.database)
    path = "/" + metadata.partition_key.replace(".", "/")
    database.create_container_if_not_exists(metadata.collection, PartitionKey(path))


def emulate(endpoints: Mapping[str, str]) -> dict[str, str]:
    """The local Cosmos DB server and its well-known key."""
    return {"url": endpoints["cosmos"], "masterKey": COSMOS_KEY}


binding = Binding(
    metadata=CosmosMetadata,
    annotations=CosmosAnnotations,
    output=CosmosOutput,
    input=CosmosInput,
    emulator="cosmos",
    emulate=emulate,
    provision=provision,
    requires=("azure-cosmos", "azure-identity"),
)
