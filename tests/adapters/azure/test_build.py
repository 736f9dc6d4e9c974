"""`portabind build --target azure` on samples/orders: the azure-functions library indexes the
generated app into a queue trigger, and the function, fed a real `QueueMessage`, runs the
handler against Azurite from the self-contained output alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from portabind.adapters.azure import build as azure_build
from portabind.errors import UserError
from portabind.tooling.project import check_project, load_project
from tests.adapters.azure.function_apps import run_python

if TYPE_CHECKING:
    from collections.abc import Callable

    from portabind.adapters.local.emulators.azure import AzuriteEmulator

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "orders"

# Run in a fresh interpreter with OUT first on sys.path, as the Functions worker does: the
# generated app must import the vendored portabind, not the one installed for the tests.
DRIVER = """
import json, sys
from datetime import datetime, timedelta, timezone

out = sys.argv[1]
sys.path.insert(0, out)
import function_app
import portabind

functions = function_app.app.get_functions()
result = {
    "portabind": portabind.__file__,
    "functions": [
        {"name": f.get_function_name(), "doc": json.loads(f.get_function_json())}
        for f in functions
    ],
}
if len(sys.argv) > 2:
    from azure.functions.queue import QueueMessage

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    message = QueueMessage(
        id="m-1", body=sys.argv[2].encode(), dequeue_count=1, pop_receipt="pr",
        insertion_time=now, expiration_time=now + timedelta(days=7), time_next_visible=now,
    )
    try:
        functions[0].get_user_function()(message)
        result["outcome"] = "ok"
    except Exception as error:
        result["outcome"] = f"raised {type(error).__name__}: {error}"
print(json.dumps(result))
"""


def copy_sample(tmp_path: Path) -> Path:
    target = tmp_path / "orders"
    shutil.copytree(SAMPLE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def edit_component(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document))


def set_value(document: dict[str, Any], name: str, value: str) -> None:
    items = document["spec"]["metadata"]
    items[:] = [item for item in items if item["name"] != name]
    items.append({"name": name, "value": value})


def build_project(project_dir: Path, out: Path, profile: str = "azure") -> list[Path]:
    project = load_project(project_dir, project_dir / "components" / profile)
    check_project(project, resolve_secrets=False)
    return azure_build.build(project, out)


def drive(out: Path, *message: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    return run_python(out, DRIVER, *message, environ=env)


def test_function_app_indexes_into_a_queue_trigger(tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_project(SAMPLE, out)
    result = drive(out)
    assert Path(result["portabind"]).is_relative_to(out)  # the vendored copy
    (function,) = result["functions"]
    assert function["name"] == "orders"
    (trigger,) = function["doc"]["bindings"]
    assert trigger["type"] == "queueTrigger"
    assert trigger["direction"] == "IN"
    assert trigger["queueName"] == "orders"
    assert trigger["connection"] == "PORTABIND_ORDERS_STORAGE"
    local = json.loads((out / "local.settings.json").read_text())["Values"]
    assert trigger["connection"] in local
    assert local["FUNCTIONS_WORKER_RUNTIME"] == "python"
    deployed = {s["name"]: s["value"] for s in json.loads((out / "appsettings.json").read_text())}
    assert deployed["PORTABIND_ORDERS_STORAGE__queueServiceUri"] == (
        "https://ordersstorage.queue.core.windows.net"
    )
    requirements = (out / "requirements.txt").read_text().split()
    for package in ("azure-functions", "azure-storage-queue", "azure-storage-blob", "pydantic"):
        assert any(line.startswith(package) for line in requirements)
    assert any(line.lower().startswith("pyyaml") for line in requirements)


def test_host_json_queue_settings(tmp_path: Path) -> None:
    project = copy_sample(tmp_path)

    def tune(document: dict[str, Any]) -> None:
        document["metadata"]["annotations"] = {
            "portabind.io/maxDequeueCount": "3",
            "portabind.io/batchSize": "4",
        }
        set_value(document, "visibilityTimeout", "1m30s")

    edit_component(project / "components" / "azure" / "orders.yaml", tune)
    build_project(project, tmp_path / "out")
    host = json.loads((tmp_path / "out" / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    assert host["extensions"]["queues"] == {
        "maxDequeueCount": 3,
        "batchSize": 4,
        "visibilityTimeout": "00:01:30",
        "maxPollingInterval": "00:00:10",
        "messageEncoding": "none",
    }


def test_no_secret_values_in_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = "do-not-ship-this-key-9f8e7d"
    monkeypatch.setenv("STORAGE_ACCOUNT_KEY", marker)
    out = tmp_path / "out"
    build_project(SAMPLE, out)
    for path in out.rglob("*"):
        if path.is_file():
            assert marker not in path.read_text(errors="replace"), path
    local = json.loads((out / "local.settings.json").read_text())["Values"]
    assert local["PORTABIND_SECRET_RECEIPTS_ACCOUNTKEY"] == ""
    deployed = {s["name"]: s["value"] for s in json.loads((out / "appsettings.json").read_text())}
    assert deployed["PORTABIND_SECRET_RECEIPTS_ACCOUNTKEY"].startswith("@Microsoft.KeyVault(")
    assert "SecretName=STORAGE-ACCOUNT-KEY" in deployed["PORTABIND_SECRET_RECEIPTS_ACCOUNTKEY"]


def test_input_without_azure_trigger_is_a_build_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="portabind run"):
        build_project(SAMPLE, tmp_path / "out", profile="aws")


def test_built_function_writes_the_receipt_to_azurite(
    tmp_path: Path, azurite: AzuriteEmulator, unique_name: Callable[..., str]
) -> None:
    from azure.storage.blob import ContainerClient

    project = copy_sample(tmp_path)
    container = unique_name("receipts")
    blob_service = azurite.blob_endpoint.removesuffix(f"/{azurite.account_name}")

    def to_azurite(document: dict[str, Any]) -> None:
        set_value(document, "accountName", azurite.account_name)
        set_value(document, "endpoint", blob_service)
        set_value(document, "containerName", container)

    edit_component(project / "components" / "azure" / "receipts.yaml", to_azurite)
    out = tmp_path / "out"
    build_project(project, out)
    # The app setting the build names, as Key Vault would fill it in Azure.
    env = {"PORTABIND_SECRET_RECEIPTS_ACCOUNTKEY": azurite.account_key}
    result = drive(out, '{"id": 42, "item": "book", "qty": 2}', env=env)
    assert result["outcome"] == "ok"
    receipts = ContainerClient.from_connection_string(azurite.connection_string, container)
    receipt = json.loads(receipts.download_blob("receipts/42.json").readall())
    assert receipt == {"order": 42, "item": "book", "qty": 2, "status": "accepted"}
    failed = drive(out, '{"id": "not a number"}', env=env)
    assert failed["outcome"].startswith("raised PayloadError")
