"""The generated Lambda entry handling SQS batches: partial failures, outputs against moto,
and the same normalized event as the local listener."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from portabind.adapters.aws import build
from portabind.bindings.aws import _aws, sqs
from portabind.tooling.project import load_project

if TYPE_CHECKING:
    from collections.abc import Callable

    from portabind.adapters.local.emulators.aws import MotoEmulator
    from portabind.events import BindingEvent

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "orders"


def point_at_moto(component_file: Path, moto: MotoEmulator, **values: str) -> None:
    """Give a component the emulator's endpoint and keys (and override other `values`)."""
    document = yaml.safe_load(component_file.read_text())
    fields = {**_aws.emulate({"moto": moto.endpoint}), **values}
    kept = [m for m in document["spec"]["metadata"] if m["name"] not in fields]
    document["spec"]["metadata"] = kept + [{"name": k, "value": v} for k, v in fields.items()]
    component_file.write_text(yaml.safe_dump(document))


def lambda_record(entry: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A ReceiveMessage entry as Lambda's SQS poller hands it to a function."""
    return {
        "messageId": entry["MessageId"],
        "receiptHandle": entry["ReceiptHandle"],
        "body": entry["Body"],
        "attributes": entry.get("Attributes", {}),
        "messageAttributes": {
            key: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for key, value in entry.get("MessageAttributes", {}).items()
        },
        "md5OfBody": entry["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


def record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders",
        "awsRegion": "us-east-1",
    }


def test_orders_batch_reports_only_the_failed_record(
    tmp_path: Path, moto_server: MotoEmulator, unique_name: Callable[..., str]
) -> None:
    bucket = unique_name("receipts")
    components = tmp_path / "components"
    components.mkdir()
    for source in (SAMPLE / "components" / "aws").glob("*.yaml"):
        (components / source.name).write_text(source.read_text())
    point_at_moto(components / "receipts.yaml", moto_server, bucket=bucket)
    out = tmp_path / "out"
    build.build(load_project(SAMPLE, components), out)
    s3 = _aws.client(
        "s3",
        sqs.SqsMetadata.model_validate(
            {"queueName": "unused", **_aws.emulate({"moto": moto_server.endpoint})}
        ),
    )
    s3.create_bucket(Bucket=bucket)

    event = {
        "Records": [
            record("m-1", json.dumps({"id": 1, "item": "book", "qty": 2})),
            record("m-2", "this is not an order"),
            record("m-3", json.dumps({"id": 3, "item": "pen"})),
        ]
    }
    # A fresh interpreter in the artifact, as Lambda runs it: the bundled portabind, not ours.
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(out)!r})
        import portabind_lambda, portabind
        assert portabind.__file__.startswith({str(out)!r}), portabind.__file__
        # cold start: the SQS batch runs without Powertools (nor its pydantic models)
        assert not [m for m in sys.modules if m.startswith("aws_lambda_powertools")]
        print(json.dumps(portabind_lambda.handle_orders(json.loads(sys.stdin.read()), None)))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout.strip().splitlines()[-1])
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    keys = sorted(o["Key"] for o in s3.list_objects(Bucket=bucket).get("Contents", []))
    assert keys == ["receipts/1.json", "receipts/3.json"]
    receipt = json.loads(s3.get_object(Bucket=bucket, Key="receipts/3.json")["Body"].read())
    assert receipt == {"order": 3, "item": "pen", "qty": 1, "status": "accepted"}


RECORDING_APP = """
    from portabind import App

    app = App()
    app.seen = []

    @app.binding("orders")
    def on_order(event):
        app.seen.append(event)
"""


def test_lambda_and_local_listener_give_the_same_event(
    tmp_path: Path, moto_server: MotoEmulator, unique_name: Callable[..., str]
) -> None:
    queue_name = unique_name("orders")
    project = tmp_path / "project"
    (project / "components").mkdir(parents=True)
    (project / "app.py").write_text(textwrap.dedent(RECORDING_APP))
    component = project / "components" / "orders.yaml"
    component.write_text((SAMPLE / "components" / "aws" / "orders.yaml").read_text())
    point_at_moto(component, moto_server, queueName=queue_name)
    out = tmp_path / "out"
    build.build(load_project(project), out)

    metadata = sqs.SqsMetadata.model_validate(
        {"queueName": queue_name, **_aws.emulate({"moto": moto_server.endpoint})}
    )
    sqs.provision(metadata)
    client = _aws.client("sqs", metadata)
    url = client.get_queue_url(QueueName=queue_name)["QueueUrl"]
    client.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    client.send_message(
        QueueUrl=url,
        MessageBody='{"id": 7}',
        MessageAttributes={
            "tenant": {"DataType": "String", "StringValue": "acme"},
            "weight": {"DataType": "Number", "StringValue": "2.5"},
        },
    )

    # The local listener's event; failing it leaves the message for the Lambda path.
    local: list[BindingEvent] = []
    stop = threading.Event()

    def fail(event: BindingEvent) -> None:
        local.append(event)
        stop.set()
        raise RuntimeError("keep the message")

    sqs.SqsInput("orders", metadata).listen(fail, stop)
    # The failed message comes back after the listener's first back-off (1 s).
    entry = client.receive_message(
        QueueUrl=url,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
        WaitTimeSeconds=5,
    )["Messages"][0]

    spec = importlib.util.spec_from_file_location("built_entry", out / "portabind_lambda.py")
    assert spec is not None and spec.loader is not None
    entry_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry_module)
    result = entry_module.handle_orders({"Records": [lambda_record(entry, arn)]}, None)
    assert result == {"batchItemFailures": []}
    (remote,) = entry_module.function.app.seen

    (listened,) = local
    assert remote.name == listened.name == "orders"
    assert remote.data == listened.data == b'{"id": 7}'
    assert set(remote.metadata) == set(listened.metadata)
    for key in ("messageId", "eventSourceARN", "SentTimestamp", "tenant", "weight"):
        assert remote.metadata[key] == listened.metadata[key]
    # the two paths received the message twice, so these differ by design
    assert listened.metadata["ApproximateReceiveCount"] == "1"
    assert remote.metadata["ApproximateReceiveCount"] == "2"
