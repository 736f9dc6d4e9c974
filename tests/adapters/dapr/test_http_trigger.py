"""An input Dapr cannot deliver, the HTTP trigger: built as portabind's own listener in the
container (`--listen`), listening on every address there and reached through a Service of its
own; the entrypoint run as the image runs it answers a request with the handler's result."""

from __future__ import annotations

import json
import sys
import urllib.request
from typing import TYPE_CHECKING

import kubernetes_validate
import yaml

from portabind.adapters.local.emulators import free_port
from tests.adapters.dapr.shop import component, constant_retries, value, write_project
from tests.helpers import portabind, serving

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from pathlib import Path

APP = """from portabind import App

app = App()


@app.binding("web")
def on_request(event):
    return {"method": event.metadata["method"], "body": event.json()}
"""


FLAKY_APP = """from portabind import App

app = App()
calls = []


@app.binding("web")
def on_request(event):
    calls.append(event)
    if len(calls) == 1:
        raise RuntimeError("the first call fails")
    return {"calls": len(calls)}
"""
RETRY_TWICE = constant_retries("web-policies", "web", "inbound", duration="10ms", retries=2)


def build(
    tmp_path: Path, port: int, app: str = APP, resiliency: list[dict[str, object]] | None = None
) -> tuple[Path, str]:
    web = component(
        "web",
        "bindings.http",
        value("url", "http://unused.invalid"),
        annotations={"portabind.io/trigger": "true", "portabind.io/port": str(port)},
    )
    root = write_project(tmp_path / "site", [web, *(resiliency or [])], app)
    out = tmp_path / "out"
    result = portabind("build", root, "--target", "dapr", "--out", out)
    assert result.returncode == 0, result.stderr
    return out, result.stderr


def test_the_http_trigger_runs_as_portabinds_listener_behind_a_service(tmp_path: Path) -> None:
    out, said = build(tmp_path, 8080)
    assert "Dapr has no input for bindings.http: portabind's own listener takes it" in said
    deployment = yaml.safe_load((out / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"][-2:] == ["--listen", "web"]
    assert {"name": "PORTABIND_LISTEN_HOST", "value": "0.0.0.0"} in container["env"]
    assert {"containerPort": 8080} in container["ports"]
    (service,) = yaml.safe_load_all((out / "services.yaml").read_text())
    assert service["spec"] == {
        "selector": {"app": "site"},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
    }
    kubernetes_validate.validate(service, "1.33", strict=True)


def serve_built(out: Path, port: int, log: Path) -> AbstractContextManager[object]:
    """The built entrypoint as the Deployment runs it, on a free app port."""
    deployment = yaml.safe_load((out / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    command = [sys.executable, *container["command"][1:]]
    command[command.index("--port") + 1] = str(free_port())
    return serving(command, port, log, cwd=out, env={"PATH": "/usr/bin:/bin"})


def post(url: str, body: bytes) -> object:
    request = urllib.request.Request(url, body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_failing_request_is_retried_under_the_inbound_resiliency_policy(
    tmp_path: Path,
) -> None:
    port = free_port()
    out, _ = build(tmp_path, port, FLAKY_APP, [RETRY_TWICE])
    with serve_built(out, port, tmp_path / "app.log"):
        assert post(f"http://127.0.0.1:{port}/web", b"{}") == {"calls": 2}


def test_the_entrypoint_answers_the_trigger_with_the_handlers_result(tmp_path: Path) -> None:
    port = free_port()
    out, _ = build(tmp_path, port)
    with serve_built(out, port, tmp_path / "app.log"):
        assert post(f"http://127.0.0.1:{port}/web", b'{"n": 1}') == {
            "method": "POST",
            "body": {"n": 1},
        }
