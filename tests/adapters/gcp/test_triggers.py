"""`portabind build --target gcp` for cron (a Cloud Scheduler job calling an HTTP function)
and the HTTP trigger extension: the deploy manifest and script (run against a recording
`gcloud`), and main.py served by functions-framework (test client and a real process)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from portabind.adapters.gcp import build as gcp_build
from portabind.errors import UserError
from portabind.tooling.project import load_project
from tests.helpers import http_status

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

HANDLERS = """
@app.binding("tick")
def tick(event: BindingEvent) -> None:
    record(event)


@app.binding("api")
def api(event: BindingEvent) -> dict:
    record(event)
    order = event.json()
    if order.get("fail"):
        raise ValueError("refused")
    return {"accepted": order["id"]}
"""


def component(name: str, type_: str, annotations: dict[str, str], **values: str) -> Any:
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": name,
            "annotations": {f"portabind.io/{k}": v for k, v in annotations.items()},
        },
        "spec": {
            "type": type_,
            "version": "v1",
            "metadata": [{"name": k, "value": v} for k, v in values.items()],
        },
    }


def project_dir(tmp_path: Path, app: str, **overrides: Any) -> Path:
    documents = {
        "tick": component(
            "tick",
            "bindings.cron",
            {"project": "orders-demo", "region": "europe-west1"},
            schedule="CRON_TZ=Europe/Paris 0 */15 8-18 * * MON-FRI",
        ),
        "api": component(
            "api",
            "bindings.http",
            {"trigger": "true", "path": "/orders", "method": "POST", "authLevel": "anonymous"},
        ),
    }
    documents.update(overrides)
    root = tmp_path / "project"
    (root / "components").mkdir(parents=True)
    (root / "app.py").write_text(app)
    (root / "components" / "all.yaml").write_text(yaml.safe_dump_all(list(documents.values())))
    return root


@pytest.fixture
def out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recording_app: Callable[[str], str]
) -> Path:
    target = tmp_path / "out"
    gcp_build.build(load_project(project_dir(tmp_path, recording_app(HANDLERS))), target)
    monkeypatch.setenv("RECORD_PATH", str(tmp_path / "events.jsonl"))
    return target


def events(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def client(out: Path, target: str) -> Any:
    from functions_framework import create_app

    app = create_app(target, str(out / "main.py"), "http")  # type: ignore[no-untyped-call]
    return app.test_client()


def test_manifest_names_the_scheduler_job_and_the_http_functions(out: Path) -> None:
    manifest = yaml.safe_load((out / "deploy.yaml").read_text())
    functions = {f["name"]: f for f in manifest["functions"]}
    assert functions["tick"]["entryPoint"] == "on_tick"
    assert functions["tick"]["project"] == "orders-demo"
    assert functions["tick"]["trigger"] == {
        "type": "scheduler",
        "job": "tick",
        "schedule": "*/15 8-18 * * 1-5",
        "timeZone": "Europe/Paris",
        "target": "http",
        "httpMethod": "POST",
        "serviceAccount": None,
    }
    assert functions["api"]["trigger"] == {
        "type": "http",
        "path": "/orders",
        "methods": ["POST"],
        "allowUnauthenticated": True,
    }
    main = (out / "main.py").read_text()
    assert "@functions_framework.http\ndef on_tick(request):" in main
    assert "@functions_framework.http\ndef on_api(request):" in main
    subprocess.run(["sh", "-n", str(out / "deploy.sh")], check=True)


GCLOUD = """#!/bin/sh
# Records each call (one argument per line, calls separated by a blank line) and answers the
# queries deploy.sh makes, as gcloud would.
for arg in "$@"; do printf '%s\\n' "$arg" >> "$GCLOUD_LOG"; done
echo >> "$GCLOUD_LOG"
case "$*" in
  "functions describe"*) echo "https://tick-abc123-ew.a.run.app" ;;
  "projects describe"*) echo "123456789" ;;
  "config get-value project") echo "configured-project" ;;
  "scheduler jobs describe"*) exit 1 ;;
esac
"""


def test_deploy_script_deploys_then_creates_the_job(out: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gcloud").write_text(GCLOUD)
    (bin_dir / "gcloud").chmod(0o755)
    log = tmp_path / "gcloud.log"
    subprocess.run(
        ["sh", str(out / "deploy.sh")],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "GCLOUD_LOG": str(log)},
        check=True,
        timeout=60,
    )
    calls = [call.split("\n") for call in log.read_text().strip("\n").split("\n\n")]
    account = "123456789-compute@developer.gserviceaccount.com"
    url = "https://tick-abc123-ew.a.run.app"
    assert [
        "functions",
        "deploy",
        "tick",
        "--gen2",
        "--project=orders-demo",
        "--region=europe-west1",
        "--runtime=python312",
        f"--source={out}",
        "--entry-point=on_tick",
        "--trigger-http",
        "--no-allow-unauthenticated",
    ] in calls
    assert [
        "functions",
        "add-invoker-policy-binding",
        "tick",
        "--project=orders-demo",
        "--region=europe-west1",
        f"--member=serviceAccount:{account}",
    ] in calls
    assert [
        "scheduler",
        "jobs",
        "create",
        "http",
        "tick",
        "--project=orders-demo",
        "--location=europe-west1",
        "--schedule=*/15 8-18 * * 1-5",
        "--time-zone=Europe/Paris",
        f"--uri={url}",
        "--http-method=POST",
        f"--oidc-service-account-email={account}",
        f"--oidc-token-audience={url}",
    ] in calls
    api = next(c for c in calls if c[:3] == ["functions", "deploy", "api"])
    assert "--allow-unauthenticated" in api and "--trigger-http" in api
    assert not any(arg.startswith("--project") for arg in api)  # gcloud's own project


def test_scheduled_function_hands_the_handler_a_cron_event(out: Path, tmp_path: Path) -> None:
    reply = client(out, "on_tick").post(
        "/",
        headers={
            "X-CloudScheduler": "true",
            "X-CloudScheduler-JobName": "projects/orders-demo/locations/europe-west1/jobs/tick",
            "X-CloudScheduler-ScheduleTime": "2026-11-23T09:15:00Z",
        },
    )
    assert reply.status_code == 204
    assert client(out, "on_tick").get("/").status_code == 405  # only the job's POST fires
    (tick,) = events(tmp_path)
    assert tick["data"] == ""
    metadata = tick["metadata"]
    assert set(metadata) == {"timeZone", "readTimeUTC", "jobName", "scheduleTime"}
    assert metadata["timeZone"] == "Europe/Paris"
    assert metadata["readTimeUTC"].endswith("Z")
    assert datetime.fromisoformat(metadata["readTimeUTC"].replace("Z", "+00:00"))
    assert metadata["jobName"] == "projects/orders-demo/locations/europe-west1/jobs/tick"
    assert metadata["scheduleTime"] == "2026-11-23T09:15:00Z"


def test_http_function_answers_with_the_handler_result(out: Path, tmp_path: Path) -> None:
    http = client(out, "on_api")
    reply = http.post("/orders?dry=1", json={"id": 8}, headers={"Function-Execution-Id": "ex-1"})
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.get_json() == {"accepted": 8}
    (api,) = events(tmp_path)
    assert bytes.fromhex(api["data"]) == b'{"id": 8}'
    assert {k: api["metadata"][k] for k in ("method", "path", "query", "requestId")} == {
        "method": "POST",
        "path": "/orders",
        "query": "dry=1",
        "requestId": "ex-1",
    }
    assert api["metadata"]["Content-Type"] == "application/json"
    refused = http.get("/orders")
    assert (refused.status_code, refused.headers["Allow"]) == (405, "POST")
    assert http.post("/elsewhere", json={"id": 1}).status_code == 404
    assert http.post("/orders", json={"id": 9, "fail": True}).status_code == 500
    assert len(events(tmp_path)) == 2  # refused requests never reach the handler


def _request(url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
    reply = httpx.post(url, content=body, headers=headers, timeout=30)
    return reply.status_code, reply.content


@pytest.mark.parametrize("target", ["on_api", "on_tick"])
def test_a_real_functions_framework_process_serves_them(
    out: Path,
    tmp_path: Path,
    target: str,
    functions_framework: Callable[[Path, str, str], str],
) -> None:
    url = functions_framework(out, target, "http")
    # A GET reaches neither handler: 405 (tick) or 404 (api).
    assert http_status(f"{url}/health-probe") in (404, 405)
    if target == "on_api":
        status, body = _request(
            f"{url}/orders",
            b'{"id": 11}',
            {"Content-Type": "application/json"},
        )
        assert (status, json.loads(body)) == (200, {"accepted": 11})
    else:
        status, body = _request(
            f"{url}/",
            None,
            {"X-CloudScheduler-JobName": "tick", "Content-Length": "0"},
        )
        assert (status, body) == (204, b"")
    (event,) = [e for e in events(tmp_path) if e["name"] == target.removeprefix("on_")]
    assert event["metadata"].get("jobName", "tick") == "tick"


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("30 * * * * *", r"tick.*schedule.*seconds field '30'.*whole minutes"),
        ("@every 30s", r"tick.*schedule.*@every 30s fires within the minute"),
        ("@every 7m", r"tick.*schedule.*does not divide"),
        ("0 0 0 1 * MON", r"tick.*schedule.*both restricted"),
    ],
)
def test_what_cloud_scheduler_cannot_express_is_a_build_error(
    tmp_path: Path, recording_app: Callable[[str], str], schedule: str, message: str
) -> None:
    tick = component("tick", "bindings.cron", {}, schedule=schedule)
    with pytest.raises(UserError, match=message):
        gcp_build.build(
            load_project(project_dir(tmp_path, recording_app(HANDLERS), tick=tick)),
            tmp_path / "out",
        )


def test_an_http_component_without_the_trigger_annotation_is_refused(
    tmp_path: Path, recording_app: Callable[[str], str]
) -> None:
    api = component("api", "bindings.http", {}, url="http://example.com")
    with pytest.raises(UserError, match=r"api.*portabind.io/trigger"):
        gcp_build.build(
            load_project(project_dir(tmp_path, recording_app(HANDLERS), api=api)), tmp_path / "out"
        )
