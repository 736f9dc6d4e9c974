"""The `portabind.io/` annotations the AWS build reads (docs/aws.md), by binding type.

`BY_TYPE` maps a Dapr binding type to the models that apply to a component of that type on
AWS. An annotation a binding reads too is declared once, in the binding's model, and listed
here: the SQS queue's visibility timeout and redrive (`SqsAnnotations`), a stream's
`startingPosition` (`StreamAnnotations`), the S3 notification (`S3Annotations`), the HTTP
trigger (`HttpAnnotations`), `trigger` (`ExtensionTrigger`). There is no `COMMON`: no AWS
annotation applies to every type.

What depends on more than one value (a FIFO queue's batch of at most 10, retries a trigger
cannot honour, subnets without security groups) is the build's to refuse.
"""

from __future__ import annotations

from typing import Annotated

from portabind.annotations import (
    Annotations,
    CommaList,
    ExtensionTrigger,
    Flag,
    arn,
    text_matching,
    whole_number,
    whole_seconds,
)
from portabind.bindings.aws.kinesis import StreamAnnotations
from portabind.bindings.aws.s3 import S3Annotations, S3Output
from portabind.bindings.aws.sqs import SqsAnnotations
from portabind.bindings.http import HttpAnnotations
from portabind.metadata import AfterValidator, Bounds, setting

#: Lambda's bounds for an event source mapping's `BatchSize` (a FIFO queue takes at most 10)
#: and `MaximumBatchingWindowInSeconds`.
MAX_BATCH_SIZE = 10000
MAX_BATCH_WINDOW = 300
#: Lambda's bound for a stream's `MaximumRetryAttempts` (asynchronous invocations: 0 to 2).
MAX_RETRY_ATTEMPTS = 10000
#: Lambda's bound for a Kafka trigger's `ProvisionedPollerConfig.MinimumPollers`.
MAX_POLLERS = 200


class Existing(Annotations):
    """`existing`: subscribe to a queue, stream, bucket or table that exists already; the
    stack creates nothing."""

    existing: Flag = setting("existing", False, description="use the resource that exists")


class Batching(Annotations):
    """The event source mapping's batching."""

    batch_size: Annotated[int, whole_number(1, MAX_BATCH_SIZE)] | None = setting(
        "batchSize", None, description="records per invocation"
    )
    batch_window: Annotated[int, whole_seconds(MAX_BATCH_WINDOW)] | None = setting(
        "batchWindow", None, description="MaximumBatchingWindowInSeconds"
    )


class Retries(Annotations):
    """Retries and the on-failure destination of every trigger but SQS (whose retries are
    its queue's redrive, `SqsAnnotations`); an annotation a trigger cannot honour is the
    build's to refuse."""

    max_retries: Annotated[int, whole_number(-1, MAX_RETRY_ATTEMPTS)] | None = setting(
        "maxRetries", None, description="retries before giving up (-1: forever)"
    )
    bisect_on_error: Flag | None = setting(
        "bisectOnError", None, description="split a failing batch in two and retry each"
    )
    on_failure: Annotated[str, arn("sqs", "sns", words=("dlq",))] | None = setting(
        "onFailure", None, description="an SQS queue or SNS topic ARN, or dlq"
    )


class TableStream(Annotations):
    """`streamArn`: the stream of an existing table (its ARN carries a creation time, so it
    cannot be derived from the table's name)."""

    stream_arn: Annotated[str, arn("dynamodb")] | None = setting(
        "streamArn", None, description="the existing table's stream ARN"
    )


def _s3_operation(name: str) -> str:
    if name not in S3Output.operations:
        raise ValueError(f"must be one of {', '.join(S3Output.operations)}")
    return name


class S3Policy(Annotations):
    """`operations`: the S3 operations the app calls, which narrow the output's IAM policy."""

    operations: (
        Annotated[CommaList[Annotated[str, AfterValidator(_s3_operation)]], Bounds(min_length=1)]
        | None
    ) = setting("operations", None, description="comma-separated S3 operations the app calls")


class SourceSecret(Annotations):
    """`secretArn`: the Secrets Manager secret an event source authenticates with."""

    secret_arn: Annotated[str, arn("secretsmanager")] | None = setting(
        "secretArn", None, description="the secret with Lambda's credential JSON"
    )


class KafkaTrigger(Annotations):
    """An MSK or self-managed Kafka event source."""

    msk_cluster_arn: Annotated[str, arn("kafka")] | None = setting(
        "mskClusterArn", None, description="read from this MSK cluster instead of brokers"
    )
    provisioned_pollers: Annotated[int, whole_number(1, MAX_POLLERS)] | None = setting(
        "provisionedPollers", None, description="provisioned mode's minimum pollers"
    )
    ca_secret_arn: Annotated[str, arn("secretsmanager")] | None = setting(
        "caSecretArn", None, description="the secret holding the brokers' root CA"
    )
    subnets: CommaList[
        Annotated[str, text_matching(r"subnet-[0-9a-f]+", "a subnet id such as subnet-0a1b2c3d")]
    ] = setting("subnets", (), description="the brokers' VPC subnets")
    security_groups: CommaList[
        Annotated[str, text_matching(r"sg-[0-9a-f]+", "a security group id such as sg-0a1b2c3d")]
    ] = setting("securityGroups", (), description="the brokers' VPC security groups")


class MqTrigger(Annotations):
    """An Amazon MQ for RabbitMQ event source."""

    broker_arn: Annotated[str, arn("mq")] | None = setting(
        "brokerArn", None, description="the Amazon MQ broker"
    )
    virtual_host: str | None = setting(
        "virtualHost", None, description="virtual host (default: the path of a literal host URL)"
    )


BY_TYPE: dict[str, tuple[type[Annotations], ...]] = {
    "bindings.aws.sqs": (SqsAnnotations, Existing, Batching),
    "bindings.aws.kinesis": (StreamAnnotations, Existing, Batching, Retries),
    "bindings.aws.dynamodb": (
        ExtensionTrigger,
        StreamAnnotations,
        Existing,
        TableStream,
        Batching,
        Retries,
    ),
    "bindings.aws.sns": (ExtensionTrigger, Retries),
    "bindings.aws.s3": (ExtensionTrigger, S3Annotations, Existing, S3Policy, Retries),
    "bindings.cron": (Retries,),
    "bindings.http": (HttpAnnotations, Retries),
    "bindings.kafka": (KafkaTrigger, SourceSecret, Batching, Retries),
    "bindings.rabbitmq": (MqTrigger, SourceSecret, Batching, Retries),
    "bindings.mqtt3": (Retries,),
}
