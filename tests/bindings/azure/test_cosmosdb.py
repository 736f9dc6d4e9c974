"""bindings.azure.cosmosdb against the local Cosmos DB server (@vercel/cosmosdb-server,
HTTPS, the emulator's well-known key) with the real azure-cosmos SDK: `create` with the
partition key taken from the document as Dapr does, and the local change-feed listener
polling by `_ts`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError

from portabind.annotations import parse_annotations
from portabind.bindings.azure import COSMOS_KEY
from portabind.bindings.azure.cosmosdb import (
    CosmosAnnotations,
    CosmosInput,
    CosmosMetadata,
    CosmosOutput,
    binding,
    container_client,
    document_event,
    emulate,
    provision,
)
from portabind.components import Component
from portabind.errors import BindingError, UserError
from portabind.events import BindingEvent, Metadata
from tests.helpers import running, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable

pytest.importorskip("azure.cosmos")


def metadata(server: Any, collection: str, partition_key: str = "customer") -> CosmosMetadata:
    values = {
        "url": server.endpoint,
        "masterKey": COSMOS_KEY,
        "database": "shop",
        "collection": collection,
        "partitionKey": partition_key,
    }
    return CosmosMetadata.model_validate(values)


@pytest.fixture
def orders(cosmos_server: Any, unique_name: Callable[..., str]) -> CosmosMetadata:
    """A new container partitioned by /customer."""
    found = metadata(cosmos_server, unique_name("orders"))
    provision(found)
    return found


def stored(found: CosmosMetadata) -> list[dict[str, Any]]:
    return list(container_client(found).read_all_items())


def test_metadata_takes_dapr_keys_and_needs_the_required_ones() -> None:
    with pytest.raises(ValidationError) as caught:
        CosmosMetadata.model_validate({"url": "https://a.documents.azure.com:443/"})
    missing = {error["loc"][0] for error in caught.value.errors()}
    assert missing == {"database", "collection", "partitionKey"}
    entra = CosmosMetadata.model_validate(
        {
            "url": "u",
            "database": "d",
            "collection": "c",
            "partitionKey": "p",
            "azureTenantId": "t",
            "azureClientId": "c",
        }
    )
    assert entra.master_key is None


def test_create_stores_the_document_in_its_partition(orders: CosmosMetadata) -> None:
    output = CosmosOutput("orders", orders)
    document = {"id": "o-1", "customer": "ann", "total": 12.5}

    assert output.invoke("create", json.dumps(document).encode(), Metadata()).data is None

    (found,) = stored(orders)
    assert {k: found[k] for k in document} == document
    item = container_client(orders).read_item("o-1", partition_key="ann")
    assert item["total"] == 12.5


def test_a_nested_partition_key_path_is_followed(cosmos_server: Any, unique_name: Any) -> None:
    nested = metadata(cosmos_server, unique_name("nested"), partition_key="customer.region")
    provision(nested)
    document = {"id": "n-1", "customer": {"region": "eu"}}
    CosmosOutput("orders", nested).invoke("create", json.dumps(document).encode(), Metadata())
    (found,) = stored(nested)
    assert found["customer"] == {"region": "eu"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"id": "x"}, "missing partitionKey field customer"),
        ({"id": "x", "customer": 7}, "partition key is not a string"),
        ({"id": "x", "customer": ""}, "is empty"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_create_refuses_a_document_without_a_string_partition_key(
    orders: CosmosMetadata, document: Any, message: str
) -> None:
    with pytest.raises(BindingError, match=message):
        CosmosOutput("orders", orders).invoke("create", json.dumps(document).encode(), Metadata())
    assert stored(orders) == []


def test_create_of_an_existing_id_fails(orders: CosmosMetadata) -> None:
    output = CosmosOutput("orders", orders)
    data = json.dumps({"id": "o-1", "customer": "ann"}).encode()
    output.invoke("create", data, Metadata())
    with pytest.raises(BindingError):
        output.invoke("create", data, Metadata())


def test_a_missing_container_fails_at_init(cosmos_server: Any) -> None:
    with pytest.raises(BindingError):
        CosmosOutput("orders", metadata(cosmos_server, "no-such-container"))


def test_document_event_is_the_document_as_written_with_system_fields_as_metadata() -> None:
    event = document_event(
        "orders",
        {
            "id": "o-1",
            "customer": "ann",
            "_rid": "r==",
            "_self": "dbs/x",
            "_etag": '"e"',
            "_attachments": "attachments/",
            "_ts": 1796166945,
        },
    )
    assert event.data == b'{"id":"o-1","customer":"ann"}'
    assert dict(event.metadata) == {"id": "o-1", "_rid": "r==", "_etag": '"e"', "_ts": "1796166945"}


def listener(found: CosmosMetadata, **annotations: str) -> CosmosInput:
    parsed = CosmosAnnotations.model_validate({"feedPollDelay": "50ms", **annotations})
    return CosmosInput("orders", found, annotations=parsed)


def test_listener_delivers_new_and_changed_documents_once(orders: CosmosMetadata) -> None:
    container = container_client(orders)
    container.create_item({"id": "before", "customer": "ann"})
    time.sleep(1.1)  # `before` is a second older than the listener's start
    seen: list[BindingEvent] = []
    with running(listener(orders), seen.append):
        time.sleep(0.2)
        container.create_item({"id": "o-1", "customer": "ann", "n": 1})
        container.create_item({"id": "o-2", "customer": "bob", "n": 2})
        took = wait_until(lambda: len(seen) == 2)
        container.upsert_item({"id": "o-1", "customer": "ann", "n": 3})
        wait_until(lambda: len(seen) == 3)
        time.sleep(0.3)  # nothing more comes: each version once
    assert took < 1.0
    assert [(e.metadata["id"], e.json()["n"]) for e in seen] == [("o-1", 1), ("o-2", 2), ("o-1", 3)]


def test_listener_from_the_beginning_delivers_what_exists(orders: CosmosMetadata) -> None:
    container_client(orders).create_item({"id": "old", "customer": "ann"})
    seen: list[BindingEvent] = []
    with running(listener(orders, startFromBeginning="true"), seen.append):
        wait_until(lambda: len(seen) == 1)
    assert seen[0].json() == {"id": "old", "customer": "ann"}


def test_a_failed_document_is_offered_again_and_the_next_waits(orders: CosmosMetadata) -> None:
    container = container_client(orders)
    calls: list[str] = []

    def handler(event: BindingEvent) -> None:
        calls.append(event.metadata["id"])
        if calls.count("a") < 2 and event.metadata["id"] == "a":
            raise RuntimeError("not yet")

    with running(listener(orders), handler):
        time.sleep(0.2)
        container.create_item({"id": "a", "customer": "ann"})
        container.create_item({"id": "b", "customer": "ann"})
        wait_until(lambda: "b" in calls)
    assert calls == ["a", "a", "b"]


def test_annotations_are_checked_with_the_component() -> None:
    component = Component(
        name="orders",
        type="bindings.azure.cosmosdb",
        version="v1",
        source=Path("components/orders.yaml"),
        values={},
        annotations={"trigger": "true", "feedPollDelay": "soon"},
    )
    with pytest.raises(UserError, match="feedPollDelay"):
        parse_annotations(component, (CosmosAnnotations,))


def test_binding_runs_on_the_local_server() -> None:
    assert binding.emulator == "cosmos"
    assert emulate({"cosmos": "https://127.0.0.1:1"}) == {
        "url": "https://127.0.0.1:1",
        "masterKey": COSMOS_KEY,
    }
    assert binding.directions == {"input", "output"}
