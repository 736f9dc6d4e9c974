"""Dapr's output binding HTTP API as `portabind run` serves it, called with a real HTTP client
against real bindings (SQS and S3 on moto, the http binding against a local server), and with
raw sockets for the requests no client would send."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from portabind.adapters.local.dapr_api import (
    MAX_CONNECTIONS,
    ApiConfig,
    DaprApi,
    metadata_headers,
)
from portabind.adapters.local.emulators import free_port
from portabind.events import Metadata
from portabind.registry import binding_for
from portabind.runtime import Runtime
from portabind.tooling.project import load_components
from tests.helpers import moto_client

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from pytest_httpserver import HTTPServer

    from portabind.adapters.local.emulators.aws import MotoEmulator


class Api:
    def __init__(self, url: str, moto: MotoEmulator, queue: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        self.sqs = moto_client(moto, "sqs")
        self.queue_url = self.sqs.get_queue_url(QueueName=queue)["QueueUrl"]

    def bind(self, name: str, body: Any, method: str = "POST") -> httpx.Response:
        return self.http.request(method, f"/v1.0/bindings/{name}", json=body)

    def queued_body(self) -> str:
        answer = self.sqs.receive_message(QueueUrl=self.queue_url, WaitTimeSeconds=5)
        (message,) = answer["Messages"]
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        body: str = message["Body"]
        return body


@pytest.fixture
def api(
    tmp_path: Path,
    moto_server: MotoEmulator,
    unique_name: Callable[..., str],
    write_component: Callable[..., Path],
) -> Iterator[Api]:
    queue = unique_name("jobs")
    write_component(tmp_path, "jobs", "bindings.aws.sqs", queueName=queue)
    write_component(tmp_path, "files", "bindings.aws.s3", bucket=unique_name("files"))
    components = load_components(tmp_path)
    endpoints = {"moto": moto_server.endpoint}
    runtime = Runtime(components, overrides=lambda _c, b: b.emulate(endpoints) if b.emulate else {})
    for component in components.bindings():
        provision = binding_for(component).provision
        assert provision is not None
        provision(runtime.metadata(component.name))
    server = DaprApi(runtime, free_port())
    server.start()
    client = Api(server.address, moto_server, queue)
    try:
        yield client
    finally:
        client.http.close()
        server.stop()
        runtime.close()


@pytest.mark.parametrize(
    ("data", "delivered"),
    [
        ("hello", '"hello"'),  # json.Marshal of a string keeps its quotes
        ({"id": 1, "items": ["a"]}, '{"id":1,"items":["a"]}'),  # objects arrive compact
        (12.5, "12.5"),
        # Go decodes into `any` and re-encodes: keys sorted, numbers float64, <>& escaped
        ({"b": 1, "a": 2.0, "c": "<&>"}, '{"a":2,"b":1,"c":"\\u003c\\u0026\\u003e"}'),
        ([1e21, 1e-7, 12345678901234567890], "[1e+21,1e-7,12345678901234567000]"),
    ],
)
def test_data_reaches_the_binding_json_encoded(api: Api, data: Any, delivered: str) -> None:
    response = api.bind("jobs", {"operation": "create", "data": data})
    assert response.status_code == 204  # SQS create returns no data
    assert response.content == b""
    assert api.queued_body() == delivered


def test_missing_data_reaches_the_binding_as_null(api: Api) -> None:
    assert api.bind("jobs", {"operation": "create"}).status_code == 204
    assert api.queued_body() == "null"


def test_put_works_like_post(api: Api) -> None:
    assert api.bind("jobs", {"operation": "create", "data": "x"}, method="PUT").status_code == 204
    assert api.queued_body() == '"x"'


def test_response_data_and_metadata_headers(api: Api) -> None:
    created = api.bind(
        "files", {"operation": "create", "data": "hello", "metadata": {"key": "a/b.txt"}}
    )
    assert created.status_code == 200
    assert created.headers["content-type"] == "application/json"
    assert created.headers["metadata.key"] == "a/b.txt"
    assert created.json()["location"].endswith("/a/b.txt")
    fetched = api.bind("files", {"operation": "get", "metadata": {"key": "a/b.txt"}})
    assert fetched.status_code == 200
    assert fetched.content == b"hello"  # S3 strips the quotes again, as Dapr's does


def test_response_metadata_in_any_script_reaches_the_headers_as_utf8(api: Api) -> None:
    key = "notes/✓ ünïcode.txt"  # S3 answers `create` with the key it was given
    created = api.bind("files", {"operation": "create", "data": "x", "metadata": {"key": key}})
    assert created.status_code == 200, created.text
    assert (b"metadata.key", key.encode()) in created.headers.raw


def test_response_metadata_can_neither_end_the_head_nor_add_a_header() -> None:
    # as Go's net/http writes header values; a key that is no header name is left out
    metadata = {"key": "a\r\nX-Injected: yes", "bad key:": "v", "statusCode": "200"}
    assert metadata_headers(Metadata(metadata)) == [
        "metadata.key: a  X-Injected: yes",
        "metadata.statusCode: 200",
    ]


def test_malformed_body_is_400(api: Api) -> None:
    response = api.http.post("/v1.0/bindings/jobs", content=b"{not json")
    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == "ERR_MALFORMED_REQUEST"
    assert body["message"].startswith("failed deserializing HTTP body: ")


@pytest.mark.parametrize(
    ("name", "request_body", "message"),
    [
        (
            "nope",
            {"operation": "create"},
            "error invoking output binding nope: couldn't find output binding nope",
        ),
        (
            "jobs",
            {"data": "x"},
            "error invoking output binding jobs: operation field is missing from request",
        ),
        (
            "jobs",
            {"operation": "get"},
            "error invoking output binding jobs: binding jobs does not support operation get. "
            "supported operations:create",
        ),
    ],
)
def test_request_mistakes_are_500_with_daprs_messages(
    api: Api, name: str, request_body: dict[str, Any], message: str
) -> None:
    response = api.bind(name, request_body)
    assert response.status_code == 500
    assert response.json() == {"errorCode": "ERR_INVOKE_OUTPUT_BINDING", "message": message}


def test_binding_failure_is_500(api: Api) -> None:
    response = api.bind("files", {"operation": "get", "metadata": {"key": "missing.txt"}})
    assert response.status_code == 500
    body = response.json()
    assert body["errorCode"] == "ERR_INVOKE_OUTPUT_BINDING"
    assert body["message"].startswith("error invoking output binding files: ")


def test_health_and_metadata(api: Api) -> None:
    assert api.http.get("/v1.0/healthz").status_code == 204
    assert api.http.get("/v1.0/healthz/outbound").status_code == 204  # DaprClient() probes it
    metadata = api.http.get("/v1.0/metadata").json()
    assert metadata["id"] == "portabind"
    assert metadata["appConnectionProperties"] == {
        "protocol": "http",
        "channelAddress": "127.0.0.1",
    }
    assert {(c["name"], c["type"], c["version"]) for c in metadata["components"]} == {
        ("jobs", "bindings.aws.sqs", "v1"),
        ("files", "bindings.aws.s3", "v1"),
    }
    abilities = {c["name"]: c["capabilities"] for c in metadata["components"]}
    assert abilities == {
        "jobs": ["INPUT_BINDING", "OUTPUT_BINDING"],
        "files": ["INPUT_BINDING", "OUTPUT_BINDING"],
    }


# -- the http binding: response metadata on success and on errors -----------------------


@pytest.fixture
def web(tmp_path: Path, httpserver: HTTPServer) -> Iterator[tuple[httpx.Client, HTTPServer]]:
    """The API serving an http output `web` aimed at a local server."""
    (tmp_path / "web.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: web\nspec:\n"
        "  type: bindings.http\n  version: v1\n  metadata:\n"
        f"    - name: url\n      value: {httpserver.url_for('/')}\n"
    )
    runtime = Runtime(load_components(tmp_path))
    server = DaprApi(runtime, free_port())
    server.start()
    try:
        with httpx.Client(base_url=server.address, timeout=30) as client:
            yield client, httpserver
    finally:
        server.stop()
        runtime.close()


def test_an_error_keeps_the_response_metadata_headers(
    web: tuple[httpx.Client, HTTPServer],
) -> None:
    client, target = web
    target.expect_request("/missing").respond_with_data("gone", status=404)
    answer = client.post(
        "/v1.0/bindings/web", json={"operation": "get", "metadata": {"path": "/missing"}}
    )
    assert answer.status_code == 500
    assert answer.json()["errorCode"] == "ERR_INVOKE_OUTPUT_BINDING"
    assert answer.headers["metadata.statusCode"] == "404"  # daprd sends it with the error


def test_a_response_with_metadata_and_no_data_is_200_not_204(
    web: tuple[httpx.Client, HTTPServer],
) -> None:
    client, target = web
    target.expect_request("/empty").respond_with_data("", status=200)
    answer = client.post(
        "/v1.0/bindings/web", json={"operation": "get", "metadata": {"path": "/empty"}}
    )
    assert answer.status_code == 200
    assert answer.content == b""
    assert answer.headers["metadata.statusCode"] == "200"


# -- the door: API token ------------------------------------------------------------------


@pytest.fixture
def guarded(tmp_path: Path, write_component: Callable[..., Path]) -> Iterator[httpx.Client]:
    """The API with DAPR_API_TOKEN `s3cret` over one (never called) SQS component."""
    write_component(tmp_path, "jobs", "bindings.aws.sqs", queueName="jobs")
    runtime = Runtime(load_components(tmp_path))
    server = DaprApi(runtime, free_port(), ApiConfig(api_token="s3cret"))
    server.start()
    try:
        with httpx.Client(base_url=server.address, timeout=30) as client:
            yield client
    finally:
        server.stop()
        runtime.close()


@pytest.mark.parametrize("token", [None, "wrong"])
def test_without_the_api_token_every_route_but_health_is_401(
    guarded: httpx.Client, token: str | None
) -> None:
    headers = {"dapr-api-token": token} if token else {}
    refused = guarded.post(
        "/v1.0/bindings/jobs", json={"operation": "create", "data": "x"}, headers=headers
    )
    assert refused.status_code == 401
    assert refused.text == "invalid api token\n"
    assert guarded.get("/v1.0/metadata", headers=headers).status_code == 401
    assert guarded.get("/v1.0/healthz", headers=headers).status_code == 204
    assert guarded.get("/v1.0/healthz/outbound", headers=headers).status_code == 204


def test_with_the_api_token_the_request_goes_through(guarded: httpx.Client) -> None:
    answer = guarded.get("/v1.0/metadata", headers={"dapr-api-token": "s3cret"})
    assert answer.status_code == 200
    assert answer.json()["components"][0]["name"] == "jobs"


# -- malformed requests: always a 4xx answer, never a dropped connection ------------------


@pytest.fixture
def raw(tmp_path: Path, write_component: Callable[..., Path]) -> Iterator[tuple[int, DaprApi]]:
    """The API with a 1 MB body limit and a 0.5 s idle timeout (the tests wait it out); the
    SQS component is never reached (every request here fails before)."""
    write_component(tmp_path, "jobs", "bindings.aws.sqs", queueName="jobs")
    runtime = Runtime(load_components(tmp_path))
    port = free_port()
    server = DaprApi(runtime, port, ApiConfig(max_request_bytes=1 << 20, idle_timeout=0.5))
    server.start()
    try:
        yield port, server
    finally:
        server.stop()
        runtime.close()


def exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes; return the server's first response (head and body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := connection.recv(65536)):
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        lengths = [
            line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        ]
        length = int(lengths[0].split(b":")[1]) if lengths else 0
        while len(body) < length and (chunk := connection.recv(65536)):
            body += chunk
    return head + b"\r\n\r\n" + body


def post(body: bytes, *, length: str | None = None) -> bytes:
    size = str(len(body)) if length is None else length
    return (
        b"POST /v1.0/bindings/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {size}\r\n\r\n".encode()
        + body
    )


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def deep(levels: int) -> bytes:
    return b'{"operation": "create", "data": ' + b"[" * levels + b"]" * levels + b"}"


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (post(b"{}", length="abc"), 400),
        (post(b"{}", length="-1"), 400),
        (post(b"{}", length="1000000000000000"), 400),  # over the limit: refused unread
        (post(b"x" * (2 << 20)), 400),  # 2 MB against the 1 MB limit
        (post(deep(2000)), 400),  # deeper than Python's parser goes
        (post(b'{"operation": "create", "data": ' + b"9" * 400 + b"}"), 400),  # not a float64
        (post(b'{"operation": "create", "data": ' + b"9" * 5000 + b"}"), 400),
        (post(b'{"operation": "create", "data": NaN}'), 400),
        (post(b"\xff\xfe"), 400),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET /v1.0/healthz HTTP/2.0\r\n\r\n", 505),
        (b"GET /v1.0/healthz HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET /v1.0/healthz HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 101 + b"\r\n", 431),
        (b"GET /v1.0/healthz HTTP/1.1\r\nX-Long: " + b"x" * 70000 + b"\r\n\r\n", 431),
        (b"POST /v1.0/bindings/jobs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"GET /v1.0/bindings/jobs HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"GET /v1.0/nothing HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    ],
    ids=[
        "length-abc",
        "length-negative",
        "length-huge",
        "body-over-limit",
        "json-2000-deep",
        "integer-400-digits",
        "integer-5000-digits",
        "nan",
        "not-utf8",
        "bad-request-line",
        "http-2",
        "header-without-colon",
        "too-many-headers",
        "header-too-long",
        "bad-chunk",
        "wrong-method",
        "unknown-route",
    ],
)
def test_a_malformed_request_gets_a_4xx_answer(
    raw: tuple[int, DaprApi], request_bytes: bytes, expected: int
) -> None:
    answer = exchange(raw[0], request_bytes)
    assert answer.startswith(b"HTTP/1."), answer[:200]
    assert status(answer) == expected, answer[:300]
    if expected == 400 and b"application/json" in answer:
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["errorCode"] == "ERR_MALFORMED_REQUEST"


def test_a_chunked_body_is_read(raw: tuple[int, DaprApi]) -> None:
    body = b'{"operation": "frob"}'
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    answer = exchange(
        raw[0],
        b"POST /v1.0/bindings/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked,
    )
    assert status(answer) == 500
    assert b"does not support operation frob" in answer  # the body reached the binding check


def test_header_names_match_in_any_case_and_the_first_of_a_repeated_one_counts(
    raw: tuple[int, DaprApi],
) -> None:
    body = b'{"operation": "frob"}'
    answer = exchange(
        raw[0],
        b"POST /v1.0/bindings/jobs HTTP/1.1\r\nHOST: x\r\n"
        + f"CONTENT-LENGTH: {len(body)}\r\ncontent-length: 999\r\n\r\n".encode()
        + body,
    )
    assert status(answer) == 500
    assert b"does not support operation frob" in answer


def test_a_silent_connection_is_closed_after_the_idle_timeout(raw: tuple[int, DaprApi]) -> None:
    with socket.create_connection(("127.0.0.1", raw[0]), timeout=10) as connection:
        connection.sendall(post(b'{"operation"', length="100"))  # half a request
        started = time.monotonic()
        assert connection.recv(1024) == b""  # closed by the server
        assert time.monotonic() - started < 5


def test_connections_are_served_by_a_bounded_number_of_threads(
    raw: tuple[int, DaprApi],
) -> None:
    port = raw[0]
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_CONNECTIONS * 2)]
    try:
        for connection in idle:
            connection.sendall(b"GET /v1.0/healthz HTTP/1.1\r\n")  # and then nothing
        time.sleep(0.5)
        assert threading.active_count() <= before + MAX_CONNECTIONS
        # Once the idle ones time out, a new client is served.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            assert client.get("/v1.0/healthz").status_code == 204
    finally:
        for connection in idle:
            connection.close()
