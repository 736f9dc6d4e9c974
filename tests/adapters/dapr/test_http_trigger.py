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
from tests.adapters.dapr.shop import component, value, write_project
from tests.helpers import portabind, serving

if TYPE_CHECKING:
    from pathlib import Path

APP = """from portabind import App

app = App()


@app.binding("web")
def on_request(event):
    return {"method": event.metadata["method"], "body": event.json()}
"""


def build(tmp_path: Path, port: int) -> tuple[Path, str]:
    web = component(
        "web",
        "bindings.http",
        value("url", "http://unused.invalid"),
        annotations={"portabind.io/trigger": "true", "portabind.io/port": str(port)},
    )
    root = write_project(tmp_path / "site", [web], APP)
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


def test_the_entrypoint_answers_the_trigger_with_the_handlers_result(tmp_path: Path) -> None:
    port = free_port()
    out, _ = build(tmp_path, port)
    deployment = yaml.safe_load((out / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    app_port = free_port()
    command = [sys.executable, *container["command"][1:]]
    command[command.index("--port") + 1] = str(app_port)
    with serving(command, port, tmp_path / "app.log", cwd=out, env={"PATH": "/usr/bin:/bin"}):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/web", b'{"n": 1}', method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read()) == {"method": "POST", "body": {"n": 1}}
