"""`TestClient` on every cloud: the handler runs through the target runtime's entry with the
platform's event, outputs are recorded without secrets or network, batches report their
failed records and HTTP triggers answer with the handler's response."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from portabind.bundled import load_app
from portabind.errors import UserError
from portabind.testing import OutputCall, TestClient
from portabind.tooling import targets
from portabind.tooling.project import load_project

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_httpserver import HTTPServer

APP = """
from portabind import App, BindingEvent, Output

app = App()


@app.binding("orders")
def on_order(event: BindingEvent, receipts: Output) -> None:
    order = event.json()
    if order.get("fail"):
        raise ValueError(f"order {order['id']} refused")
    receipts.invoke(
        "create",
        data={"order": order["id"], "tenant": event.metadata.get("tenant", "")},
        metadata={"key": f"receipts/{order['id']}.json"},
    )


@app.binding("api")
def api(event: BindingEvent) -> dict:
    if event.metadata["method"] == "DELETE":
        raise RuntimeError("no deletes")
    return {"method": event.metadata["method"], "path": event.metadata["path"], "got": event.json()}


@app.binding("nightly")
def nightly(event: BindingEvent, receipts: Output) -> None:
    receipts.invoke("create", data=event.metadata["readTimeUTC"], metadata={"key": "nightly"})


@app.binding("uploads")
def uploaded(event: BindingEvent, receipts: Output) -> None:
    # Azure names a blob `blobName`, S3 and Cloud Storage an object `key`
    name = event.metadata.get("key") or event.metadata["blobName"]
    receipts.invoke("create", data=name, metadata={"key": "seen"})


@app.binding("telemetry")
def telemetry(event: BindingEvent) -> None:
    if event.data == b"bad":
        raise ValueError("bad reading")
"""

TRIGGER = {"portabind.io/trigger": "true"}
HTTP = {**TRIGGER, "portabind.io/path": "/notes", "portabind.io/method": "POST"}
CRON = ("bindings.cron", {"schedule": "0 30 2 * * *"})

PROFILES: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "aws": {
        "orders": ("bindings.aws.sqs", {"queueName": "orders", "region": "us-east-1"}),
        "receipts": (
            "bindings.aws.s3",
            {"bucket": "receipts", "region": "us-east-1", "secretKey": {"ref": "AWS_SECRET"}},
        ),
        "telemetry": ("bindings.aws.kinesis", {"streamName": "telemetry", "region": "us-east-1"}),
        "uploads": ("bindings.aws.s3", {"bucket": "uploads", "region": "us-east-1"}),
        "api": ("bindings.http", {}),
        "nightly": CRON,
    },
    "azure": {
        "orders": (
            "bindings.azure.storagequeues",
            {"accountName": "shop", "accountKey": {"ref": "KEY"}, "queueName": "orders"},
        ),
        "receipts": (
            "bindings.azure.blobstorage",
            {"accountName": "shop", "accountKey": {"ref": "KEY"}, "containerName": "receipts"},
        ),
        "telemetry": (
            "bindings.azure.eventhubs",
            {
                "eventHubNamespace": "ns",
                "eventHub": "telemetry",
                "consumerID": "c",
                "storageAccountName": "shop",
                "storageContainerName": "checkpoints",
            },
        ),
        "uploads": (
            "bindings.azure.blobstorage",
            {"accountName": "shop", "containerName": "uploads"},
        ),
        "api": ("bindings.http", {}),
        "nightly": CRON,
    },
    "gcp": {
        "orders": (
            "bindings.gcp.pubsub",
            {"projectId": "p", "topic": "orders", "subscription": "worker"},
        ),
        "receipts": ("bindings.gcp.bucket", {"projectId": "p", "bucket": "receipts"}),
        "uploads": ("bindings.gcp.bucket", {"projectId": "p", "bucket": "uploads"}),
        "api": ("bindings.http", {}),
        "nightly": CRON,
    },
}


def document(name: str, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    metadata = [
        {"name": key, "secretKeyRef": {"name": value["ref"]}}
        if isinstance(value, dict)
        else {"name": key, "value": value}
        for key, value in fields.items()
    ]
    annotations = HTTP if name == "api" else TRIGGER if name == "uploads" else {}
    found: dict[str, Any] = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"type": kind, "version": "v1", "metadata": metadata},
    }
    if any(isinstance(value, dict) for value in fields.values()):
        found["auth"] = {"secretStore": "env"}
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    (root / "app.py").write_text(textwrap.dedent(APP))
    for profile, components in PROFILES.items():
        folder = root / "components" / profile
        folder.mkdir(parents=True)
        docs = [document(name, kind, fields) for name, (kind, fields) in components.items()]
        docs.append(document("env", "secretstores.local.env", {}))
        (folder / "all.yaml").write_text(yaml.safe_dump_all(docs))
    return root


@pytest.fixture
def client(project: Path, request: pytest.FixtureRequest) -> Any:
    with TestClient(load_app(project), components=project / "components" / request.param) as made:
        yield made


clouds = pytest.mark.parametrize("client", list(PROFILES), indirect=True)


@pytest.fixture
def client_aws(project: Path) -> Any:
    with TestClient(load_app(project), components=project / "components" / "aws") as made:
        yield made


@clouds
def test_send_runs_the_handler_and_records_its_outputs_without_secrets(client: Any) -> None:
    result = client.send("orders", {"id": 1})
    assert (result.ok, result.failed, result.error) == (True, [], None)
    assert client.outputs["receipts"] == [
        OutputCall("create", b'{"order":1,"tenant":""}', {"key": "receipts/1.json"})
    ]
    assert client.outputs["nothing-called"] == []


def test_the_target_is_the_profiles_cloud(project: Path) -> None:
    for profile in PROFILES:
        client = TestClient(load_app(project), components=project / "components" / profile)
        assert client.target == profile


@pytest.mark.parametrize("client", ["aws", "gcp"], indirect=True)
def test_user_attributes_reach_the_handler_as_metadata(client: Any) -> None:
    assert client.send("orders", {"id": 2}, metadata={"tenant": "acme"}).ok
    assert client.outputs["receipts"][0].json() == {"order": 2, "tenant": "acme"}


@clouds
def test_a_batch_reports_only_the_failed_records(client: Any) -> None:
    result = client.send_batch("orders", [{"id": 1}, {"id": 2, "fail": True}, {"id": 3}])
    assert not result.ok
    assert len(result.failed) == 1
    assert str(result.error) == "order 2 refused"  # the handler's own error, on every target
    assert [call.json()["order"] for call in client.outputs["receipts"]] == [1, 3]


@clouds
def test_a_failure_alone_shows_the_handlers_error(client: Any) -> None:
    result = client.send("orders", {"id": 9, "fail": True})
    assert not result.ok and len(result.failed) == 1
    assert str(result.error) == "order 9 refused"


@clouds
def test_http_triggers_answer_with_the_handlers_response(client: Any) -> None:
    result = client.send("api", {"title": "t"}, metadata={"path": "/notes", "x-tag": "a"})
    assert (result.ok, result.status) == (True, 200)
    assert result.headers["content-type"].startswith("application/json")
    assert result.json() == {"method": "POST", "path": "/notes", "got": {"title": "t"}}
    failed = client.send("api", {}, metadata={"method": "DELETE", "path": "/notes"})
    assert not failed.ok
    assert failed.status in (405, 500)  # Cloud Functions' route check answers before the handler


@clouds
def test_cron_ticks_carry_the_read_time(client: Any) -> None:
    assert client.send("nightly").ok
    (call,) = client.outputs["receipts"]
    assert call.text().endswith("Z")


@clouds
def test_object_created_events_name_the_object(client: Any) -> None:
    assert client.send("uploads", b"a,b", metadata={"key": "in/a b.csv"}).ok
    assert client.outputs["receipts"][0].text() == "in/a b.csv"


def test_stream_batches_report_where_the_platform_retries_from(project: Path) -> None:
    app = load_app(project)
    with TestClient(app, components=project / "components" / "aws") as client:
        result = client.send_batch("telemetry", [b"ok", b"bad", b"ok"])
        sent = result.failed
    assert len(sent) == 1  # Lambda retries the shard from the first failed sequence number
    with TestClient(app, components=project / "components" / "azure") as client:
        result = client.send_batch("telemetry", [b"ok", b"bad"])
    assert len(result.failed) == 2  # the host retries the whole invocation
    assert isinstance(result.error, ValueError)


def test_local_hands_the_event_to_the_app(project: Path) -> None:
    with TestClient(
        load_app(project), components=project / "components" / "aws", target="local"
    ) as client:
        assert client.send("orders", {"id": 4}, metadata={"tenant": "t"}).ok
        assert client.outputs["receipts"][0].json() == {"order": 4, "tenant": "t"}


def test_metadata_the_event_cannot_carry_is_refused(project: Path) -> None:
    azure = project / "components" / "azure"
    with (
        TestClient(load_app(project), components=azure) as client,
        pytest.raises(UserError, match="carries no tenant"),
    ):
        client.send("orders", {"id": 1}, metadata={"tenant": "acme"})


def test_a_type_without_a_trigger_on_the_target_says_so(project: Path) -> None:
    with (
        TestClient(
            load_app(project), components=project / "components" / "azure", target="aws"
        ) as client,
        pytest.raises(UserError, match="no native trigger on aws"),
    ):
        client.send("orders", {"id": 1})


def test_http_batches_keep_the_method_and_path_for_every_request(client_aws: Any) -> None:
    result = client_aws.send_batch("api", [{"n": 1}, {"n": 2}], metadata={"path": "/notes"})
    assert result.ok
    # the API Gateway responses, one per request
    assert [json.loads(reply["body"])["path"] for reply in result.response] == ["/notes"] * 2


def test_an_http_send_goes_to_the_trigger_s_own_path_by_default(client_aws: Any) -> None:
    result = client_aws.send("api", {"n": 1})
    assert result.ok
    assert json.loads(result.response["body"])["path"] == "/notes"


REAL_APP = """
from portabind import App, Output

app = App()


@app.binding("orders")
def forward(order: dict, hook: Output) -> None:
    hook.invoke("create", data=order)
"""


def test_real_outputs_reach_what_the_component_points_at(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_oneshot_request("/hook", method="POST", json={"id": 5}).respond_with_data("")
    (tmp_path / "app.py").write_text(REAL_APP)
    profile = tmp_path / "components" / "aws"
    profile.mkdir(parents=True)
    documents = [
        document("orders", "bindings.aws.sqs", {"queueName": "orders", "region": "us-east-1"}),
        document("hook", "bindings.http", {"url": httpserver.url_for("/hook")}),
    ]
    (profile / "all.yaml").write_text(yaml.safe_dump_all(documents))
    with TestClient(load_app(tmp_path), components=profile, outputs="real") as client:
        assert client.send("orders", {"id": 5}).ok
        assert client.outputs["hook"] == []  # sent, not recorded
    httpserver.check_assertions()


def test_a_target_the_client_has_no_events_for_is_refused(project: Path) -> None:
    with pytest.raises(UserError, match="no events in the shape of target 'dapr'"):
        TestClient(load_app(project), components=project / "components" / "aws", target="dapr")


def test_a_build_never_bundles_the_test_client(project: Path, tmp_path: Path) -> None:
    # One target is enough: every build vendors the core through the same bundle step.
    aws = targets.target("aws")
    assert aws.build(load_project(project, project / "components" / "aws"), tmp_path)
    assert (tmp_path / "portabind" / "app.py").is_file()  # the core is there
    assert not (tmp_path / "portabind" / "testing").exists()


def test_recorded_outputs_answer_what_the_test_sets(project: Path) -> None:
    app = load_app(project)
    with TestClient(app, components=project / "components" / "aws") as client:
        client.respond("receipts", "get", {"total": 3}, metadata={"etag": "e1"})
        response = client.app.invoke_binding("receipts", "get", metadata={"key": "r/1.json"})
        assert (response.json(), response.metadata["ETag"]) == ({"total": 3}, "e1")
        assert client.app.invoke_binding("receipts", "create", data=b"x").data is None
        with pytest.raises(UserError, match="no operation 'teleport' to answer"):
            client.respond("receipts", "teleport")
