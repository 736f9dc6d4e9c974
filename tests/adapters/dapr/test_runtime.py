"""The dapr build's entrypoint, run as the image runs it (`python -m
portabind.adapters.dapr.runtime` in OUT, its vendored portabind first on the path), driven the
way daprd drives an app over the HTTP app protocol, and over the gRPC one by the runner's own
client of it (`portabind run --app-protocol grpc`'s); its outputs reach a fake sidecar that
checks the request body daprd would receive."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import venv
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from portabind.adapters.dapr.build import APP_PORT
from portabind.adapters.dapr.runtime import APP_PROTOCOLS, dapr_request_metadata, request_body
from portabind.adapters.local.app_channel import AppChannel, AppDeliveryFailed, connect
from portabind.adapters.local.emulators import free_port
from portabind.appprotocol import http_headers
from portabind.events import BindingEvent, Metadata
from portabind.tooling.project import load_project
from tests.adapters.dapr.shop import component, value, write_project
from tests.helpers import (
    PORTABIND,
    portabind,
    require_server,
    server_fixture,
    serving,
    wait_until,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class FakeSidecar:
    """daprd's `POST /v1.0/bindings/<name>`: records each request, answers 200 with one
    response metadata header, as daprd returns a binding's response. Also the service an
    output reaches in the round trip below."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        sidecar = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sidecar.requests.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("metadata.blobURL", "https://receiptsstore/receipts/x")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]


@pytest.fixture
def sidecar() -> Iterator[FakeSidecar]:
    fake = FakeSidecar()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def call(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> int:
    request = urllib.request.Request(url, body, headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except urllib.error.URLError:
        return 0


@pytest.fixture
def app_url(built: Path, sidecar: FakeSidecar, tmp_path: Path) -> Iterator[str]:
    """The entrypoint serving OUT, its sidecar the fake one."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "portabind.adapters.dapr.runtime", "--port", str(port)]
    environ = {"DAPR_HTTP_PORT": str(sidecar.port), "PATH": "/usr/bin:/bin"}
    with serving(
        command,
        port,
        tmp_path / "app.log",
        ready=lambda: call("OPTIONS", f"{url}/orders") != 0,
        cwd=built,
        env=environ,
    ):
        yield url


def test_daprd_finds_the_inputs_the_app_takes(app_url: str) -> None:
    assert call("OPTIONS", f"{app_url}/orders") == 200
    assert call("OPTIONS", f"{app_url}/tick") == 200
    assert call("OPTIONS", f"{app_url}/receipts") == 404  # an output: daprd delivers nothing


def test_an_event_reaches_the_handler_and_its_output_goes_through_the_sidecar(
    app_url: str, sidecar: FakeSidecar
) -> None:
    headers = http_headers({"messageId": "m-1", "queueName": "orders"})
    assert call("POST", f"{app_url}/orders", b'{"id": 5}', headers) == 200
    wait_until(lambda: len(sidecar.requests) == 1)
    # What daprd's Azure Blob Storage binding reads: portabind's `key` under Dapr's name.
    assert sidecar.requests == [
        (
            "/v1.0/bindings/receipts",
            {
                "operation": "create",
                "metadata": {"blobName": "receipts/5.json"},
                "data": {"order": 5},
            },
        )
    ]


def test_a_failing_handler_answers_500_so_daprd_retries(app_url: str, sidecar: FakeSidecar) -> None:
    assert call("POST", f"{app_url}/orders", b'{"id": 6, "fail": true}', http_headers({})) == 500
    assert sidecar.requests == []


def test_request_metadata_takes_daprs_names_unless_the_request_gives_them() -> None:
    blob = "bindings.azure.blobstorage"
    assert dapr_request_metadata(blob, {"key": "a.json"}) == {"blobName": "a.json"}
    assert dapr_request_metadata(blob, {"key": "a", "blobName": "b"}) == {
        "key": "a",
        "blobName": "b",
    }
    assert dapr_request_metadata("bindings.aws.s3", {"key": "a.json"}) == {"key": "a.json"}


def test_data_that_is_not_json_is_sent_as_a_json_string() -> None:
    assert json.loads(request_body("create", b"plain text", {})) == {
        "operation": "create",
        "metadata": {},
        "data": "plain text",
    }
    assert json.loads(request_body("get", b"", {"key": "k"})) == {
        "operation": "get",
        "metadata": {"key": "k"},
    }


TICKING_APP = """from portabind import App

app = App()


@app.binding("tick")
def on_tick(event):
    app.invoke_binding("hook", "post", data={"ticked": True}, metadata={"path": "/received"})
"""


def round_trip(
    tmp_path: Path, sidecar: FakeSidecar, app_protocol: str, python: Callable[[Path], Path]
) -> tuple[str, Any]:
    """The round trip a cluster performs, with `portabind run --app-port` as daprd: it loads
    the components, delivers the cron tick over the app protocol the build chose to the
    built entrypoint (run by `python(OUT)`), whose output call comes back through run's
    `/v1.0/bindings` to the http binding's service (here the recording server). Returns
    the request that service received."""
    documents = [
        component("tick", "bindings.cron", value("schedule", "@every 1s")),
        component("hook", "bindings.http", value("url", f"http://127.0.0.1:{sidecar.port}")),
    ]
    root = write_project(tmp_path / "ticker", documents, TICKING_APP)
    out = tmp_path / "out"
    built = portabind(
        "build", root, "--target", "dapr", "--out", out, "--app-protocol", app_protocol
    )
    assert built.returncode == 0, built.stderr
    app_port, dapr_port = free_port(), free_port()
    entrypoint = [str(python(out)), *image_command(out, app_port)[1:]]
    daprd = [str(PORTABIND), "run", str(root), "--app-port", str(app_port)]
    daprd += ["--app-protocol", app_protocol]
    daprd += ["--dapr-http-port", str(dapr_port), "--dapr-grpc-port", str(free_port())]
    environ = {"DAPR_HTTP_PORT": str(dapr_port), "PATH": "/usr/bin:/bin"}
    with (
        serving(entrypoint, app_port, tmp_path / "app.log", cwd=out, env=environ),
        serving(daprd, dapr_port, tmp_path / "daprd.log", cwd=tmp_path),
    ):
        wait_until(lambda: bool(sidecar.requests), timeout=20)
    return sidecar.requests[0]


@pytest.mark.parametrize("app_protocol", APP_PROTOCOLS)
def test_portabind_run_as_the_sidecar_delivers_a_tick_and_carries_the_output(
    tmp_path: Path, sidecar: FakeSidecar, app_protocol: str
) -> None:
    received = round_trip(tmp_path, sidecar, app_protocol, lambda _out: Path(sys.executable))
    assert received == ("/received", {"ticked": True})


@server_fixture("dapr-image-venv", scope="session")
def image_python(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Path]:
    """The python of a fresh venv holding only what OUT's requirements.txt lists (what the
    Dockerfile's `pip install -r` gives the image), one venv per distinct file."""
    root = tmp_path_factory.mktemp("dapr-image-venv")
    made: dict[str, Path] = {}

    def python(out: Path) -> Path:
        requirements = (out / "requirements.txt").read_text()
        if requirements not in made:
            home = root / f"venv-{len(made)}"
            venv.create(home, with_pip=True)
            (home / "requirements.txt").write_text(requirements)
            pip = [str(home / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
            installed = subprocess.run(
                [*pip, "install", "-q", "-r", str(home / "requirements.txt")],
                capture_output=True,
                text=True,
                check=False,
            )
            if installed.returncode:
                require_server(
                    "dapr-image-venv",
                    f"pip install failed:\n{installed.stderr[-2000:]}",
                    "network access to PyPI (pip installs the image's requirements)",
                )
            made[requirements] = home / "bin" / "python"
        return made[requirements]

    return python


# A venv install takes minutes on a cold pip cache.
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("app_protocol", APP_PROTOCOLS)
def test_the_images_requirements_alone_carry_the_round_trip(
    tmp_path: Path, sidecar: FakeSidecar, app_protocol: str, image_python: Callable[[Path], Path]
) -> None:
    """The image installs grpcio and `dapr` only for the gRPC build: each build's own
    requirements are enough for its entrypoint."""
    received = round_trip(tmp_path, sidecar, app_protocol, image_python)
    assert received == ("/received", {"ticked": True})


@pytest.mark.parametrize("app_protocol", APP_PROTOCOLS)
def test_sigterm_stops_the_entrypoint_cleanly(
    built: Path, tmp_path: Path, app_protocol: str
) -> None:
    """Kubernetes stops a pod with SIGTERM: the entrypoint stops serving and exits 0."""
    port = free_port()
    command = [sys.executable, "-m", "portabind.adapters.dapr.runtime", "--port", str(port)]
    command += ["--app-protocol", app_protocol]
    with serving(command, port, tmp_path / "app.log", cwd=built, env={"PATH": "/usr/bin"}) as app:
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=10) == 0


def image_command(out: Path, port: int) -> list[str]:
    """The container's command in OUT's Deployment, on `port` instead of the pod's."""
    deployment = yaml.safe_load((out / "deployment.yaml").read_text())
    command: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    return [str(port) if word == str(APP_PORT) else word for word in command]


APP_TOKEN = "app-token-from-the-sidecar"


@pytest.fixture
def grpc_app(project: Path, sidecar: FakeSidecar, tmp_path: Path) -> Iterator[int]:
    """The shop built with `--app-protocol grpc`, its entrypoint serving OUT with an app
    token, its sidecar the fake one; yields the app port."""
    out = tmp_path / "grpc"
    result = portabind("build", project, "--target", "dapr", "--out", out, "--app-protocol", "grpc")
    assert result.returncode == 0, result.stderr
    port = free_port()
    environ = {"DAPR_HTTP_PORT": str(sidecar.port), "APP_API_TOKEN": APP_TOKEN, "PATH": "/usr/bin"}
    command = [sys.executable, *image_command(out, port)[1:]]
    with serving(command, port, tmp_path / "app.log", cwd=out, env=environ):
        yield port


@pytest.fixture
def daprd(grpc_app: int) -> Iterator[AppChannel]:
    """The runner's gRPC app channel to the entrypoint, as daprd's."""
    channel = connect("grpc", grpc_app, APP_TOKEN)
    yield channel
    channel.close()


def test_daprd_lists_the_grpc_apps_inputs(project: Path, daprd: AppChannel) -> None:
    inputs = load_project(project).components.bindings()
    assert daprd.subscriptions(inputs) == ["orders", "tick"]


def test_a_grpc_event_reaches_the_handler_and_its_output_goes_through_the_sidecar(
    project: Path, daprd: AppChannel, sidecar: FakeSidecar
) -> None:
    orders = load_project(project).components.get("orders")
    metadata = Metadata({"messageId": "m-1", "queueName": "orders"})
    daprd.deliver(orders, BindingEvent("orders", b'{"id": 7}', metadata))
    assert sidecar.requests == [
        (
            "/v1.0/bindings/receipts",
            {
                "operation": "create",
                "metadata": {"blobName": "receipts/7.json"},
                "data": {"order": 7},
            },
        )
    ]


def test_a_failing_grpc_handler_is_not_acknowledged(
    project: Path, daprd: AppChannel, sidecar: FakeSidecar
) -> None:
    orders = load_project(project).components.get("orders")
    with pytest.raises(AppDeliveryFailed, match="INTERNAL: the handler failed"):
        daprd.deliver(orders, BindingEvent("orders", b'{"id": 8, "fail": true}', Metadata()))
    assert sidecar.requests == []


def test_the_grpc_app_refuses_a_caller_without_its_token(
    project: Path, grpc_app: int, sidecar: FakeSidecar
) -> None:
    orders = load_project(project).components.get("orders")
    stranger = connect("grpc", grpc_app, None)
    try:
        with pytest.raises(AppDeliveryFailed, match="UNAUTHENTICATED"):
            stranger.deliver(orders, BindingEvent("orders", b'{"id": 9}', Metadata()))
    finally:
        stranger.close()
    assert sidecar.requests == []
