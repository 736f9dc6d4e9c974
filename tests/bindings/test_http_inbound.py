"""Inbound HTTP (a portabind extension): the event every target builds from a request, the
reply built from a handler's result, and the local listener `portabind run` uses."""

from __future__ import annotations

from portabind.bindings.http import http_reply, request_event


def test_request_event_keeps_body_and_names_headers_like_go() -> None:
    event = request_event(
        "api",
        method="post",
        path="/orders/7",
        headers=[("content-type", "application/json"), ("x-tag", "a"), ("X-Tag", "b")],
        query="?verbose=1&x=2",
        body=b'{"id": 7}',
        request_id="req-1",
    )
    assert event.name == "api"
    assert event.data == b'{"id": 7}'
    assert dict(event.metadata) == {
        "Content-Type": "application/json",
        "X-Tag": "a, b",
        "query": "verbose=1&x=2",
        "method": "POST",
        "path": "/orders/7",
        "requestId": "req-1",
    }


def test_request_event_headers_cannot_mask_method_or_path() -> None:
    event = request_event(
        "api",
        method="GET",
        path="/real",
        headers={"Path": "/fake", "Method": "DELETE"},
        query="",
        body=None,
    )
    assert event.metadata["path"] == "/real"
    assert event.metadata["method"] == "GET"
    assert event.data == b""
    assert "query" not in event.metadata
    assert "requestId" not in event.metadata


def test_reply_of_each_result_type() -> None:
    none = http_reply(None)
    assert (none.status, none.body, none.content_type) == (204, b"", None)
    text = http_reply("héllo")
    assert (text.status, text.body, text.content_type) == (
        200,
        "héllo".encode(),
        "text/plain; charset=utf-8",
    )
    raw = http_reply(b"\x00\x01")
    assert (raw.body, raw.content_type) == (b"\x00\x01", "application/octet-stream")
    listed = http_reply([1, {"a": "b"}])
    assert (listed.body, listed.content_type) == (b'[1,{"a":"b"}]', "application/json")
