"""What the benchmarks share to set up local servers and projects: AWS clients for a moto
server, SQS queues with or without a redrive policy, and component files written from a dict
of metadata fields."""

from __future__ import annotations

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


def sqs_queue(endpoint: str, name: str, *, redrive: bool) -> str:
    """The URL of queue `name` on the moto server at `endpoint`, made as `portabind run
    --emulate` makes one (`bindings.aws.sqs.provision`); with `redrive`, with a redrive
    policy to `<name>-dlq` after 5 receives (the SQS listener then deletes each message at
    once)."""
    from portabind.bindings.aws import _aws, sqs

    fields = {"queueName": name, **_aws.emulate({"moto": endpoint})}
    redrives = {"maxReceiveCount": "5"} if redrive else {}
    sqs.provision(
        sqs.SqsMetadata.model_validate(fields), sqs.SqsAnnotations.model_validate(redrives)
    )
    url: str = aws_client("sqs", endpoint).get_queue_url(QueueName=name)["QueueUrl"]
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
