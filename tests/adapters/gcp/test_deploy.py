"""`portabind deploy --target gcp` and `destroy` against a recording `gcloud`
(tests/recording_cli.py): the functions and the scheduler job, in order, with the values read
from gcloud; dry-run, a second deploy, destroy, a missing or failing CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.recording_cli import RecordingCli, Rule

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "orders"
TICK_HANDLER = """

from portabind import BindingEvent


@app.binding("tick")
def on_tick(event: BindingEvent) -> None:
    pass
"""
#: No project annotation: the function goes to the project gcloud is configured for.
TICK = {
    "apiVersion": "dapr.io/v1alpha1",
    "kind": "Component",
    "metadata": {"name": "tick", "annotations": {"portabind.io/region": "europe-west1"}},
    "spec": {
        "type": "bindings.cron",
        "version": "v1",
        "metadata": [{"name": "schedule", "value": "CRON_TZ=Europe/Paris 0 8 * * *"}],
    },
}
OUT = ".portabind/build/gcp"
URL = "https://tick-abc123-ew.a.run.app"
ACCOUNT = "123456789-compute@developer.gserviceaccount.com"
DEPLOY = ["deploy", "--components", "components/gcp", "--target", "gcp"]
ORDERS = ["orders", "--project=orders-demo", "--region=us-central1"]
TICK_WHERE = ["tick", "--project=configured-project", "--region=europe-west1"]
JOB = ["tick", "--project=configured-project", "--location=europe-west1"]


def gcloud_rules(*, failing: str = "") -> list[Rule]:
    return [
        Rule(["config", "get-value", "project"], "print", stdout="configured-project"),
        Rule(
            ["functions", "describe"],
            "exists",
            resource="function",
            name=2,
            stdout=URL,
            missing="ERROR: (gcloud.functions.describe) NOT_FOUND: Resource "
            "'projects/p/locations/r/functions/f' was not found",
        ),
        Rule(
            ["functions", "deploy"],
            "create",
            resource="function",
            name=2,
            requires=["--gen2", "--region", "--runtime", "--source", "--entry-point"],
            files=["--source"],
        ),
        Rule(["functions", "delete"], "delete", resource="function", name=2, requires=["--quiet"]),
        Rule(
            ["functions", "add-invoker-policy-binding"],
            "print",
            requires=["--member"],
            fails=failing == "invoker",
        ),
        Rule(["projects", "describe"], "print", stdout="123456789"),
        Rule(
            ["scheduler", "jobs", "describe"],
            "exists",
            resource="job",
            name=3,
            missing="ERROR: (gcloud.scheduler.jobs.describe) NOT_FOUND: Job not found.",
        ),
        Rule(
            ["scheduler", "jobs", "create", "http"],
            "create",
            resource="job",
            name=4,
            requires=["--location", "--schedule", "--uri", "--oidc-service-account-email"],
        ),
        Rule(["scheduler", "jobs", "update", "http"], "print", requires=["--schedule", "--uri"]),
        Rule(
            ["scheduler", "jobs", "delete"], "delete", resource="job", name=3, requires=["--quiet"]
        ),
    ]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "orders"
    shutil.copytree(SAMPLE, root)
    with (root / "app.py").open("a") as app:
        app.write(TICK_HANDLER)
    (root / "components" / "gcp" / "tick.yaml").write_text(yaml.safe_dump(TICK))
    return root


@pytest.fixture
def gcloud(tmp_path: Path) -> RecordingCli:
    cli = RecordingCli(tmp_path / "bin", tmp_path / "cli")
    cli.install("gcloud", gcloud_rules())
    return cli


DEPLOY_ORDERS = [
    "gcloud",
    "functions",
    "deploy",
    *ORDERS[:1],
    "--gen2",
    *ORDERS[1:],
    "--runtime=python312",
    f"--source={OUT}",
    "--entry-point=on_orders",
    "--trigger-topic=orders",
    "--retry",
]
DEPLOY_TICK = [
    "gcloud",
    "functions",
    "deploy",
    *TICK_WHERE[:1],
    "--gen2",
    *TICK_WHERE[1:],
    "--runtime=python312",
    f"--source={OUT}",
    "--entry-point=on_tick",
    "--trigger-http",
    "--no-allow-unauthenticated",
]
JOB_FLAGS = [
    "--schedule=0 8 * * *",
    "--time-zone=Europe/Paris",
    f"--uri={URL}",
    "--http-method=POST",
    f"--oidc-service-account-email={ACCOUNT}",
    f"--oidc-token-audience={URL}",
]


def deploy_calls(job_verb: str) -> list[list[str]]:
    return [
        ["gcloud", "config", "get-value", "project"],
        ["gcloud", "functions", "describe", *ORDERS],
        DEPLOY_ORDERS,
        ["gcloud", "functions", "describe", *TICK_WHERE],
        DEPLOY_TICK,
        ["gcloud", "functions", "describe", *TICK_WHERE, "--format=value(serviceConfig.uri)"],
        ["gcloud", "projects", "describe", "configured-project", "--format=value(projectNumber)"],
        [
            "gcloud",
            "functions",
            "add-invoker-policy-binding",
            *TICK_WHERE,
            f"--member=serviceAccount:{ACCOUNT}",
        ],
        ["gcloud", "scheduler", "jobs", "describe", *JOB],
        ["gcloud", "scheduler", "jobs", job_verb, "http", *JOB, *JOB_FLAGS],
    ]


DELETES = [
    ["gcloud", "scheduler", "jobs", "delete", *JOB, "--quiet"],
    ["gcloud", "functions", "delete", *TICK_WHERE, "--quiet"],
    ["gcloud", "functions", "delete", *ORDERS, "--quiet"],
]


def recorded(project: Path) -> list[list[str]]:
    """The delete commands recorded, in the order deploy created their resources."""
    path = project / ".portabind" / "deployments.json"
    deployments = json.loads(path.read_text())["deployments"] if path.exists() else []
    return [r["delete"] for d in deployments for r in d["created"]]


def test_deploy_runs_the_functions_then_the_scheduler_job(
    project: Path, gcloud: RecordingCli
) -> None:
    result = gcloud.portabind(*DEPLOY, cwd=project)
    assert result.returncode == 0, result.stderr
    assert gcloud.calls() == deploy_calls("create")
    assert recorded(project) == DELETES[::-1]


def test_dry_run_shows_the_values_it_would_read(project: Path, tmp_path: Path) -> None:
    nothing = RecordingCli(tmp_path / "empty-bin", tmp_path / "cli")
    result = nothing.portabind(*DEPLOY, "--dry-run", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "gcloud config get-value project  # prints ${GCLOUD_PROJECT}" in result.stdout
    assert '"--project=${GCLOUD_PROJECT}"' in result.stdout
    assert (
        'gcloud scheduler jobs create http tick "--project=${GCLOUD_PROJECT}" '
        "--location=europe-west1 '--schedule=0 8 * * *' --time-zone=Europe/Paris "
        '"--uri=${TICK_URL}" --http-method=POST '
        '"--oidc-service-account-email=${TICK_PROJECT_NUMBER}-compute@developer'
        '.gserviceaccount.com" '
        '"--oidc-token-audience=${TICK_URL}"'
    ) in result.stdout
    assert nothing.calls() == []


def test_project_and_region_flags_override_the_manifest(
    project: Path, gcloud: RecordingCli
) -> None:
    result = gcloud.portabind(*DEPLOY, "--project", "p2", "--region", "asia-east1", cwd=project)
    assert result.returncode == 0, result.stderr
    calls = gcloud.calls()
    assert ["gcloud", "config", "get-value", "project"] not in calls
    deploys = [c for c in calls if c[1:3] == ["functions", "deploy"]]
    assert all("--project=p2" in c and "--region=asia-east1" in c for c in deploys)


def test_a_second_deploy_updates_and_creates_nothing_new(
    project: Path, gcloud: RecordingCli
) -> None:
    gcloud.portabind(*DEPLOY, cwd=project)
    gcloud.calls()
    result = gcloud.portabind(*DEPLOY, cwd=project)
    assert result.returncode == 0, result.stderr
    assert gcloud.calls() == deploy_calls("update")
    assert recorded(project) == DELETES[::-1]


def test_destroy_deletes_the_job_then_the_functions(project: Path, gcloud: RecordingCli) -> None:
    gcloud.portabind(*DEPLOY, cwd=project)
    gcloud.calls()
    result = gcloud.portabind("destroy", "--yes", cwd=project)
    assert result.returncode == 0, result.stderr
    assert gcloud.calls() == DELETES
    assert gcloud.existing() == set()


def test_a_missing_gcloud_is_one_message(project: Path, tmp_path: Path) -> None:
    nothing = RecordingCli(tmp_path / "empty-bin", tmp_path / "cli")
    result = nothing.portabind(*DEPLOY, cwd=project)
    assert result.returncode == 2
    assert "`gcloud` is not on PATH" in result.stderr
    assert "google-cloud-cli" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failure_mid_way_says_what_was_created(project: Path, gcloud: RecordingCli) -> None:
    gcloud.install("gcloud", gcloud_rules(failing="invoker"))
    result = gcloud.portabind(*DEPLOY, cwd=project)
    assert result.returncode == 1
    assert "gcloud: the service refused: functions add-invoker-policy-binding" in result.stdout
    assert "`gcloud functions add-invoker-policy-binding tick` failed" in result.stderr
    assert "Cloud Function orders, Cloud Function tick" in result.stderr
    assert gcloud.calls()[-1][:3] == ["gcloud", "functions", "add-invoker-policy-binding"]
    assert recorded(project) == DELETES[1:][::-1]


def test_an_env_ref_is_passed_but_never_printed(project: Path, gcloud: RecordingCli) -> None:
    receipts = project / "components" / "gcp" / "receipts.yaml"
    document = yaml.safe_load(receipts.read_text())
    document["spec"]["metadata"] = [
        {"name": "bucket", "envRef": "RECEIPTS_BUCKET"} if m["name"] == "bucket" else m
        for m in document["spec"]["metadata"]
    ]
    receipts.write_text(yaml.safe_dump(document))
    unset = gcloud.portabind(*DEPLOY, cwd=project)
    assert unset.returncode == 2
    assert "environment variable RECEIPTS_BUCKET is not set" in unset.stderr
    assert gcloud.calls() == []

    result = gcloud.portabind(*DEPLOY, cwd=project, RECEIPTS_BUCKET="bucket-value-7f3a")
    assert result.returncode == 0, result.stderr
    deploy = next(c for c in gcloud.calls() if c[1:4] == ["functions", "deploy", "orders"])
    assert "--set-env-vars=RECEIPTS_BUCKET=bucket-value-7f3a" in deploy
    assert "bucket-value-7f3a" not in result.stdout + result.stderr
    assert '"--set-env-vars=RECEIPTS_BUCKET=${RECEIPTS_BUCKET}"' in result.stdout
    assert "bucket-value-7f3a" not in (project / ".portabind" / "deployments.json").read_text()
