"""`portabind deploy --target azure` and `destroy` against a recording `az`
(tests/recording_cli.py): what is created unless it exists, in order, the settings and the zip
published, dry-run, a second deploy, destroy, a missing or failing CLI."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.recording_cli import RecordingCli, Rule

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "orders"
OUT = ".portabind/build/azure"
APP, STORAGE = "orders-demo", "ordersdemo1cde53"
GROUP = ["--resource-group", APP]
DEPLOY = ["deploy", "--components", "components/azure", "--target", "azure", "--name", APP]


def probe(prefix: list[str], resource: str, missing: str) -> Rule:
    return Rule(prefix, "exists", resource=resource, missing=missing, missing_exit=3)


def az_rules(*, failing: str = "") -> list[Rule]:
    not_found = (
        "(ResourceNotFound) The Resource '{}' under resource group 'orders-demo' was not found."
    )
    return [
        probe(
            ["group", "show"],
            "group",
            "(ResourceGroupNotFound) Resource group 'orders-demo' could not be found.",
        ),
        Rule(["group", "create"], "create", resource="group", requires=["--location"]),
        Rule(["group", "delete"], "delete", resource="group", requires=["--yes"]),
        probe(["storage", "account", "show"], "storage", not_found.format("storageAccounts")),
        Rule(
            ["storage", "account", "create"],
            "create",
            resource="storage",
            requires=["--resource-group", "--location", "--sku"],
        ),
        Rule(["storage", "account", "delete"], "delete", resource="storage", requires=["--yes"]),
        probe(["functionapp", "show"], "functionapp", not_found.format("sites")),
        Rule(
            ["functionapp", "create"],
            "create",
            resource="functionapp",
            requires=[
                "--resource-group",
                "--storage-account",
                "--consumption-plan-location",
                "--runtime",
                "--functions-version",
            ],
            fails=failing == "functionapp create",
        ),
        Rule(["functionapp", "delete"], "delete", resource="functionapp"),
        Rule(
            ["resource", "delete"],
            "delete",
            resource="appinsights",
            requires=["--resource-group", "--resource-type"],
        ),
        Rule(
            ["functionapp", "config", "appsettings", "set"],
            "print",
            requires=["--resource-group", "--settings"],
            files=["--settings"],
            stdout="[]",
        ),
        Rule(
            ["functionapp", "deployment", "source", "config-zip"],
            "print",
            requires=["--resource-group", "--src"],
            files=["--src"],
            stdout="{}",
        ),
    ]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "orders"
    shutil.copytree(SAMPLE, root)
    return root


@pytest.fixture
def az(tmp_path: Path) -> RecordingCli:
    cli = RecordingCli(tmp_path / "bin", tmp_path / "cli")
    cli.install("az", az_rules())
    return cli


PROBES = [
    ["az", "group", "show", "--name", APP],
    ["az", "storage", "account", "show", "--name", STORAGE, *GROUP],
    ["az", "functionapp", "show", "--name", APP, *GROUP],
]
CREATES = [
    ["az", "group", "create", "--name", APP, "--location", "westeurope"],
    [
        "az",
        "storage",
        "account",
        "create",
        "--name",
        STORAGE,
        *GROUP,
        "--location",
        "westeurope",
        "--sku",
        "Standard_LRS",
        "--allow-blob-public-access",
        "false",
    ],
    [
        "az",
        "functionapp",
        "create",
        "--name",
        APP,
        *GROUP,
        "--storage-account",
        STORAGE,
        "--consumption-plan-location",
        "westeurope",
        "--os-type",
        "Linux",
        "--runtime",
        "python",
        "--runtime-version",
        "3.11",
        "--functions-version",
        "4",
        "--assign-identity",
        "[system]",
    ],
]
PUBLISH = [
    [
        "az",
        "functionapp",
        "config",
        "appsettings",
        "set",
        "--name",
        APP,
        *GROUP,
        "--settings",
        f"@{OUT}/appsettings.json",
    ],
    [
        "az",
        "functionapp",
        "deployment",
        "source",
        "config-zip",
        "--name",
        APP,
        *GROUP,
        "--src",
        f"{OUT}/functionapp.zip",
        "--build-remote",
        "true",
    ],
]
DELETES = [
    [
        "az",
        "resource",
        "delete",
        "--name",
        APP,
        *GROUP,
        "--resource-type",
        "Microsoft.Insights/components",
    ],
    ["az", "functionapp", "delete", "--name", APP, *GROUP],
    ["az", "storage", "account", "delete", "--name", STORAGE, *GROUP, "--yes"],
    ["az", "group", "delete", "--name", APP, "--yes"],
]


def recorded(project: Path) -> list[tuple[str, str]]:
    path = project / ".portabind" / "deployments.json"
    deployments = json.loads(path.read_text())["deployments"] if path.exists() else []
    return [(r["kind"], r["name"]) for d in deployments for r in d["created"]]


def test_deploy_creates_group_storage_and_app_then_publishes(
    project: Path, az: RecordingCli
) -> None:
    result = az.portabind(*DEPLOY, "--region", "westeurope", cwd=project)
    assert result.returncode == 0, result.stderr
    assert az.calls() == [
        PROBES[0],
        CREATES[0],
        PROBES[1],
        CREATES[1],
        PROBES[2],
        CREATES[2],
        *PUBLISH,
    ]
    assert recorded(project) == [
        ("resource group", APP),
        ("storage account", STORAGE),
        ("Function App", APP),
        ("Application Insights component", APP),
    ]
    with zipfile.ZipFile(project / OUT / "functionapp.zip") as published:
        names = published.namelist()
    assert {"host.json", "function_app.py", "requirements.txt", "app.py"} <= set(names)
    assert "local.settings.json" not in names
    settings = (project / OUT / "appsettings.json").read_text()
    assert "@Microsoft.KeyVault(" in settings  # the account key stays a Key Vault reference


def test_dry_run_prints_the_commands_and_needs_no_az(project: Path, tmp_path: Path) -> None:
    nothing = RecordingCli(tmp_path / "empty-bin", tmp_path / "cli")
    result = nothing.portabind(*DEPLOY, "--region", "westeurope", "--dry-run", cwd=project)
    assert result.returncode == 0, result.stderr
    lines = [line.split("  #")[0] for line in result.stdout.splitlines()[1:]]
    commands = [line for line in lines if not line.startswith("#")]
    assert commands == [
        "az group show --name orders-demo",
        "az group create --name orders-demo --location westeurope",
        f"az storage account show --name {STORAGE} --resource-group orders-demo",
        " ".join(CREATES[1]),
        "az functionapp show --name orders-demo --resource-group orders-demo",
        " ".join(CREATES[2]).replace("[system]", "'[system]'"),
        *(" ".join(command) for command in PUBLISH),
    ]
    assert nothing.calls() == []
    assert recorded(project) == []


def test_a_second_deploy_only_publishes_again(project: Path, az: RecordingCli) -> None:
    az.portabind(*DEPLOY, "--region", "westeurope", cwd=project)
    first = recorded(project)
    az.calls()
    result = az.portabind(*DEPLOY, "--region", "westeurope", cwd=project)
    assert result.returncode == 0, result.stderr
    assert az.calls() == [*PROBES, *PUBLISH]
    assert recorded(project) == first


def test_an_existing_resource_group_is_used_and_kept(project: Path, az: RecordingCli) -> None:
    az.make_exist(f"group {APP}")
    az.portabind(*DEPLOY, "--region", "westeurope", cwd=project)
    assert ["az", "group", "create", "--name", APP, "--location", "westeurope"] not in az.calls()
    assert ("resource group", APP) not in recorded(project)
    result = az.portabind("destroy", "--yes", cwd=project)
    assert result.returncode == 0, result.stderr
    assert az.calls() == DELETES[:3]
    assert az.existing() == {f"group {APP}"}


def test_destroy_deletes_what_deploy_created_newest_first(project: Path, az: RecordingCli) -> None:
    az.portabind(*DEPLOY, "--region", "westeurope", cwd=project)
    az.calls()
    result = az.portabind("destroy", "--target", "azure", "--name", APP, "--yes", cwd=project)
    assert result.returncode == 0, result.stderr
    assert az.calls() == DELETES
    assert az.existing() == set()
    assert recorded(project) == []


def test_a_missing_az_is_one_message_saying_how_to_install_it(
    project: Path, tmp_path: Path
) -> None:
    nothing = RecordingCli(tmp_path / "empty-bin", tmp_path / "cli")
    result = nothing.portabind(*DEPLOY, "--region", "westeurope", cwd=project)
    assert result.returncode == 2
    assert "`az` is not on PATH" in result.stderr
    assert "pip install azure-cli" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failure_mid_way_says_what_was_created(project: Path, az: RecordingCli) -> None:
    az.install("az", az_rules(failing="functionapp create"))
    result = az.portabind(*DEPLOY, "--region", "westeurope", cwd=project)
    assert result.returncode == 1
    assert "az: the service refused: functionapp create" in result.stdout
    assert "`az functionapp create` failed (exit 1)" in result.stderr
    assert f"resource group {APP}, storage account {STORAGE}" in result.stderr
    assert "Traceback" not in result.stderr
    assert az.calls()[-1] == CREATES[2]  # nothing ran after it
    assert recorded(project) == [("resource group", APP), ("storage account", STORAGE)]


def test_the_region_is_required(project: Path, az: RecordingCli) -> None:
    result = az.portabind(*DEPLOY, cwd=project)
    assert result.returncode == 2
    assert "needs the Azure region" in result.stderr
    assert az.calls() == []
