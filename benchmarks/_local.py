"""What the benchmarks share to set up local servers and projects: AWS clients for a moto
server, SQS queues with or without a redrive policy, and component files written from a dict
of metadata fields."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

COMPONENT = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: {name}
spec:
  type: {type}
  version: v1
  metadata:
{metadata}
"""


def aws_client(service: str, endpoint: str) -> Any:
    """A boto3 client for the moto server at `endpoint` (moto takes any credentials)."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def sqs_queue(sqs: Any, name: str, *, redrive: bool) -> str:
    """Create queue `name` through client `sqs` and return its URL; with `redrive`, with a
    redrive policy to `<name>-dlq` (the SQS listener then deletes each message at once)."""
    attributes: dict[str, str] = {}
    if redrive:
        dead_letter = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dead_letter, AttributeNames=["QueueArn"])
        policy = {"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": 5}
        attributes["RedrivePolicy"] = json.dumps(policy)
    url: str = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url


def write_component(directory: Path, name: str, type_: str, fields: dict[str, str]) -> None:
    """`directory/<name>.yaml`. A value `env:VAR` becomes an envRef: a development key is no
    secret, but written inline it would draw portabind's warning."""
    metadata = "\n".join(
        f"    - name: {k}\n      envRef: {v[4:]}"
        if v.startswith("env:")
        else f"    - name: {k}\n      value: {v!r}"
        for k, v in fields.items()
    )
    (directory / f"{name}.yaml").write_text(
        COMPONENT.format(name=name, type=type_, metadata=metadata)
    )
