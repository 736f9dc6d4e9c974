"""`portabind build --target azure` for Event Grid, the Cosmos DB change feed and the Blob
trigger (the last two portabind extensions): the azure-functions library indexes the
generated app into eventGridTrigger, cosmosDBTrigger and blobTrigger bindings; the indexed
functions, called with the library's own objects, hand the handler the events the local
listeners give; and the deploy plan creates the Event Grid subscriptions after publishing."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from portabind.adapters.azure.deploy import plan
from portabind.errors import UserError
from portabind.tooling.deployment import DeployOptions
from tests.adapters.azure.function_apps import build, recorded_events, run_driver, write_project

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

HANDLERS = """
@app.binding("events")
def events(event: BindingEvent) -> None:
    record(event)


@app.binding("orders")
def orders(event: BindingEvent) -> None:
    if event.json().get("poison"):
        raise ValueError("cannot take this document")
    record(event)


@app.binding("uploads")
def uploads(event: BindingEvent) -> None:
    record(event)
"""


def component(name: str, type_: str, annotations: dict[str, str], **values: str) -> Any:
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": name,
            "annotations": {f"portabind.io/{k}": v for k, v in annotations.items()},
        },
        "spec": {
            "type": type_,
            "version": "v1",
            "metadata": [{"name": k, "value": v} for k, v in values.items()],
        },
    }


SCOPE = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.EventGrid/topics/orders"


def project_dir(tmp_path: Path, app: str, **overrides: Any) -> Path:
    documents = {
        "events": component(
            "events",
            "bindings.azure.eventgrid",
            {},
            scope=SCOPE,
            eventSubscriptionName="orders-to-fn",
            subscriberEndpoint="https://example.com/api/events",
        ),
        "orders": component(
            "orders",
            "bindings.azure.cosmosdb",
            {"trigger": "true", "leaseContainer": "order-leases", "startFromBeginning": "true"},
            url="https://shop.documents.azure.com:443/",
            database="shop",
            collection="orders",
            partitionKey="customer",
        ),
        "uploads": component(
            "uploads",
            "bindings.azure.blobstorage",
            {"trigger": "true", "path": "incoming/{name}.csv"},
            accountName="shopfiles",
            containerName="in",
        ),
    }
    documents.update(overrides)
    return write_project(tmp_path, app, documents.values())


# Runs in a fresh interpreter with OUT first on sys.path, as the Functions worker does.
DRIVER = r"""
import datetime
import azure.functions as func
from azure.functions.blob import InputStream

moment = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
call("events", func.EventGridEvent(
    id="g-1", data={"id": 8}, topic="/t", subject="orders/8", event_type="Order.Created",
    event_time=moment, data_version="1.0"))
call("events", func.CloudEvent(
    id="e-1", source="/orders", type="com.example.created", specversion="1.0", time=moment,
    subject="orders/7", datacontenttype="application/json", dataschema=None, data={"id": 7}))
call("orders", func.DocumentList([
    func.Document.from_dict({"id": "o-1", "customer": "ann", "_ts": 1796166945, "_etag": "e1"}),
    func.Document.from_dict({"id": "o-2", "customer": "bob", "_ts": 1796166946, "_etag": "e2"}),
]))
try:
    call("orders", func.DocumentList([func.Document.from_dict({"id": "p", "poison": True})]))
    result["failed"] = False
except ValueError:
    result["failed"] = True
call("uploads", InputStream(
    data=b"a,b\n", name="in/incoming/day1.csv", length=4, uri="https://x/in/incoming/day1.csv",
    blob_properties={
        "ContentType": "text/csv", "ETag": "0x8D1", "LastModified": "2026-01-02T03:04:05+00:00"
    },
    metadata={"origin": "scanner"}))
"""


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, recording_app: Callable[[str], str]
) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    tmp_path = tmp_path_factory.mktemp("built")
    out = tmp_path / "out"
    build(project_dir(tmp_path, recording_app(HANDLERS)), out)
    record = tmp_path / "events.jsonl"
    return out, run_driver(out, DRIVER, record), recorded_events(record)


def recorded(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["name"] == name]


def test_event_grid_trigger_hands_each_event_data_in_both_schemas(built: Any) -> None:
    _, result, events = built
    assert result["events"]["doc"]["bindings"] == [
        {"direction": "IN", "type": "eventGridTrigger", "name": "event"}
    ]
    grid, cloud = recorded(events, "events")
    assert bytes.fromhex(grid["data"]) == b'{"id":8}'
    assert grid["metadata"]["eventType"] == "Order.Created"
    assert grid["metadata"]["eventTime"] == "2026-01-02T03:04:05Z"
    assert bytes.fromhex(cloud["data"]) == b'{"id":7}'
    assert (cloud["metadata"]["type"], cloud["metadata"]["eventType"]) == (
        "com.example.created",
        "com.example.created",
    )


def test_cosmos_trigger_reads_the_change_feed_one_event_per_document(built: Any) -> None:
    out, result, events = built
    (binding,) = result["orders"]["doc"]["bindings"]
    assert binding["type"] == "cosmosDBTrigger"
    assert (binding["databaseName"], binding["containerName"]) == ("shop", "orders")
    assert binding["leaseContainerName"] == "order-leases"
    assert binding["startFromBeginning"] is True
    connection = binding["connection"]
    deployed = {s["name"]: s["value"] for s in json.loads((out / "appsettings.json").read_text())}
    assert deployed[f"{connection}__accountEndpoint"] == "https://shop.documents.azure.com:443/"
    assert result["orders"]["retry"]["max_retry_count"] == "-1"
    first, second = recorded(events, "orders")
    assert json.loads(bytes.fromhex(first["data"])) == {"id": "o-1", "customer": "ann"}
    assert (first["metadata"]["_ts"], second["metadata"]["id"]) == ("1796166945", "o-2")
    assert result["failed"]  # the host retries the batch by the function's retry policy


def test_blob_trigger_uses_event_grid_and_hands_the_content(built: Any) -> None:
    out, result, events = built
    (binding,) = result["uploads"]["doc"]["bindings"]
    assert binding["type"] == "blobTrigger"
    assert (binding["path"], binding["source"]) == ("in/incoming/{name}.csv", "EventGrid")
    deployed = {s["name"]: s["value"] for s in json.loads((out / "appsettings.json").read_text())}
    blob_uri = deployed[f"{binding['connection']}__blobServiceUri"]
    assert blob_uri == "https://shopfiles.blob.core.windows.net"
    (event,) = recorded(events, "uploads")
    assert bytes.fromhex(event["data"]) == b"a,b\n"
    metadata = event["metadata"]
    assert (metadata["blobName"], metadata["container"]) == ("incoming/day1.csv", "in")
    assert (metadata["size"], metadata["contentType"], metadata["origin"]) == (
        "4",
        "text/csv",
        "scanner",
    )


def test_deploy_subscribes_the_functions_after_publishing(built: Any) -> None:
    out, _, _ = built
    steps = plan(out, DeployOptions(name="shop-app", region="westeurope"))
    titles = [step.title for step in steps]
    publish = next(i for i, t in enumerate(titles) if t.startswith("publish"))
    later = [step.command for step in steps[publish + 1 :]]
    grid = next(c for c in later if "create" in c and "orders-to-fn" in c)
    assert grid[:4] == ("az", "eventgrid", "event-subscription", "create")
    assert grid[grid.index("--source-resource-id") + 1] == SCOPE
    assert grid[grid.index("--endpoint") + 1] == "${FUNCTION_APP_ID}/functions/events"
    assert grid[grid.index("--event-delivery-schema") + 1] == "cloudeventschemav1_0"
    blob = next(c for c in later if "create" in c and "webhook" in c)
    endpoint = blob[blob.index("--endpoint") + 1]
    assert endpoint.startswith("https://shop-app.azurewebsites.net/runtime/webhooks/blobs?")
    assert endpoint.endswith("functionName=Host.Functions.uploads&code=${BLOBS_EXTENSION_KEY}")
    begins = blob[blob.index("--subject-begins-with") + 1]
    assert begins == "/blobServices/default/containers/in/blobs/incoming/"
    assert blob[blob.index("--subject-ends-with") + 1] == ".csv"
    created = [r.delete for step in steps for r in step.creates if r.kind.startswith("Event Grid")]
    assert len(created) == 2
    assert all(c[:4] == ("az", "eventgrid", "event-subscription", "delete") for c in created)


@pytest.mark.parametrize(
    ("name", "document", "message"),
    [
        (
            "orders",
            component(
                "orders",
                "bindings.azure.cosmosdb",
                {},
                url="u",
                database="d",
                collection="c",
                partitionKey="p",
            ),
            "portabind.io/trigger",
        ),
        ("events", component("events", "bindings.azure.eventgrid", {}), "scope"),
    ],
)
def test_what_the_build_cannot_make_is_one_error(
    tmp_path: Path,
    recording_app: Callable[[str], str],
    name: str,
    document: Any,
    message: str,
) -> None:
    root = project_dir(tmp_path, recording_app(HANDLERS), **{name: document})
    with pytest.raises(UserError, match=message) as caught:
        build(root, tmp_path / "out")
    assert caught.value.component == name  # type: ignore[attr-defined]
