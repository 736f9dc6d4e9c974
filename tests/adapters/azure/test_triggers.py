"""`portabind build --target azure` for cron, the HTTP trigger extension, kafka and rabbitmq:
the azure-functions library indexes the generated app into timerTrigger (the exact
NCRONTAB), httpTrigger, kafkaTrigger and rabbitMQTrigger bindings, and the indexed functions,
called with the library's own request objects, hand the handler the normalized event."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

from portabind.bindings.kafka import event_from_record
from portabind.errors import UserError
from tests.adapters.azure.function_apps import build, recorded_events, run_driver, write_project

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
    return {"accepted": event.json()["id"]}


@app.binding("stream")
def stream(event: BindingEvent) -> None:
    if event.data == b"poison":
        raise ValueError("cannot handle this record")
    record(event)


@app.binding("jobs")
def jobs(event: BindingEvent) -> None:
    record(event)
"""


def component(
    name: str, type_: str, annotations: dict[str, str] | None = None, **values: Any
) -> Any:
    items = [
        {"name": key, "secretKeyRef": {"name": value[1:]}}
        if isinstance(value, str) and value.startswith("$")
        else {"name": key, "value": value}
        for key, value in values.items()
    ]
    metadata: dict[str, Any] = {"name": name}
    if annotations:
        metadata["annotations"] = {f"portabind.io/{k}": v for k, v in annotations.items()}
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": metadata,
        "spec": {"type": type_, "version": "v1", "metadata": items},
        "auth": {"secretStore": "env"},
    }


SECRETS = {
    "apiVersion": "dapr.io/v1alpha1",
    "kind": "Component",
    "metadata": {"name": "env"},
    "spec": {"type": "secretstores.local.env", "version": "v1"},
}


def project_dir(tmp_path: Path, app: str, **overrides: Any) -> Path:
    documents = {
        "tick": component(
            "tick", "bindings.cron", schedule="CRON_TZ=Europe/Paris 0 */5 8-18 * * MON-FRI"
        ),
        "api": component(
            "api",
            "bindings.http",
            {"trigger": "true", "path": "/orders", "method": "POST", "authLevel": "anonymous"},
        ),
        "stream": component(
            "stream",
            "bindings.kafka",
            brokers="broker-1:9093,broker-2:9093",
            topics="orders,refunds",
            consumerGroup="portabind",
            authType="password",
            saslUsername="svc-user",
            saslPassword="$KAFKA_PASSWORD",
            saslMechanism="SHA-512",
            backOffDuration="2s",
        ),
        "jobs": component(
            "jobs", "bindings.rabbitmq", host="$RABBITMQ_URL", queueName="jobs", prefetchCount=10
        ),
    }
    documents.update(overrides)
    return write_project(tmp_path, app, [SECRETS, *documents.values()])


# Runs in a fresh interpreter with OUT first on sys.path, as the Functions worker does.
DRIVER = r"""
import base64
import azure.functions as func
from azure.functions.timer import TimerRequest


class Context(func.Context):
    # The worker's context, reduced to what a function reads.
    invocation_id = "inv-7"
    function_name = function_directory = trace_context = retry_context = None
    thread_local_storage = None


call("tick", TimerRequest(past_due=True), Context())
response = call(
    "api",
    func.HttpRequest(
        method="POST",
        url="https://orders.azurewebsites.net/orders?dry=1",
        headers={"content-type": "application/json", "x-tag": "t1"},
        params={"dry": "1"},
        body=b'{"id": 3}',
    ),
    Context(),
)
result["response"] = {
    "status": response.status_code,
    "body": response.get_body().decode(),
    "mimetype": response.mimetype,
    "content_type": response.headers.get("Content-Type"),
}
call(
    "stream_orders",
    func.KafkaEvent(
        body=b"hello", key="k1", offset=42, partition=1, topic="orders",
        timestamp="2026-01-02T03:04:05.1234567Z",
        headers=[{"Key": "trace", "Value": base64.b64encode(b"abc").decode()}],
    ),
)
call("jobs", b"job-body")


# A failure reaches the host: it answers 500, or retries the record by the retry policy.
result["failures"] = {
    "api": outcome(
        "api",
        func.HttpRequest(method="POST", url="https://o.net/orders", headers={}, body=b"{}"),
        Context(),
    ),
    "stream": outcome(
        "stream_refunds",
        func.KafkaEvent(body=b"poison", offset=1, partition=0, topic="refunds", headers=[]),
    ),
}
"""


# Module-scoped: the tests only read what one build and one run of the driver left.
@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, recording_app: Callable[[str], str]
) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    tmp_path = tmp_path_factory.mktemp("built")
    out = tmp_path / "out"
    build(project_dir(tmp_path, recording_app(HANDLERS)), out)
    record = tmp_path / "events.jsonl"
    return out, run_driver(out, DRIVER, record), recorded_events(record)


def trigger(result: dict[str, Any], name: str) -> dict[str, Any]:
    binding: dict[str, Any] = result[name]["doc"]["bindings"][0]
    return binding


def test_cron_becomes_a_timer_trigger_with_the_exact_ncrontab(built: Any) -> None:
    out, result, events = built
    assert trigger(result, "tick") == {
        "direction": "IN",
        "type": "timerTrigger",
        "name": "timer",
        "schedule": "0 */5 8-18 * * 1-5",
    }
    deployed = {s["name"]: s["value"] for s in json.loads((out / "appsettings.json").read_text())}
    assert deployed["WEBSITE_TIME_ZONE"] == "Europe/Paris"
    (tick,) = [e for e in events if e["name"] == "tick"]
    assert tick["data"] == ""
    metadata = tick["metadata"]
    assert metadata["timeZone"] == "Europe/Paris"
    assert datetime.fromisoformat(metadata["readTimeUTC"].replace("Z", "+00:00")).tzinfo
    assert metadata["readTimeUTC"].endswith("Z")
    assert (metadata["invocationId"], metadata["pastDue"]) == ("inv-7", "true")


def test_http_trigger_is_a_route_answering_with_the_handler_result(built: Any) -> None:
    out, result, events = built
    bindings = result["api"]["doc"]["bindings"]
    assert bindings == [
        {
            "direction": "IN",
            "type": "httpTrigger",
            "name": "req",
            "methods": ["POST"],
            "authLevel": "ANONYMOUS",
            "route": "orders",
        },
        {"direction": "OUT", "type": "http", "name": "$return"},
    ]
    host = json.loads((out / "host.json").read_text())
    assert host["extensions"]["http"] == {"routePrefix": ""}
    assert "queues" not in host["extensions"]
    assert result["response"]["status"] == 200
    assert json.loads(result["response"]["body"]) == {"accepted": 3}
    assert result["response"]["content_type"] == "application/json"
    api = next(e for e in events if e["name"] == "api")  # the second one fails
    assert bytes.fromhex(api["data"]) == b'{"id": 3}'
    assert api["metadata"] == {
        "Content-Type": "application/json",
        "X-Tag": "t1",
        "query": "dry=1",
        "method": "POST",
        "path": "/orders",
        "requestId": "inv-7",
    }


def test_kafka_becomes_one_kafka_trigger_per_topic_with_setting_names(built: Any) -> None:
    out, result, events = built
    for topic in ("orders", "refunds"):
        binding = trigger(result, f"stream_{topic}")
        assert binding["type"] == "kafkaTrigger"
        assert binding["topic"] == topic
        assert binding["brokerList"] == "PORTABIND_STREAM_BROKERS"
        assert binding["consumerGroup"] == "portabind"
        assert binding["username"] == "PORTABIND_STREAM_SASLUSERNAME"
        assert binding["password"] == "PORTABIND_SECRET_STREAM_SASLPASSWORD"
        assert (binding["authenticationMode"], binding["protocol"]) == ("SCRAMSHA512", "SASLSSL")
        assert binding["dataType"] == "BINARY"
        assert result[f"stream_{topic}"]["retry"] == {
            "setting_name": "retry_policy",
            "strategy": "fixed_delay",
            "max_retry_count": "-1",
            "delay_interval": "00:00:02",
        }
    deployed = {s["name"]: s["value"] for s in json.loads((out / "appsettings.json").read_text())}
    assert deployed["PORTABIND_STREAM_BROKERS"] == "broker-1:9093,broker-2:9093"
    assert deployed["PORTABIND_STREAM_SASLUSERNAME"] == "svc-user"
    assert deployed["PORTABIND_SECRET_STREAM_SASLPASSWORD"].startswith("@Microsoft.KeyVault(")
    local = json.loads((out / "local.settings.json").read_text())["Values"]
    assert local["PORTABIND_SECRET_STREAM_SASLPASSWORD"] == ""
    (record,) = [e for e in events if e["name"] == "stream"]
    # The same record through the local listener's mapping gives the same event.
    local_event = event_from_record(
        "stream",
        value=b"hello",
        key=b"k1",
        topic="orders",
        partition=1,
        offset=42,
        timestamp_ms=1767323045123,
        headers=[("trace", b"abc")],
    )
    assert bytes.fromhex(record["data"]) == local_event.data
    assert record["metadata"] == dict(local_event.metadata)


def test_a_handler_failure_reaches_the_functions_host(built: Any) -> None:
    _, result, events = built
    assert result["failures"] == {"api": "KeyError", "stream": "ValueError"}
    assert [e["name"] for e in events].count("stream") == 1  # the poison record left no trace


def test_rabbitmq_becomes_a_rabbitmq_trigger(built: Any) -> None:
    out, result, events = built
    assert trigger(result, "jobs") == {
        "direction": "IN",
        "dataType": "BINARY",
        "type": "rabbitMQTrigger",
        "name": "message",
        "queueName": "jobs",
        "connectionStringSetting": "PORTABIND_SECRET_JOBS_HOST",
    }
    host = json.loads((out / "host.json").read_text())
    assert host["extensions"]["rabbitMQ"] == {"prefetchCount": 10}
    (job,) = [e for e in events if e["name"] == "jobs"]
    assert (bytes.fromhex(job["data"]), job["metadata"]) == (b"job-body", {})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"tick": component("tick", "bindings.cron", schedule="30 * * * * *")},
            None,  # seconds are fine on Azure
        ),
        (
            {"tick": component("tick", "bindings.cron", schedule="@every 7m")},
            r"tick.*schedule.*@every 420s does not divide",
        ),
        (
            {"tick": component("tick", "bindings.cron", schedule="0 0 0 1 * MON")},
            r"tick.*schedule.*both restricted",
        ),
        ({"api": component("api", "bindings.http", url="http://x")}, r"api.*portabind.io/trigger"),
        (
            {"api": component("api", "bindings.http", {"trigger": "true", "path": "/a/{id}"})},
            r"api.*portabind.io/path",
        ),
        (
            {
                "stream": component(
                    "stream", "bindings.kafka", brokers="b:9092", authType="none", topics="t"
                )
            },
            r"stream.*consumerGroup",
        ),
        (
            {
                "stream": component(
                    "stream",
                    "bindings.kafka",
                    brokers="b:9092",
                    authType="mtls",
                    topics="t",
                    consumerGroup="g",
                    clientCert="cert",
                    clientKey="$KEY",
                )
            },
            r"stream.*authType",
        ),
    ],
)
def test_what_azure_cannot_express_is_a_build_error_naming_component_and_field(
    tmp_path: Path,
    recording_app: Callable[[str], str],
    override: dict[str, Any],
    message: str | None,
) -> None:
    root = project_dir(tmp_path, recording_app(HANDLERS), **override)
    if message is None:
        build(root, tmp_path / "out")
        return
    with pytest.raises(UserError, match=message):
        build(root, tmp_path / "out")


def test_timer_zones_must_agree_app_wide(
    tmp_path: Path, recording_app: Callable[[str], str]
) -> None:
    other = component("jobs", "bindings.cron", schedule="CRON_TZ=Asia/Tokyo @daily")
    with pytest.raises(UserError, match=r"app-wide.*Europe/Paris.*Asia/Tokyo"):
        build(project_dir(tmp_path, recording_app(HANDLERS), jobs=other), tmp_path / "out")


def test_kafka_exponential_back_off_becomes_the_exponential_retry_policy(
    tmp_path: Path, recording_app: Callable[[str], str]
) -> None:
    stream = component(
        "stream",
        "bindings.kafka",
        brokers="broker-1:9093",
        topics="orders",
        consumerGroup="portabind",
        authType="none",
        backOffPolicy="exponential",
        backOffInitialInterval="2s",
        backOffMaxInterval="1m",
    )
    out = tmp_path / "out"
    build(project_dir(tmp_path, recording_app(HANDLERS), stream=stream), out)
    assert (
        '@app.retry(strategy="exponential_backoff", max_retry_count="-1", '
        'minimum_interval="00:00:02", maximum_interval="00:01:00")'
    ) in (out / "function_app.py").read_text()
