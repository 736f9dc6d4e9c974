"""Dapr's output binding HTTP API as `portabind run` serves it, called with a real HTTP client
against real bindings on moto (dapr-bindings.md §1.2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import httpx
import pytest

from portabind.adapters.local.dapr_api import DaprApi
from portabind.adapters.local.emulators import free_port
from portabind.tooling.project import load_components
from portabind.registry import binding_for
from portabind.runtime import Runtime

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from portabind.adapters.local.emulators.aws import MotoEmulator


class Api:
    def __init__(self, url: str, moto: MotoEmulator, queue: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        self.sqs = boto3.client(
            "sqs",
            endpoint_url=moto.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
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
    metadata = api.http.get("/v1.0/metadata").json()
    assert {(c["name"], c["type"]) for c in metadata["components"]} == {
        ("jobs", "bindings.aws.sqs"),
        ("files", "bindings.aws.s3"),
    }
