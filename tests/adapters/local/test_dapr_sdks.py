"""`portabind run` with Dapr's official SDKs as the other side: the Python SDK's `DaprClient`
(gRPC `invoke_binding`, its HTTP health probe, `get_metadata`), the JavaScript SDK (which
speaks HTTP), a `dapr-ext-grpc` App and a FastAPI app (`dapr-ext-fastapi`) receiving input
events. The outputs are real bindings: Redis (the machine's), and S3, a storage queue and a
Pub/Sub topic on the emulators `--emulate` starts."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response  # FastAPI reads the route's annotations

from portabind.adapters.local.emulators import EmulatorUnavailable, free_port, port_accepts
from portabind.adapters.local.runner import RunOptions, run
from portabind.tooling.project import load_project
from tests.helpers import require_server, server_fixture

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dapr.clients import DaprClient

ROOT = Path(__file__).resolve().parents[3]
NODE_SDK = ROOT / "tools" / "node_modules" / "@dapr" / "dapr"

#: Records what the in-process handlers receive, so a test sees what an output delivered.
RECORDING_APP = """\
from portabind import App, BindingEvent

app = App()
received: list[tuple[str, bytes]] = []


@app.binding("queue")
def on_queue(event: BindingEvent) -> None:
    received.append(("queue", event.data))


@app.binding("topic")
def on_topic(event: BindingEvent) -> None:
    received.append(("topic", event.data))
"""


def require_redis() -> None:
    if not port_accepts(6379):
        require_server("Redis", "nothing answers on 127.0.0.1:6379", "redis-server --daemonize yes")


def component(directory: Path, name: str, type_: str, **metadata: str) -> None:
    items = "".join(f"    - name: {k}\n      value: '{v}'\n" for k, v in metadata.items())
    (directory / f"{name}.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\n"
        f"metadata:\n  name: {name}\nspec:\n  type: {type_}\n  version: v1\n"
        f"  metadata:\n{items}"
    )


class Running:
    """A `portabind run` on a thread, with its ports; `stop()` ends it."""

    def __init__(self, project_dir: Path, **changes: Any) -> None:
        self.options = RunOptions(
            **{
                "emulate": True,
                "sends": [],
                "exit_after": None,
                "dapr_port": free_port(),
                "app_port": None,
                "dapr_grpc_port": free_port(),
                **changes,
            }
        )
        self.project = load_project(project_dir, app_optional=True)
        self._stop = threading.Event()
        self.result: list[int | BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 120
        while not (
            port_accepts(self.options.dapr_port)
            and self.options.dapr_grpc_port is not None
            and port_accepts(self.options.dapr_grpc_port)
        ):
            if self.result:
                self._raise()
            assert time.monotonic() < deadline, "portabind run did not start"
            time.sleep(0.05)

    def _run(self) -> None:
        try:
            self.result.append(run(self.project, self.options, stop=self._stop))
        except BaseException as error:  # handed to the test thread
            self.result.append(error)

    def _raise(self) -> None:
        error = self.result[0]
        if isinstance(error, EmulatorUnavailable):
            require_server("an emulator", str(error), "make tools")
        if isinstance(error, BaseException):
            raise error

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.options.dapr_grpc_port}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        if self.result:
            self._raise()

    def handled(self) -> list[tuple[str, bytes]]:
        received: list[tuple[str, bytes]] = self.project.app.handlers["queue"].function.__globals__[
            "received"
        ]
        return received


@server_fixture("portabind run --emulate", scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One run serving a Redis output, an S3 bucket, a storage queue and a Pub/Sub topic
    (the last two also as inputs, recorded by the in-process app)."""
    require_redis()
    directory = tmp_path_factory.mktemp("sdk")
    components = directory / "components"
    components.mkdir()
    suffix = uuid.uuid4().hex[:8]
    component(components, "cache", "bindings.redis", redisHost="127.0.0.1:6379")
    component(components, "files", "bindings.aws.s3", bucket=f"pb-sdk-{suffix}", region="us-east-1")
    component(
        components,
        "queue",
        "bindings.azure.storagequeues",
        accountName="devstoreaccount1",
        accountKey="a2V5",
        queueName=f"pb-sdk-{suffix}",
    )
    component(
        components,
        "topic",
        "bindings.gcp.pubsub",
        projectId="pb-sdk",
        topic=f"pb-sdk-{suffix}",
        subscription=f"pb-sdk-{suffix}",
    )
    (directory / "app.py").write_text(RECORDING_APP)
    running = Running(directory)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def dapr_client(
    sidecar: Running, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., DaprClient]]:
    """`dapr_client(token=None)`: a DaprClient for `sidecar`, built as an app builds it: the
    HTTP port from DAPR_HTTP_PORT (its health probe), the token from DAPR_API_TOKEN."""
    from dapr.clients import DaprClient

    clients: list[DaprClient] = []

    def make(running: Running = sidecar, token: str | None = None) -> DaprClient:
        monkeypatch.setenv("DAPR_HTTP_PORT", str(running.options.dapr_port))
        monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "5")
        if token is None:
            monkeypatch.delenv("DAPR_API_TOKEN", raising=False)
        else:
            monkeypatch.setenv("DAPR_API_TOKEN", token)
        client = DaprClient(address=running.grpc_address)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_grpc_invoke_binding_redis(dapr_client: Callable[..., DaprClient]) -> None:
    client = dapr_client()
    key = f"pb-sdk-{uuid.uuid4().hex}"
    created = client.invoke_binding("cache", "create", b"hello", {"key": key})
    assert created.data == b""
    fetched = client.invoke_binding("cache", "get", binding_metadata={"key": key})
    assert fetched.data == b"hello"
    client.invoke_binding("cache", "delete", binding_metadata={"key": key})


def test_grpc_invoke_binding_s3_with_response_metadata(
    dapr_client: Callable[..., DaprClient],
) -> None:
    client = dapr_client()
    created = client.invoke_binding("files", "create", b"receipt", {"key": "a/1.txt"})
    assert json.loads(created.data)["location"].endswith("/a/1.txt")
    assert created.binding_metadata["key"] == "a/1.txt"
    assert created.headers["metadata.key"] == ["a/1.txt"]  # daprd's response headers
    assert client.invoke_binding("files", "get", binding_metadata={"key": "a/1.txt"}).data == (
        b"receipt"
    )


@pytest.mark.parametrize("name", ["queue", "topic"])
def test_grpc_invoke_binding_reaches_queue_and_topic(
    sidecar: Running, dapr_client: Callable[..., DaprClient], name: str
) -> None:
    payload = f"order-{uuid.uuid4().hex}".encode()
    dapr_client().invoke_binding(name, "create", payload)
    wait_for(lambda: (name, payload) in sidecar.handled())


def test_a_binding_failure_is_a_grpc_error_with_daprs_message(
    dapr_client: Callable[..., DaprClient],
) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        dapr_client().invoke_binding("files", "get", binding_metadata={"key": "missing.txt"})
    assert failure.value.code() == grpc.StatusCode.INTERNAL
    assert "error invoking output binding files: " in str(failure.value.details())


def test_get_metadata_over_grpc(sidecar: Running, dapr_client: Callable[..., DaprClient]) -> None:
    metadata = dapr_client().get_metadata()
    assert metadata.application_id == sidecar.project.directory.name
    types = {c.name: (c.type, c.capabilities) for c in metadata.registered_components}
    assert types["cache"] == ("bindings.redis", ["OUTPUT_BINDING"])
    assert types["queue"] == ("bindings.azure.storagequeues", ["INPUT_BINDING", "OUTPUT_BINDING"])


def test_other_dapr_apis_are_unimplemented(dapr_client: Callable[..., DaprClient]) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        dapr_client().get_state("statestore", "key")
    assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_javascript_sdk_over_http(sidecar: Running, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not NODE_SDK.is_dir():
        require_server("the Dapr JavaScript SDK", "node or @dapr/dapr is missing", "make tools")
    key = f"pb-js-{uuid.uuid4().hex}"
    script = tmp_path / "invoke.js"
    script.write_text(
        "const { DaprClient, CommunicationProtocolEnum } = require(process.argv[2]);\n"
        "(async () => {\n"
        "  const client = new DaprClient({ daprHost: '127.0.0.1', daprPort: process.argv[3],\n"
        "    communicationProtocol: CommunicationProtocolEnum.HTTP });\n"
        "  const key = process.argv[4];\n"
        "  await client.binding.send('cache', 'create', { from: 'js' }, { key });\n"
        "  const got = await client.binding.send('cache', 'get', undefined, { key });\n"
        "  console.log(JSON.stringify(got));\n"
        "  await client.stop();\n"
        "})().catch((error) => { console.error(error); process.exit(1); });\n"
    )
    result = subprocess.run(
        [node, str(script), str(NODE_SDK), str(sidecar.options.dapr_port), key],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"from": "js"}


# -- token on ---------------------------------------------------------------------------


@server_fixture("redis", scope="module")
def guarded_sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A run with DAPR_API_TOKEN `s3cret`, serving only the Redis output."""
    require_redis()
    directory = tmp_path_factory.mktemp("guarded")
    (directory / "components").mkdir()
    component(directory / "components", "cache", "bindings.redis", redisHost="127.0.0.1:6379")
    running = Running(directory, emulate=False, api_token="s3cret")
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("token", [None, "wrong"])
def test_with_a_token_set_a_client_without_it_is_refused(
    guarded_sidecar: Running, dapr_client: Callable[..., DaprClient], token: str | None
) -> None:
    client = dapr_client(guarded_sidecar, token)  # the health probe passes: it is exempt
    with pytest.raises(grpc.RpcError) as failure:
        client.invoke_binding("cache", "get", binding_metadata={"key": "x"})
    assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_with_a_token_set_a_client_with_it_goes_through(
    guarded_sidecar: Running, dapr_client: Callable[..., DaprClient]
) -> None:
    client = dapr_client(guarded_sidecar, "s3cret")
    key = f"pb-sdk-{uuid.uuid4().hex}"
    client.invoke_binding("cache", "create", b"ok", {"key": key})
    assert client.invoke_binding("cache", "get", binding_metadata={"key": key}).data == b"ok"
    with httpx.Client(base_url=f"http://127.0.0.1:{guarded_sidecar.options.dapr_port}") as http:
        assert http.get("/v1.0/metadata", headers={"dapr-api-token": "s3cret"}).status_code == 200
        assert http.get("/v1.0/metadata").status_code == 401


# -- apps receiving input events --------------------------------------------------------


def sqs_project(directory: Path) -> Path:
    """A components directory and nothing else: an SQS input `orders` (1 s visibility, so a
    refused message comes back quickly); the app is another process."""
    components = directory / "components"
    components.mkdir()
    (components / "orders.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: orders\n"
        "  annotations:\n    portabind.io/visibilityTimeout: '1'\n"
        "spec:\n  type: bindings.aws.sqs\n  version: v1\n  metadata:\n"
        f"    - name: queueName\n      value: pb-app-{uuid.uuid4().hex[:8]}\n"
        "    - name: region\n      value: us-east-1\n"
        "    - name: direction\n      value: input, output\n"
    )
    return directory


@pytest.mark.server(name="moto")  # the run starts moto for its SQS input
def test_a_dapr_ext_grpc_app_receives_events_and_a_failure_is_redelivered(
    tmp_path: Path,
) -> None:
    from dapr.ext.grpc import App, BindingRequest

    app = App()
    calls: list[tuple[bytes, dict[str, str], dict[str, list[str]]]] = []

    @app.binding("orders")
    def on_order(request: BindingRequest) -> None:
        calls.append((request.data, dict(request.binding_metadata), dict(request.metadata)))
        if len(calls) == 1:
            raise RuntimeError("the first delivery fails")

    port = free_port()
    server = threading.Thread(target=app.run, args=(port,), daemon=True)
    server.start()
    try:
        wait_for(lambda: port_accepts(port))
        running = Running(
            sqs_project(tmp_path),
            app_port=port,
            app_protocol="grpc",
            app_api_token="app-s3cret",
            sends=[("orders", b'{"id": 7}')],
            exit_after=2,  # the first delivery fails, the second is acknowledged
        )
        wait_for(lambda: bool(running.result), timeout=90)
        running.stop()
    finally:
        app.stop()
    assert running.result == [0]
    assert [data for data, _, _ in calls] == [b'{"id": 7}', b'{"id": 7}']
    _, event_metadata, call_metadata = calls[1]
    assert "messageId" in event_metadata
    assert call_metadata["dapr-api-token"] == ["app-s3cret"]  # APP_API_TOKEN reaches the app


@pytest.mark.server(name="moto")  # the run starts moto for its SQS input
def test_a_fastapi_app_receives_events_over_http(tmp_path: Path) -> None:
    from dapr.ext.fastapi import DaprApp

    web = FastAPI()
    DaprApp(web)  # what a Dapr FastAPI app does; input bindings are plain routes
    seen: list[tuple[bytes, dict[str, str]]] = []

    @web.post("/orders")
    async def orders(request: Request) -> Response:
        seen.append((await request.body(), dict(request.headers)))
        return Response(status_code=500 if len(seen) == 1 else 200)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(web, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: port_accepts(port))
        running = Running(
            sqs_project(tmp_path),
            app_port=port,
            app_api_token="app-s3cret",
            sends=[("orders", b'{"id": 8}')],
            exit_after=2,  # the first delivery fails, the second is acknowledged
        )
        wait_for(lambda: bool(running.result), timeout=90)
        running.stop()
    finally:
        server.should_exit = True
        thread.join(10)
    assert running.result == [0]
    assert [body for body, _ in seen] == [b'{"id": 8}', b'{"id": 8}']  # refused, then redelivered
    headers = seen[1][1]
    assert headers["content-type"] == "application/json"
    assert headers["dapr-api-token"] == "app-s3cret"
    assert "messageid" in headers
