"""`portabind build --target gcp`: the artifact serves real CloudEvents under functions-framework
(test client and a real `functions-framework` process) against the GCS and Pub/Sub emulators."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from portabind.adapters.gcp import build as gcp_build
from portabind.adapters.gcp import runtime as gcp_runtime
from portabind.bindings.gcp import bucket, pubsub
from portabind.errors import BuildError
from portabind.tooling.project import load_project

if TYPE_CHECKING:
    from collections.abc import Callable

    from portabind.events import BindingEvent

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "orders"
PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


@pytest.fixture
def emulators(
    gcs_server: Any, pubsub_server: Any, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    environ = {
        "STORAGE_EMULATOR_HOST": gcs_server.endpoint,
        "PUBSUB_EMULATOR_HOST": pubsub_server.address,
    }
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    return environ


def build_project(directory: Path, components: Path, out: Path) -> list[Path]:
    return gcp_build.build(load_project(directory, components), out)


@pytest.fixture
def orders_out(tmp_path: Path, emulators: dict[str, str]) -> Path:
    """samples/orders built for GCP, with its receipts bucket in the emulator."""
    out = tmp_path / "out"
    build_project(SAMPLE, SAMPLE / "components" / "gcp", out)
    bucket.provision(bucket.BucketMetadata(project_id="orders-demo", bucket="orders-receipts"))
    return out


def receipt(order_id: int) -> Any:
    from google.cloud import storage

    blob = (
        storage.Client(project="orders-demo")
        .bucket("orders-receipts")
        .get_blob(f"receipts/{order_id}.json")
    )
    return None if blob is None else json.loads(blob.download_as_bytes())


def published_data(payload: bytes, message_id: str = "", **attributes: str) -> dict[str, Any]:
    """The `data` of a messagePublished CloudEvent, as Eventarc posts it."""
    return {
        "message": {
            "data": base64.b64encode(payload).decode(),
            "attributes": attributes,
            "messageId": message_id or str(uuid.uuid4().int % 10**16),
            "publishTime": "2026-11-23T10:00:00.123456789Z",
        },
        "subscription": "projects/orders-demo/subscriptions/eventarc-us-central1-orders-sub-1",
    }


def cloud_event(data: dict[str, Any], topic: str = "orders") -> Any:
    from cloudevents.http import CloudEvent

    return CloudEvent(
        {
            "type": PUBLISHED,
            "source": f"//pubsub.googleapis.com/projects/orders-demo/topics/{topic}",
            "id": data["message"]["messageId"],
        },
        data,
    )


def serve(out: Path) -> Any:
    """A test client of OUT/main.py served by functions-framework (its Flask app)."""
    from functions_framework import create_app

    app = create_app("on_orders", str(out / "main.py"), "cloudevent")  # type: ignore[no-untyped-call]
    return app.test_client()


def order_payload(order_id: int) -> bytes:
    return json.dumps({"id": order_id, "item": "tea", "qty": 2}).encode()


def new_order_id() -> int:
    return uuid.uuid4().int % 10**9


def test_build_writes_main_requirements_and_deploy_manifest(orders_out: Path) -> None:
    main = (orders_out / "main.py").read_text()
    assert "@functions_framework.cloud_event\ndef on_orders(cloud_event):" in main
    requirements = (orders_out / "requirements.txt").read_text().split()
    names = {r.split(">")[0].split("=")[0] for r in requirements}
    assert {"functions-framework", "pydantic", "PyYAML", "google-cloud-storage"} <= names
    assert (orders_out / "app.py").read_text() == (SAMPLE / "app.py").read_text()
    assert sorted(p.name for p in (orders_out / "components").iterdir()) == [
        "orders.yaml",
        "portabind-components.json",  # the snapshot the function loads at cold start
        "receipts.yaml",
    ]
    manifest = yaml.safe_load((orders_out / "deploy.yaml").read_text())
    [function] = manifest["functions"]
    assert function["name"] == "orders"
    assert function["entryPoint"] == "on_orders"
    assert function["runtime"] == "python312"
    assert function["region"] == "us-central1"
    assert function["trigger"] == {
        "eventType": PUBLISHED,
        "pubsubTopic": "projects/orders-demo/topics/orders",
        "topic": "orders",
        "retryPolicy": "RETRY_POLICY_RETRY",
    }
    script = (orders_out / "deploy.sh").read_text()
    assert "gcloud functions deploy orders \\\n  --gen2" in script
    for flag in ("--runtime=python312", "--entry-point=on_orders", "--trigger-topic=orders"):
        assert flag in script
    assert "--retry" in script and "--project=orders-demo" in script
    assert os.access(orders_out / "deploy.sh", os.X_OK)
    subprocess.run(["sh", "-n", str(orders_out / "deploy.sh")], check=True)


def test_the_vendored_portabind_is_complete(orders_out: Path) -> None:
    """OUT/ imports its own portabind (Cloud Build installs only requirements.txt)."""
    probe = (
        "import sys; sys.path.insert(0, '.');"
        "import portabind.adapters.gcp.runtime, portabind.bindings.gcp.bucket;"
        "print(portabind.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=orders_out, capture_output=True, text=True, check=True
    )
    assert Path(result.stdout.strip()).resolve() == (orders_out / "portabind" / "__init__.py")


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_functions_framework_serves_pubsub_cloudevents(orders_out: Path, mode: str) -> None:
    from cloudevents.conversion import to_binary, to_structured

    client = serve(orders_out)
    order_id = new_order_id()
    convert = to_binary if mode == "binary" else to_structured
    headers, body = convert(cloud_event(published_data(order_payload(order_id))))
    reply = client.post("/", headers=headers, data=body)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert receipt(order_id) == {"order": order_id, "item": "tea", "qty": 2, "status": "accepted"}


def test_a_failing_handler_answers_500_so_pubsub_redelivers(orders_out: Path) -> None:
    from cloudevents.conversion import to_binary

    client = serve(orders_out)
    headers, body = to_binary(cloud_event(published_data(b'{"item": "no id"}')))
    reply = client.post("/", headers=headers, data=body)
    assert reply.status_code == 500
    assert reply.headers.get("X-Google-Status") == "crash"


def _post(url: str, headers: dict[str, str], body: bytes) -> int:
    return httpx.post(url, headers=headers, content=body, timeout=30).status_code


def test_a_real_functions_framework_process_serves_the_build(
    orders_out: Path, functions_framework: Callable[[Path, str, str], str]
) -> None:
    from cloudevents.conversion import to_binary, to_structured

    url = functions_framework(orders_out, "on_orders", "cloudevent") + "/"
    binary_id, structured_id = new_order_id(), new_order_id()
    headers, body = to_binary(cloud_event(published_data(order_payload(binary_id))))
    assert _post(url, dict(headers), body) == 200
    headers, body = to_structured(cloud_event(published_data(order_payload(structured_id))))
    assert _post(url, dict(headers), body) == 200
    assert receipt(binary_id)["order"] == binary_id
    assert receipt(structured_id)["order"] == structured_id
    headers, body = to_binary(cloud_event(published_data(b"not an order")))
    assert _post(url, dict(headers), body) == 500


def component(name: str, type_: str, **values: str) -> dict[str, Any]:
    """A Dapr Component document with literal metadata values."""
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name},
        "spec": {
            "type": type_,
            "version": "v1",
            "metadata": [{"name": key, "value": value} for key, value in values.items()],
        },
    }


RECORDER_APP = '''
from portabind import App, BindingEvent

app = App()


@app.binding("orders")
def record(event: BindingEvent) -> None:
    """Store the event as the handler saw it."""
    app.invoke_binding(
        "receipts",
        "create",
        data={"data": event.data.hex(), "metadata": dict(event.metadata)},
        metadata={"key": f"events/{event.metadata['id']}.json"},
    )
'''


def _recorder_project(root: Path, topic: str, subscription: str, bucket_name: str) -> Path:
    (root / "components").mkdir(parents=True)
    (root / "app.py").write_text(RECORDER_APP)
    documents = [
        component(
            "orders",
            "bindings.gcp.pubsub",
            projectId="orders-demo",
            topic=topic,
            subscription=subscription,
        ),
        component("receipts", "bindings.gcp.bucket", projectId="orders-demo", bucket=bucket_name),
    ]
    (root / "components" / "all.yaml").write_text(yaml.safe_dump_all(documents))
    return root


def test_the_function_and_the_local_listener_normalize_a_message_alike(
    tmp_path: Path, emulators: dict[str, str], unique_name: Callable[..., str]
) -> None:
    from cloudevents.conversion import to_binary
    from google.cloud import pubsub_v1

    topic, subscription, bucket_name = unique_name("t"), unique_name("s"), unique_name("b")
    project = _recorder_project(tmp_path / "recorder", topic, subscription, bucket_name)
    out = tmp_path / "out"
    build_project(project, project / "components", out)
    metadata = pubsub.PubSubMetadata(
        project_id="orders-demo", topic=topic, subscription=subscription
    )
    pubsub.provision(metadata)
    bucket.provision(bucket.BucketMetadata(project_id="orders-demo", bucket=bucket_name))

    publisher = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
    publisher.publish(
        pubsub.topic_path("orders-demo", topic), b"\x00same message", ordering_key="k1", color="red"
    ).result(timeout=30)
    publisher.stop()

    # The Pub/Sub push JSON of the message (what Eventarc puts in the CloudEvent), taken from
    # the subscription and handed back (ack deadline 0) for the local listener to receive too.
    path = pubsub.subscription_path("orders-demo", subscription)
    with pubsub_v1.SubscriberClient() as subscriber:
        [pulled] = subscriber.pull(subscription=path, max_messages=1, timeout=10).received_messages
        subscriber.modify_ack_deadline(
            subscription=path, ack_ids=[pulled.ack_id], ack_deadline_seconds=0
        )
    message = json.loads(pubsub_v1.types.PubsubMessage.to_json(pulled.message))
    data = {"message": message, "subscription": path}

    client = serve(out)
    headers, body = to_binary(cloud_event(data, topic))
    assert client.post("/", headers=headers, data=body).status_code == 200
    from google.cloud import storage

    stored = (
        storage.Client(project="orders-demo")
        .bucket(bucket_name)
        .get_blob(f"events/{message['messageId']}.json")
    )
    via_function = json.loads(stored.download_as_bytes())

    events: list[BindingEvent] = []
    stop = threading.Event()

    def deliver(event: BindingEvent) -> None:
        events.append(event)
        stop.set()

    listener = threading.Thread(
        target=pubsub.PubSubInput("orders", metadata).listen, args=(deliver, stop), daemon=True
    )
    listener.start()
    listener.join(20)
    assert events, "the local listener received nothing"
    local = events[0]
    assert bytes.fromhex(via_function["data"]) == local.data == b"\x00same message"
    assert via_function["metadata"] == dict(local.metadata)
    assert set(local.metadata) == {"color", "id", "publishTime", "orderingKey", "subscription"}


def _secret_project(root: Path) -> Path:
    shutil.copytree(SAMPLE / "components" / "gcp", root / "components")
    shutil.copy(SAMPLE / "app.py", root / "app.py")
    receipts = yaml.safe_load((root / "components" / "receipts.yaml").read_text())
    receipts["auth"] = {"secretStore": "local-secrets"}
    receipts["spec"]["metadata"] += [
        {"name": "private_key_id", "secretKeyRef": {"name": "gcp-sa", "key": "private_key_id"}},
        {"name": "privateKey", "secretKeyRef": {"name": "gcp-sa", "key": "private_key"}},
        {"name": "clientEmail", "envRef": "GCP_CLIENT_EMAIL"},
    ]
    (root / "components" / "receipts.yaml").write_text(yaml.safe_dump(receipts))
    (root / "components" / "secrets.json").write_text(
        json.dumps({"gcp-sa": {"private_key_id": "SUPERSECRET-ID", "private_key": "SUPERSECRET"}})
    )
    store = component(
        "local-secrets", "secretstores.local.file", secretsFile="secrets.json", multiValued="true"
    )
    (root / "components" / "store.yaml").write_text(yaml.safe_dump(store))
    return root


def test_secrets_become_secret_manager_references_read_back_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _secret_project(tmp_path / "project")
    out = tmp_path / "out"
    build_project(project, project / "components", out)
    for path in out.rglob("*"):
        if path.is_file():
            assert b"SUPERSECRET" not in path.read_bytes(), path
    assert not (out / "components" / "secrets.json").exists()
    script = (out / "deploy.sh").read_text()
    assert (
        "--set-secrets=PORTABIND_SECRET_RECEIPTS_PRIVATE_KEY_ID=gcp-sa-private_key_id:latest,"
        "PORTABIND_SECRET_RECEIPTS_PRIVATEKEY=gcp-sa-private_key:latest"
    ) in script
    assert '"--set-env-vars=GCP_CLIENT_EMAIL=${GCP_CLIENT_EMAIL}"' in script
    [function] = yaml.safe_load((out / "deploy.yaml").read_text())["functions"]
    assert function["environmentVariables"] == {"GCP_CLIENT_EMAIL": "${GCP_CLIENT_EMAIL}"}
    assert {
        "key": "PORTABIND_SECRET_RECEIPTS_PRIVATEKEY",
        "secret": "gcp-sa-private_key",
        "version": "latest",
    } in function["secretEnvironmentVariables"]

    # On Cloud Functions the platform sets those variables; the runtime reads them.
    monkeypatch.setenv("PORTABIND_SECRET_RECEIPTS_PRIVATE_KEY_ID", "key-id-from-secret-manager")
    monkeypatch.setenv("PORTABIND_SECRET_RECEIPTS_PRIVATEKEY", "key-from-secret-manager")
    monkeypatch.setenv("GCP_CLIENT_EMAIL", "fn@orders-demo.iam.gserviceaccount.com")
    loaded = gcp_runtime.Function.load(out)
    receipts_metadata = loaded.runtime.metadata("receipts")
    assert isinstance(receipts_metadata, bucket.BucketMetadata)
    assert receipts_metadata.secret("private_key_id") == "key-id-from-secret-manager"
    assert receipts_metadata.secret("private_key") == "key-from-secret-manager"
    assert receipts_metadata.client_email == "fn@orders-demo.iam.gserviceaccount.com"


def test_region_and_secret_ids_come_from_component_annotations(tmp_path: Path) -> None:
    project = _secret_project(tmp_path / "project")
    for name, annotation in (
        ("orders", {"portabind.io/region": "europe-west1"}),
        ("receipts", {"portabind.io/secret": "privateKey=orders-sa-key"}),
    ):
        path = project / "components" / f"{name}.yaml"
        document = yaml.safe_load(path.read_text())
        document["metadata"]["annotations"] = annotation
        path.write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    build_project(project, project / "components", out)
    script = (out / "deploy.sh").read_text()
    assert "--region=europe-west1" in script
    assert "PORTABIND_SECRET_RECEIPTS_PRIVATEKEY=orders-sa-key:latest" in script
    [function] = yaml.safe_load((out / "deploy.yaml").read_text())["functions"]
    assert function["region"] == "europe-west1"


def test_an_input_without_a_cloud_functions_trigger_is_a_build_error(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "components").mkdir(parents=True)
    (project / "app.py").write_text(
        "from portabind import App\napp = App()\n\n@app.binding('jobs')\ndef on_job(e):\n    pass\n"
    )
    (project / "components" / "jobs.yaml").write_text(
        yaml.safe_dump(component("jobs", "bindings.aws.sqs", queueName="jobs", region="us-east-1"))
    )
    with pytest.raises(BuildError, match="no Cloud Functions trigger") as raised:
        build_project(project, project / "components", tmp_path / "out")
    assert "portabind run" in raised.value.render()


def test_a_pubsub_input_without_a_topic_is_refused(tmp_path: Path) -> None:
    project = _secret_project(tmp_path / "project")
    orders = yaml.safe_load((project / "components" / "orders.yaml").read_text())
    orders["spec"]["metadata"] = [m for m in orders["spec"]["metadata"] if m["name"] != "topic"]
    (project / "components" / "orders.yaml").write_text(yaml.safe_dump(orders))
    with pytest.raises(Exception, match="topic") as raised:
        build_project(project, project / "components", tmp_path / "out")
    assert "Eventarc" in str(raised.value)


def test_function_names_and_entry_points_are_valid() -> None:
    assert gcp_build.function_name("Orders_Queue") == "orders-queue"
    assert gcp_build.function_name("1st") == "fn-1st"
    assert gcp_build.entry_point("orders-queue") == "on_orders_queue"
    assert gcp_build.entry_point("orders-queue").isidentifier()
