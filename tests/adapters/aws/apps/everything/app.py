"""Every AWS trigger portabind builds, one handler each: the tests feed Lambda-shaped events
through the built entry and read what each handler saw in `app.seen`."""

from __future__ import annotations

from typing import Any

from portabind import App, BindingEvent

app = App()
seen: list[BindingEvent] = []

INPUTS = (
    "orders",  # bindings.aws.sqs → SQS
    "clicks",  # bindings.aws.kinesis → Kinesis
    "alerts",  # bindings.aws.sns (extension) → SNS
    "uploads",  # bindings.aws.s3 (extension), bucket in the stack → S3
    "archive",  # bindings.aws.s3 (extension), existing bucket → EventBridgeRule
    "profiles",  # bindings.aws.dynamodb (extension) → DynamoDB stream
    "nightly",  # bindings.cron → ScheduleV2
    "payments",  # bindings.kafka, self-managed → SelfManagedKafka
    "telemetry",  # bindings.kafka on MSK → MSK
    "jobs",  # bindings.rabbitmq on Amazon MQ → MQ
    "sensors",  # bindings.mqtt3 on IoT Core → IoTRule
)


def record(event: BindingEvent) -> None:
    """Remember the event; fail it when its payload asks to (`fail` in the data)."""
    seen.append(event)
    if b"fail" in event.data:
        raise RuntimeError(f"{event.name}: the payload asked to fail")


for name in INPUTS:
    app.binding(name)(record)


@app.binding("webhook")  # bindings.http (extension) → HttpApi
def webhook(event: BindingEvent) -> Any:
    record(event)
    if event.metadata["method"] == "DELETE":
        return None
    return {"received": event.text(), "path": event.metadata["path"]}
