"""The app protocol mapping: an event written by the sidecar side reads back the same on the
app side, over HTTP headers and over the gRPC message's wire bytes."""

from __future__ import annotations

from portabind import appprotocol
from portabind.events import BindingEvent, Metadata

EVENT = BindingEvent(
    "orders",
    b'{"id": 1}',
    Metadata({"messageID": "m-1", "x-opt-offset": "42", "__key": "k", "dequeueCount": "1"}),
)


def test_http_headers_use_gos_canonical_names_and_the_json_content_type() -> None:
    headers = appprotocol.http_headers(EVENT.metadata)
    assert headers == {
        "Messageid": "m-1",
        "X-Opt-Offset": "42",
        "__key": "k",
        "Dequeuecount": "1",
        "Content-Type": "application/json",
    }


def test_http_round_trip_gives_the_same_event() -> None:
    headers = appprotocol.http_headers(EVENT.metadata, token="app-token")
    assert headers["dapr-api-token"] == "app-token"
    # What the app's server sees: the sidecar's headers plus its HTTP client's own.
    received = {**headers, "Host": "127.0.0.1:8000", "User-Agent": "x", "Content-Length": "9"}
    event = appprotocol.event_from_http("orders", EVENT.data, received)
    assert event == EVENT
    assert event.metadata == EVENT.metadata  # keys compare case-insensitively (rule 7)
    assert "dapr-api-token" not in event.metadata


def test_metadata_http_cannot_carry_is_left_out() -> None:
    metadata = Metadata(
        {"ok": "1", "content-length": "9", "host": "evil", "trace-bin": "x", "bad": "a\r\nb"}
    )
    assert set(appprotocol.http_headers(metadata)) == {"Ok", "Content-Type"}


def test_grpc_round_trip_over_the_wire_gives_the_same_event() -> None:
    from dapr.proto.runtime.v1.appcallback_pb2 import BindingEventRequest

    wire = appprotocol.binding_event_request(EVENT).SerializeToString()
    event = appprotocol.event_from_grpc(BindingEventRequest.FromString(wire))
    assert event == EVENT
    assert dict(event.metadata) == dict(EVENT.metadata)  # gRPC keeps the keys' spelling


def test_routes_and_subscriptions() -> None:
    assert appprotocol.http_path("orders") == "/orders"
    assert appprotocol.http_path("/in/orders") == "/in/orders"
    assert [appprotocol.subscribed(s) for s in (200, 204, 405, 404, 500)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert appprotocol.call_metadata("t") == (("dapr-api-token", "t"),)
    assert appprotocol.call_metadata(None) == ()
