"""Inbound HTTP (a portabind extension): the event every target builds from a request, the
reply built from a handler's result, and the local listener `portabind run` uses."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from portabind.adapters.local.emulators import free_port, wait_for_port
from portabind.adapters.local.runner import RunOptions, run
from portabind.bindings.http import (
    HttpAnnotations,
    HttpInput,
    HttpMetadata,
    HttpOutput,
    Trigger,
    component_trigger,
    http_reply,
    request_event,
    trigger_settings,
)
from portabind.components import Component
from portabind.errors import ComponentError, UserError
from portabind.tooling.project import load_project

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from portabind.events import BindingEvent


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


# --- trigger settings -------------------------------------------------------------------


def _annotations(**annotations: str) -> HttpAnnotations:
    return HttpAnnotations.model_validate(annotations)


def test_trigger_is_off_without_the_annotation() -> None:
    assert trigger_settings("api", _annotations()) is None
    assert trigger_settings("api", _annotations(trigger="false", path="/x")) is None


def test_trigger_defaults_and_annotations() -> None:
    assert trigger_settings("orders-api", _annotations(trigger="true")) == Trigger(
        path="/orders-api", methods=(), auth_level="function", port=8080
    )
    assert trigger_settings(
        "api",
        _annotations(
            trigger="true",
            path="v1/orders",
            method="post, get,POST",
            authLevel="Anonymous",
            port="9091",
        ),
    ) == Trigger(path="/v1/orders", methods=("POST", "GET"), auth_level="anonymous", port=9091)


@pytest.mark.parametrize(
    ("annotations", "field", "message"),
    [
        ({"path": "/orders/{id}"}, "path", "must be a literal path"),
        ({"path": "/a/../b"}, "path", "must be a literal path"),
        ({"method": "POST,FETCH"}, "method", "item 2: Input should be 'GET', 'POST'"),
        ({"authLevel": "none"}, "authLevel", "'anonymous', 'function' or 'admin', got 'none'"),
        ({"port": "70000"}, "port", "a whole number from 1 to 65535, got '70000'"),
    ],
)
def test_component_trigger_refuses_what_a_target_cannot_route(
    annotations: dict[str, str], field: str, message: str
) -> None:
    api = Component(
        "api",
        "bindings.http",
        "v1",
        Path("components/api.yaml"),
        {},
        {"trigger": "true", **annotations},
    )
    with pytest.raises(ComponentError, match=message) as caught:
        component_trigger(api)
    assert (caught.value.component, caught.value.field) == (
        "api",
        f"metadata.annotations.portabind.io/{field}",
    )


# --- the local listener -------------------------------------------------------------------


def _listener(port: int, **annotations: str) -> HttpInput:
    return HttpInput(
        "api",
        HttpMetadata(),
        annotations=_annotations(trigger="true", port=str(port), **annotations),
    )


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Run a listener in a thread; yields a starter returning its base URL."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(handler: Callable[[BindingEvent], Any], **annotations: str) -> str:
        port = free_port()
        listener = _listener(port, **annotations)
        thread = threading.Thread(target=listener.listen, args=(handler, stop), daemon=True)
        thread.start()
        threads.append(thread)
        wait_for_port(port, "127.0.0.1", timeout=10)
        return f"http://127.0.0.1:{port}"

    yield start
    stop.set()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()


def test_listener_answers_with_the_handler_result(serve: Callable[..., str]) -> None:
    seen: list[BindingEvent] = []

    def handler(event: BindingEvent) -> Any:
        seen.append(event)
        return {"got": event.json()["id"]}

    base = serve(handler, path="/orders", method="POST")
    reply = httpx.post(f"{base}/orders?dry=1", json={"id": 5}, headers={"X-Tag": "t"})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"got": 5}
    (event,) = seen
    assert event.data == b'{"id":5}'
    assert event.metadata["method"] == "POST"
    assert event.metadata["path"] == "/orders"
    assert event.metadata["query"] == "dry=1"
    assert event.metadata["x-tag"] == "t"
    assert event.metadata["requestId"]


def test_listener_routes_only_its_path_and_methods(serve: Callable[..., str]) -> None:
    calls: list[BindingEvent] = []
    base = serve(calls.append, path="/orders", method="POST,PUT")
    assert httpx.post(f"{base}/other", content=b"x").status_code == 404
    refused = httpx.get(f"{base}/orders")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "POST, PUT"
    assert calls == []
    # list.append returns None: no content
    done = httpx.put(f"{base}/orders", content=b"x")
    assert (done.status_code, done.content) == (204, b"")
    assert len(calls) == 1


def test_listener_answers_500_when_the_handler_raises(serve: Callable[..., str]) -> None:
    def handler(event: BindingEvent) -> str:
        raise RuntimeError("boom")

    base = serve(handler)
    reply = httpx.post(f"{base}/api", content=b"x")
    assert reply.status_code == 500
    assert "RuntimeError: boom" in reply.text


def test_listener_refuses_a_component_without_the_trigger_annotation() -> None:
    listener = HttpInput("api", HttpMetadata())
    with pytest.raises(UserError, match=r'portabind.io/trigger: "true"'):
        listener.listen(lambda event: None, threading.Event())


def test_output_still_needs_a_url() -> None:
    with pytest.raises(UserError, match="needs `url`"):
        HttpOutput("api", HttpMetadata())


TRIGGER_APP = """\
from portabind import App, BindingEvent

app = App()


@app.binding("greet")
def greet(event: BindingEvent) -> str:
    return f"hello {event.text()} via {event.metadata['method']} {event.metadata['path']}"
"""


def test_portabind_run_serves_an_http_trigger(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "app.py").write_text(TRIGGER_APP)
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "greet.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "dapr.io/v1alpha1",
                "kind": "Component",
                "metadata": {
                    "name": "greet",
                    "annotations": {
                        "portabind.io/trigger": "true",
                        "portabind.io/path": "/hello",
                        "portabind.io/method": "POST",
                        "portabind.io/port": str(port),
                    },
                },
                "spec": {"type": "bindings.http", "version": "v1", "metadata": []},
            }
        )
    )
    project = load_project(tmp_path)
    options = RunOptions(
        emulate=False, sends=[], exit_after=1, dapr_port=free_port(), app_port=None
    )
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(run(project, options)), daemon=True)
    runner.start()
    wait_for_port(port, "127.0.0.1", timeout=20)
    reply = httpx.post(f"http://127.0.0.1:{port}/hello", content=b"ada")
    assert (reply.status_code, reply.text) == (200, "hello ada via POST /hello")
    runner.join(20)
    assert result == [0]
