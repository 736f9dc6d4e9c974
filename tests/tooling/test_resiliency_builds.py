"""One Resiliency document with every policy kind, built for each target: each value is in
the artifact, or `build` names the policy it cannot express (a warning, exit 0); the outbound
policies ship with the function and apply in its runtime."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import yaml

from portabind.bundled import BundledFunction
from portabind.resiliency import OUTBOUND
from portabind.tooling.cli import main

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

RESILIENCY = {
    "apiVersion": "dapr.io/v1alpha1",
    "kind": "Resiliency",
    "metadata": {"name": "everything"},
    "spec": {
        "policies": {
            "timeouts": {"general": "45s"},
            "retries": {
                "steady": {"policy": "constant", "duration": "60s", "maxRetries": 4},
                "growing": {
                    "policy": "exponential",
                    "initialInterval": "2s",
                    "maxInterval": "30s",
                    "maxElapsedTime": "10m",
                    "maxRetries": 7,
                },
            },
            "circuitBreakers": {
                "tripper": {
                    "maxRequests": 2,
                    "interval": "30s",
                    "timeout": "90s",
                    "trip": "consecutiveFailures > 3",
                }
            },
        },
        "targets": {
            "components": {
                "orders": {
                    "inbound": {
                        "timeout": "general",
                        "retry": "steady",
                        "circuitBreaker": "tripper",
                    }
                },
                "events": {"inbound": {"retry": "growing"}},
                "receipts": {"outbound": {"retry": "steady", "circuitBreaker": "tripper"}},
            }
        },
    },
}
APP = """\
from portabind import App

app = App()


@app.binding("orders")
def on_order(event): ...


@app.binding("events")
def on_event(event): ...
"""


def component(name: str, type_: str, **metadata: str) -> dict[str, Any]:
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name},
        "spec": {
            "type": type_,
            "version": "v1",
            "metadata": [{"name": k, "value": v} for k, v in metadata.items()],
        },
    }


PROFILES = {
    "aws": [
        component("orders", "bindings.aws.sqs", queueName="orders", region="us-east-1"),
        component("events", "bindings.aws.kinesis", streamName="events", region="us-east-1"),
        component("receipts", "bindings.aws.s3", bucket="receipts", region="us-east-1"),
    ],
    "azure": [
        component("orders", "bindings.azure.storagequeues", accountName="acct", queueName="orders"),
        component(
            "events",
            "bindings.kafka",
            brokers="broker:9092",
            topics="events",
            consumerGroup="app",
            authType="none",
        ),
        component("receipts", "bindings.azure.blobstorage", accountName="acct", containerName="r"),
    ],
    "gcp": [
        component("orders", "bindings.gcp.pubsub", projectId="demo-project", topic="orders"),
        component("events", "bindings.gcp.pubsub", projectId="demo-project", topic="events"),
        component("receipts", "bindings.gcp.bucket", projectId="demo-project", bucket="r"),
    ],
}


def build(tmp_path: Path, target: str, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    (tmp_path / "app.py").write_text(APP)
    components = tmp_path / "components"
    components.mkdir()
    (components / "all.yaml").write_text(
        yaml.safe_dump_all([*PROFILES[target], RESILIENCY], sort_keys=False)
    )
    out = tmp_path / "out"
    code = main(["build", str(tmp_path), "--target", target, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    return out, err


def warned(err: str, component: str, kind: str, policy: str) -> bool:
    return any(
        f"component {component!r}" in line
        and f"cannot express the inbound {kind} policy {policy!r}" in line
        for line in err.splitlines()
    )


def test_aws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, err = build(tmp_path, "aws", capsys)
    resources = yaml.safe_load((out / "template.yaml").read_text())["Resources"]
    orders = resources["OrdersFunction"]["Properties"]
    assert orders["Timeout"] == 45  # timeout: general
    queue = resources["OrdersQueue"]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5  # steady: maxRetries 4
    assert queue["VisibilityTimeout"] == 60  # steady: duration 60s
    assert warned(err, "orders", "circuitBreaker", "tripper")
    stream = resources["EventsFunction"]["Properties"]["Events"]["Kinesis"]["Properties"]
    assert stream["MaximumRetryAttempts"] == 7  # growing: maxRetries
    assert stream["MaximumRecordAgeInSeconds"] == 600  # growing: maxElapsedTime
    assert warned(err, "events", "retry", "growing")  # initialInterval, maxInterval
    assert_outbound_ships(out)


def test_azure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, err = build(tmp_path, "azure", capsys)
    host = json.loads((out / "host.json").read_text())
    assert host["functionTimeout"] == "00:00:45"
    assert host["extensions"]["queues"]["maxDequeueCount"] == 5
    assert host["extensions"]["queues"]["visibilityTimeout"] == "00:01:00"
    assert warned(err, "orders", "circuitBreaker", "tripper")
    function_app = (out / "function_app.py").read_text()
    assert (
        '@app.retry(strategy="exponential_backoff", max_retry_count="7", '
        'minimum_interval="00:00:02", maximum_interval="00:00:30")'
    ) in function_app
    assert function_app.count("@app.retry(") == 1  # the kafka trigger's default is replaced
    assert warned(err, "events", "retry", "growing")  # multiplier, randomization, elapsed time
    assert_outbound_ships(out)


def test_gcp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, err = build(tmp_path, "gcp", capsys)
    functions = {
        f["name"]: f for f in yaml.safe_load((out / "deploy.yaml").read_text())["functions"]
    }
    orders = functions["orders"]
    assert orders["timeout"] == "45s"
    assert orders["trigger"]["deadLetterPolicy"] == {
        "deadLetterTopic": "projects/demo-project/topics/orders-dead-letter",
        "maxDeliveryAttempts": 5,
    }
    assert orders["trigger"]["subscriptionRetryPolicy"] == {
        "minimumBackoff": "60s",
        "maximumBackoff": "60s",
    }
    assert warned(err, "orders", "circuitBreaker", "tripper")
    events = functions["events"]["trigger"]
    assert events["deadLetterPolicy"]["maxDeliveryAttempts"] == 8
    assert events["subscriptionRetryPolicy"] == {"minimumBackoff": "2s", "maximumBackoff": "30s"}
    assert warned(err, "events", "retry", "growing")
    script = (out / "deploy.sh").read_text()
    assert "--timeout=45s" in script
    assert "--max-delivery-attempts=5" in script and "--min-retry-delay=60s" in script
    assert_outbound_ships(out)


def assert_outbound_ships(out: Path) -> None:
    """The built function applies the outbound policies itself."""
    function = BundledFunction.load(out, environ={})
    policy = function.runtime.resiliency.policies.policy("receipts", OUTBOUND)
    assert policy.names() == {"retry": "steady", "circuitBreaker": "tripper"}
