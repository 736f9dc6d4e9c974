"""bindings.azure.eventgrid: the azure-eventgrid SDK's real requests, received by a local HTTP
server, and the webhook (the local listener) answering Event Grid's handshakes and handing
the handler each event's data."""

from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING

import httpx
import pytest
from pydantic import ValidationError

from portabind.adapters.local.emulators import free_port, wait_for_port
from portabind.bindings.azure.eventgrid import (
    EventGridInput,
    EventGridMetadata,
    EventGridOutput,
    binding,
    event_from_json,
)
from portabind.errors import BindingError, UserError
from portabind.events import BindingEvent, Metadata
from tests.helpers import running

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pytest_httpserver import HTTPServer

pytest.importorskip("azure.eventgrid")

KEY = "dG9waWMta2V5LW5vdC1hLXJlYWwtb25l"
CLOUD_EVENT = {
    "specversion": "1.0",
    "id": "e-1",
    "source": "/orders",
    "type": "com.example.order.created",
    "time": "2026-01-02T03:04:05.1234567Z",
    "subject": "orders/7",
    "data": {"id": 7},
    "traceparent": "00-abc-def-01",
}
GRID_EVENT = {
    "id": "g-1",
    "topic": "/subscriptions/s/resourceGroups/r/providers/Microsoft.EventGrid/topics/t",
    "subject": "orders/8",
    "eventType": "Order.Created",
    "eventTime": "2026-01-02T03:04:05Z",
    "dataVersion": "1.0",
    "metadataVersion": "1",
    "data": {"id": 8},
}


def output(httpserver: HTTPServer, **values: str) -> EventGridOutput:
    fields = {"topicEndpoint": httpserver.url_for("/api/events"), "accessKey": KEY, **values}
    return EventGridOutput("events", EventGridMetadata.model_validate(fields))


def test_metadata_accepts_every_dapr_key_and_alias() -> None:
    metadata = EventGridMetadata.model_validate(
        {
            "topicEndpoint": "https://t.westeurope-1.eventgrid.azure.net/api/events",
            "accessKey": KEY,
            "subscriberEndpoint": "https://example.com",
            "handshakePort": "9000",
            "scope": "/subscriptions/s/resourceGroups/r",
            "eventSubscriptionName": "orders-sub",
            "tenantID": "t",
            "subscriptionID": "s",
            "clientID": "c",
            "azureClientSecret": "x",
            "azureEnvironment": "AzurePublicCloud",
        }
    )
    assert (metadata.handshake_port, metadata.azure_subscription_id) == (9000, "s")
    assert metadata.subscriber_path() == "/api/events"  # Dapr's default path
    assert "cl13nt-s3cret" not in repr(metadata) and KEY not in repr(metadata)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subscriberEndpoint", "not a url"),
        ("topicEndpoint", "ftp://x"),
        ("handshakePort", "70000"),
        ("eventSubscriptionName", "a b"),
    ],
)
def test_bad_fields_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        EventGridMetadata.model_validate({field: value})


def test_output_needs_the_topic_and_its_key() -> None:
    with pytest.raises(UserError, match="needs accessKey"):
        EventGridOutput("events", EventGridMetadata.model_validate({"topicEndpoint": "http://x"}))


def test_create_publishes_a_cloud_event_batch_with_the_access_key(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/events", method="POST").respond_with_data("")
    event = {k: v for k, v in CLOUD_EVENT.items() if k != "time"}

    assert output(httpserver).invoke("create", json.dumps(event).encode(), Metadata()).data is None

    ((request, _),) = httpserver.log
    assert request.headers["aeg-sas-key"] == KEY
    assert request.headers["Content-Type"].startswith("application/cloudevents-batch+json")
    (sent,) = json.loads(request.get_data())
    assert {k: sent[k] for k in event} == event


def test_create_publishes_event_grid_schema_events_as_given(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/events", method="POST").respond_with_data("")
    events = [GRID_EVENT, {**GRID_EVENT, "id": "g-2"}]

    output(httpserver).invoke("create", json.dumps(events).encode(), Metadata())

    ((request, _),) = httpserver.log
    assert request.headers["Content-Type"].startswith("application/json")
    assert json.loads(request.get_data()) == events


def test_create_refuses_data_that_is_no_event(httpserver: HTTPServer) -> None:
    with pytest.raises(BindingError, match="JSON event"):
        output(httpserver).invoke("create", b"plain text", Metadata())
    assert httpserver.log == []


def test_a_refused_key_is_an_error_that_does_not_show_it(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/events").respond_with_json(
        {"error": {"code": "Unauthorized", "message": "bad key"}}, status=401
    )
    with pytest.raises(BindingError) as caught:
        output(httpserver).invoke("create", json.dumps(GRID_EVENT).encode(), Metadata())
    assert KEY not in str(caught.value)


def test_event_data_is_the_payload_and_the_fields_are_metadata() -> None:
    cloud = event_from_json("events", CLOUD_EVENT)
    assert cloud.data == b'{"id":7}'
    assert dict(cloud.metadata) == {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/orders",
        "type": "com.example.order.created",
        "eventType": "com.example.order.created",
        "time": "2026-01-02T03:04:05.123456Z",
        "subject": "orders/7",
        "traceparent": "00-abc-def-01",
    }
    grid = event_from_json("events", GRID_EVENT)
    assert grid.data == b'{"id":8}'
    assert dict(grid.metadata) == {k: v for k, v in GRID_EVENT.items() if k != "data"}
    text = event_from_json("events", {**CLOUD_EVENT, "data": "hi"})
    assert text.data == b"hi"  # a string payload is its text, not JSON
    binary = event_from_json("events", {"specversion": "1.0", "id": "b", "data_base64": "AAEC"})
    assert binary.data == b"\x00\x01\x02"


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[BindingEvent]]]:
    """The listener on a free port with a handler that records events and refuses `poison`."""
    seen: list[BindingEvent] = []

    def deliver(event: BindingEvent) -> None:
        if event.data == b'"poison"' or event.data == b"poison":
            raise ValueError("cannot take this one")
        seen.append(event)

    port = free_port()
    metadata = EventGridMetadata.model_validate(
        {"subscriberEndpoint": "https://public.example.com/hooks/orders", "handshakePort": port}
    )
    with running(EventGridInput("events", metadata), deliver):
        wait_for_port(port, timeout=10)
        yield f"http://127.0.0.1:{port}/hooks/orders", seen


def test_webhook_answers_the_subscription_validation(
    webhook: tuple[str, list[BindingEvent]],
) -> None:
    url, seen = webhook
    validation = {
        **GRID_EVENT,
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "data": {"validationCode": "512d38b6-c7b8", "validationUrl": "https://x"},
    }
    reply = httpx.post(url, json=[validation])
    assert (reply.status_code, reply.json()) == (200, {"validationResponse": "512d38b6-c7b8"})
    options = httpx.options(url, headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert options.status_code == 200
    assert options.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert options.headers["WebHook-Allowed-Rate"] == "*"
    assert seen == []


def test_webhook_delivers_each_event_of_a_batch(webhook: tuple[str, list[BindingEvent]]) -> None:
    url, seen = webhook
    second = {**GRID_EVENT, "id": "g-2", "data": {"id": 9}}
    assert httpx.post(url, json=[GRID_EVENT, second]).status_code == 200
    assert [(e.name, e.data, e.metadata["id"]) for e in seen] == [
        ("events", b'{"id":8}', "g-1"),
        ("events", b'{"id":9}', "g-2"),
    ]
    structured = httpx.post(
        url,
        content=json.dumps(CLOUD_EVENT),
        headers={"Content-Type": "application/cloudevents+json"},
    )
    assert structured.status_code == 200
    assert (seen[-1].data, seen[-1].metadata["eventType"]) == (
        b'{"id":7}',
        "com.example.order.created",
    )


def test_webhook_fails_the_delivery_when_the_handler_raises(
    webhook: tuple[str, list[BindingEvent]],
) -> None:
    url, _ = webhook
    reply = httpx.post(url, json=[{**GRID_EVENT, "data": "poison"}])
    assert reply.status_code == 500  # Event Grid retries it, by the subscription's policy


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/elsewhere", b"[]", 404),
        ("GET", "", b"", 405),
        ("POST", "", b"{not json", 400),
        ("POST", "", b"[1, 2]", 400),
    ],
)
def test_webhook_refuses_what_is_not_a_delivery(
    webhook: tuple[str, list[BindingEvent]], method: str, path: str, body: bytes, status: int
) -> None:
    url, seen = webhook
    target = url.rsplit("/hooks", 1)[0] + path if path else url
    assert httpx.request(method, target, content=body).status_code == status
    assert seen == []


def test_binding_is_input_and_output() -> None:
    assert binding.directions == {"input", "output"}
    assert binding.output is not None
    assert binding.output.operations == ("create",)


def test_a_taken_port_is_one_clear_error() -> None:
    port = free_port()
    metadata = EventGridMetadata.model_validate({"handshakePort": port})

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with (
            pytest.raises(UserError, match=f"cannot listen on 127.0.0.1:{port}"),
            running(EventGridInput("events", metadata), lambda event: None),
        ):
            pass
