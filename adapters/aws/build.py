"""`portabind build --target aws`: an AWS SAM application in OUT.

OUT holds `template.yaml`, the entry module `portabind_lambda.py`, the user's app modules,
the components profile (its YAML, and the JSON snapshot of it the function loads at cold
start; a secrets file next to it is never copied), the parts of portabind the app runs on
(core, the binding modules its components use, this adapter's runtime) and
`requirements.txt`, so `sam build && sam deploy` needs nothing else.

The template has one `AWS::Serverless::Function` per input binding with a handler, with the
native event source its `Trigger` names (`TARGET`; docs/aws.md), `FunctionResponseTypes:
[ReportBatchItemFailures]` on batch sources, least-privilege policies for every output the
profile declares (`POLICIES`), retry and dead-letter settings from annotations or a Dapr
Resiliency document, and each `secretKeyRef` as an environment variable (`secret_env_name`)
holding a Secrets Manager dynamic reference, `{{resolve:secretsmanager:<name>:SecretString:
<key>}}`, which CloudFormation resolves at deploy time: the template never holds a secret.
docs/aws.md lists every `portabind.io/` annotation this build reads.

Resources the stack owns by default, as SAM users usually do: an SQS trigger's queue (with a
dead letter queue), a Kinesis trigger's stream and an S3 trigger's bucket. Annotate
`portabind.io/existing: "true"` to subscribe to one that exists already.
"""

from __future__ import annotations

import compileall
import json
import math
import py_compile
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import yaml

from portabind import registry
from portabind.adapters.aws.annotations import (
    BY_TYPE,
    Batching,
    Existing,
    KafkaTrigger,
    MqTrigger,
    Retries,
    S3Policy,
    SourceSecret,
    TableStream,
)
from portabind.adapters.aws.runtime import Function
from portabind.adapters.aws.schedule import translate
from portabind.annotations import ExtensionTrigger, field_name
from portabind.bindings.aws.kinesis import StartingPosition, StreamAnnotations
from portabind.bindings.aws.s3 import S3Annotations
from portabind.bindings.aws.sqs import SqsAnnotations, redrive
from portabind.bindings.cron import ScheduleError, parse_schedule
from portabind.bindings.http import HttpAnnotations
from portabind.errors import BuildError, UserError
from portabind.resiliency import INBOUND, Policy, Retry
from portabind.resiliency import policies as resiliency_policies
from portabind.secrets import secret_env_name
from portabind.secretstores import store_settings
from portabind.tooling import bundle, entry
from portabind.tooling.crontab import Untranslatable
from portabind.tooling.targets import Target, Trigger, cannot_express

if TYPE_CHECKING:
    from pathlib import Path

    from portabind.annotations import Annotations, ParsedAnnotations
    from portabind.components import Component, Value
    from portabind.tooling.project import Project

T = TypeVar("T")
A = TypeVar("A", bound="Annotations")
_RUN = "`portabind run` or a Dapr sidecar"
#: Output type → (SAM policy template, its parameter, the Dapr field giving the value).
#: DynamoDB's only operation is `create` (PutItem): the write policy suffices. S3 gets
#: S3CrudPolicy, or narrower from `portabind.io/operations` (`_s3_templates`).
POLICIES = {
    "bindings.aws.sqs": ("SQSSendMessagePolicy", "QueueName", "queueName"),
    "bindings.aws.sns": ("SNSPublishMessagePolicy", "TopicName", "topicArn"),
    "bindings.aws.dynamodb": ("DynamoDBWritePolicy", "TableName", "table"),
}
#: S3 operations by the policy template that allows them (presign signs a GET).
_S3_READS = frozenset({"get", "list", "presign", "bulkGet"})
_S3_WRITES = frozenset({"create", "bulkCreate"})
_S3_DELETES = frozenset({"delete", "bulkDelete"})
#: Kinesis' only operation is `create` (PutRecord); KinesisCrudPolicy would also grant
#: CreateStream and DeleteStream, so this statement is written inline.
KINESIS_PUT = ("kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStreamSummary")
ENTRY_MODULE = "portabind_lambda"
SUPPORTED_RUNTIMES = ("python3.11", "python3.12", "python3.13")
DEFAULT_RUNTIME = "python3.12"
#: Function timeout unless an inbound timeout policy sets it (Lambda's longest: 900 s); SQS
#: needs the queue's visibility timeout at least this long, and AWS advises six times it so
#: retries of a throttled batch do not redeliver early.
TIMEOUT_SECONDS = 30
MAX_TIMEOUT_SECONDS = 900
VISIBILITY_FACTOR = 6
#: Lambda's bounds for a record's and an asynchronous event's maximum age.
RECORD_AGE = (60, 604800)
EVENT_AGE = (60, 21600)
FOURTEEN_DAYS = 14 * 24 * 3600
#: Extras whose packages every Lambda needs: boto3 (and Powertools, which the handlers do
#: not import, for the user's own code).
BASE_EXTRA = "aws"
#: Kafka `authType`/`saslMechanism` → Lambda's SourceAccessConfigurations type; MSK takes
#: SCRAM-SHA-512 only.
_SASL = {
    "SHA-512": "SASL_SCRAM_512_AUTH",
    "SHA-256": "SASL_SCRAM_256_AUTH",
    "PLAINTEXT": "BASIC_AUTH",
}
_MSK_SASL = frozenset({"SHA-512"})
#: Lambda's async invocations (S3, SNS, schedules, IoT) retry at most twice.
ASYNC_MAX_RETRIES = 2


def _logical_id(name: str, suffix: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]
    base = "".join(w[0].upper() + w[1:] for w in words) or "Binding"
    return ("C" + base if base[0].isdigit() else base) + suffix


def _handler_name(component: str) -> str:
    return "handle_" + re.sub(r"\W", "_", component)


def _runtime() -> str:
    """The build interpreter's Lambda runtime when Lambda has it: the bytecode compiled
    here then loads as is (the read-only task root cannot cache it at cold start)."""
    current = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return current if current in SUPPORTED_RUNTIMES else DEFAULT_RUNTIME


def _value(component: Component, field: str) -> tuple[str, Value] | None:
    """The component's entry for Dapr field `field` (any alias), with the key it used."""
    return component.first_of(registry.binding_for(component).metadata.field_keys()[field])


def _literal(component: Component, field: str, *, required: bool = True) -> str | None:
    """A component field that must be a literal to appear in the template (a resource name)."""
    found = _value(component, field)
    if found is None:
        if required:
            raise component.error("is required", field=field)
        return None
    key, value = found
    if value.literal is not None:
        return value.literal
    raise component.error(
        "must be a literal value for the AWS build (it names a resource in the template)",
        field=key,
    )


def _name(component: Component, field: str) -> str:
    value = _literal(component, field)
    assert value is not None  # required
    return value


def _required(value: T | None, component: Component, key: str, what: str) -> T:
    """An annotation the AWS build cannot do without."""
    if value is None:
        raise component.error(
            f"the AWS build needs {what}",
            field=field_name(key),
            hint=f'add the annotation portabind.io/{key}: "..." (docs/aws.md)',
        )
    return value


def _arn(service: str, resource: str) -> dict[str, str]:
    return {
        "Fn::Sub": f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:"
        f"{resource}"
    }


@dataclass(frozen=True)
class _Retries:
    """How often a failed event is retried and where it goes then (`on_failure`: an SQS or
    SNS ARN, or `dlq` for a queue the stack creates). None: the platform's default."""

    max_retries: int | None = None
    bisect: bool | None = None
    on_failure: str | None = None
    #: The Resiliency inbound retry policy, where `max_retries` came from it (no annotation).
    policy: Retry | None = None

    @property
    def from_resiliency(self) -> bool:
        return self.policy is not None

    @property
    def annotated(self) -> bool:
        """Whether annotations ask for any of it (a Resiliency policy, often a default
        for every component, is applied only where the trigger has the setting)."""
        asked = (None if self.from_resiliency else self.max_retries, self.bisect, self.on_failure)
        return asked != (None, None, None)


def _retries(component: Component, policy: Policy, annotations: ParsedAnnotations) -> _Retries:
    """Annotations first (an SQS queue's are its redrive's), then the Resiliency document's
    inbound retry policy."""
    if component.type == "bindings.aws.sqs":
        sqs = annotations[SqsAnnotations]
        max_retries, bisect, on_failure = sqs.max_retries, None, sqs.on_failure
    elif Retries in TARGET.annotation_models(component):
        asked = annotations[Retries]
        max_retries, bisect, on_failure = asked.max_retries, asked.bisect_on_error, asked.on_failure
    else:
        max_retries, bisect, on_failure = None, None, None
    if max_retries is None and policy.retry is not None:
        return _Retries(policy.retry.max_retries, bisect, on_failure, policy.retry)
    return _Retries(max_retries, bisect, on_failure)


@dataclass
class _Function:
    """What one input's trigger contributes to its function and to the stack."""

    component: Component
    annotations: ParsedAnnotations
    retries: _Retries
    resources: dict[str, Any]
    policies: list[dict[str, Any]] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    #: The inbound Resiliency policies, the function's timeout (from them), and what this
    #: target cannot express of them.
    resiliency: Policy = field(default_factory=Policy)
    timeout: int = TIMEOUT_SECONDS
    warnings: list[UserError] = field(default_factory=list)

    def cannot(self, kind: str, why: str) -> None:
        """Say that the inbound `kind` policy (or part of it) is not expressed, and why."""
        name = self.resiliency.names()[kind]
        self.warnings.append(cannot_express(self.component, TARGET.name, kind, name, why))

    def retry_delays(self, why: str) -> None:
        """The retry policy's waits between attempts, which the trigger does not take."""
        retry = self.retries.policy
        if retry is not None:
            waits = "exponential back-off" if retry.exponential else f"duration {retry.duration:g}s"
            self.cannot("retry", f"its {waits}: {why}")

    def retry_age(self, properties: dict[str, Any], key: str, bounds: tuple[int, int]) -> None:
        """An exponential policy stops retrying after `maxElapsedTime`: the source's
        maximum age of a record or event."""
        retry = self.retries.policy
        if retry is not None and retry.exponential and retry.max_elapsed_time > 0:
            low, high = bounds
            properties[key] = min(max(math.ceil(retry.max_elapsed_time), low), high)

    def id(self, suffix: str) -> str:
        return _logical_id(self.component.name, suffix)

    def annotation(self, model: type[A]) -> A:
        """The component's annotations of `model` (one its type declares on AWS)."""
        return self.annotations[model]

    @property
    def existing(self) -> bool:
        """`portabind.io/existing`: subscribe to a resource that exists; create nothing."""
        return self.annotation(Existing).existing

    def refuse_retries(self, why: str) -> None:
        if self.retries.annotated:
            raise self.component.error(
                f"retry and dead-letter settings do not apply: {why}",
                hint="remove portabind.io/maxRetries, bisectOnError and onFailure for this "
                "component",
            )
        if self.retries.policy is not None:
            self.cannot("retry", why)

    def failure_destination(self) -> Any:
        """The on-failure destination's ARN, with the policy to send to it (a queue the
        stack creates for `dlq`)."""
        target = self.retries.on_failure
        if target == "dlq":
            queue_id = self.id("FailureQueue")
            self.resources[queue_id] = {
                "Type": "AWS::SQS::Queue",
                "Properties": {"MessageRetentionPeriod": FOURTEEN_DAYS},
            }
            self.policies.append(
                {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": [queue_id, "QueueName"]}}}
            )
            return {"Fn::GetAtt": [queue_id, "Arn"]}
        assert target is not None
        service, name = target.split(":")[2], target.rsplit(":", 1)[-1]
        if service == "sqs":
            self.policies.append({"SQSSendMessagePolicy": {"QueueName": name}})
        else:
            self.policies.append({"SNSPublishMessagePolicy": {"TopicName": name}})
        return target

    def stream_retries(self, properties: dict[str, Any], *, destination: bool = True) -> None:
        """Poll-based stream sources (Kinesis, DynamoDB, Kafka in provisioned mode)."""
        if self.retries.max_retries is not None:
            properties["MaximumRetryAttempts"] = self.retries.max_retries
        self.retry_age(properties, "MaximumRecordAgeInSeconds", RECORD_AGE)
        self.retry_delays("Lambda retries a failed batch at once")
        if self.retries.bisect is not None:
            properties["BisectBatchOnFunctionError"] = self.retries.bisect
        if self.retries.on_failure is not None:
            if not destination:
                raise self.component.error(
                    "a self-managed Kafka trigger has no on-failure destination in SAM",
                    field=field_name("onFailure"),
                )
            # No `Type`: cfn-lint rejects it on a stream event's destination; the policy is ours.
            properties["DestinationConfig"] = {
                "OnFailure": {"Destination": self.failure_destination()}
            }

    def async_retries(self, default: int | None = None) -> None:
        """Asynchronous invocations (S3, SNS, EventBridge, Scheduler, IoT): the function's
        EventInvokeConfig."""
        if self.retries.bisect:
            raise self.component.error(
                "bisectOnError applies to stream triggers only",
                field=field_name("bisectOnError"),
            )
        attempts = self.retries.max_retries if self.retries.max_retries is not None else default
        if attempts is not None and self.retries.from_resiliency:
            # Lambda's most for an async event: a Resiliency policy asking more (or forever)
            # gets that most rather than failing every build that uses the policy.
            if not 0 <= attempts <= ASYNC_MAX_RETRIES:
                self.cannot(
                    "retry",
                    f"maxRetries {attempts}: Lambda retries an asynchronous event at most "
                    f"{ASYNC_MAX_RETRIES} times, and does so",
                )
            attempts = ASYNC_MAX_RETRIES if attempts < 0 else min(attempts, ASYNC_MAX_RETRIES)
        if attempts is not None and not 0 <= attempts <= ASYNC_MAX_RETRIES:
            raise self.component.error(
                f"Lambda retries an asynchronous event 0 to {ASYNC_MAX_RETRIES} times, got "
                f"maxRetries {attempts}",
                field=field_name("maxRetries"),
            )
        config: dict[str, Any] = {}
        if attempts is not None:
            config["MaximumRetryAttempts"] = attempts
        self.retry_age(config, "MaximumEventAgeInSeconds", EVENT_AGE)
        self.retry_delays("Lambda waits about a minute, then two, between its own retries")
        if self.retries.on_failure is not None:
            destination = self.failure_destination()
            kind = "SNS" if ":sns:" in str(destination) else "SQS"
            config["DestinationConfig"] = {"OnFailure": {"Type": kind, "Destination": destination}}
        if config:
            self.properties["EventInvokeConfig"] = config


def _batching(
    function: _Function, properties: dict[str, Any], limit: int, *, window: bool = True
) -> None:
    component = function.component
    batching = function.annotation(Batching)
    batch_size, seconds = batching.batch_size, batching.batch_window
    if batch_size is not None and batch_size > limit:
        raise component.error(
            f"portabind.io/batchSize must be 1..{limit} for this source, got {batch_size}",
            field=field_name("batchSize"),
        )
    if batch_size is not None:
        properties["BatchSize"] = batch_size
    if seconds is not None:
        if not window:
            raise component.error(
                "this event source takes no batching window",
                field=field_name("batchWindow"),
            )
        properties["MaximumBatchingWindowInSeconds"] = seconds


def _sqs_event(function: _Function) -> dict[str, Any]:
    """The SQS event, adding the queue and its dead letter queue to the stack unless the
    component subscribes to an existing queue. Retries are the queue's redrive policy, read
    from the annotations as the local emulator reads them (`bindings.aws.sqs.redrive`): by
    default a `<queue>-dlq` after `DEFAULT_MAX_RECEIVE_COUNT` receives; maxRetries N gives
    N + 1 receives (-1: no redrive); onFailure an SQS ARN redrives to that queue."""
    component, resources = function.component, function.resources
    queue_name = _name(component, "queueName")
    fifo = queue_name.endswith(".fifo")
    retries = function.retries
    if function.existing:
        function.refuse_retries("an existing queue's redrive policy is set on the queue itself")
        queue_arn: Any = _arn("sqs", queue_name)
    else:
        queue_id = function.id("Queue")
        fifo_props = {"FifoQueue": True} if fifo else {}
        asked = function.annotation(SqsAnnotations)
        if asked.max_retries is None and retries.max_retries is not None:
            # A Resiliency policy counts as the annotation.
            asked = asked.model_copy(update={"max_retries": retries.max_retries})
        policy = redrive(queue_name, asked)
        if policy is None and retries.max_retries is None:
            policy = redrive(queue_name, SqsAnnotations.model_validate({"onFailure": "dlq"}))
        queue: dict[str, Any] = {
            "QueueName": queue_name,
            "VisibilityTimeout": _visibility(function),
        }
        if policy is not None:
            dlq_name, receives = policy
            if retries.on_failure not in (None, "dlq"):
                dead_letter: Any = retries.on_failure
            else:
                dlq_id = function.id("DeadLetterQueue")
                dead_letter = {"Fn::GetAtt": [dlq_id, "Arn"]}
                resources[dlq_id] = {
                    "Type": "AWS::SQS::Queue",
                    "Properties": {
                        "QueueName": dlq_name,
                        "MessageRetentionPeriod": FOURTEEN_DAYS,
                        **fifo_props,
                    },
                }
            queue["RedrivePolicy"] = {
                "deadLetterTargetArn": dead_letter,
                "maxReceiveCount": receives,
            }
        resources[queue_id] = {"Type": "AWS::SQS::Queue", "Properties": {**queue, **fifo_props}}
        queue_arn = {"Fn::GetAtt": [queue_id, "Arn"]}
    properties: dict[str, Any] = {"Queue": queue_arn}
    _batching(function, properties, 10 if fifo else 10000)
    if properties.get("BatchSize", 0) > 10 and not properties.get("MaximumBatchingWindowInSeconds"):
        raise BuildError(
            f"component {component.name!r}: an SQS batch larger than 10 needs a batching window",
            hint='add the annotation portabind.io/batchWindow (e.g. "5s")',
        )
    properties["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
    return {"Type": "SQS", "Properties": properties}


def _visibility(function: _Function) -> int:
    """The queue's visibility timeout, after which a failed message is received again: a
    constant retry policy's duration where the function's timeout allows it, else six times
    the function's timeout."""
    least = VISIBILITY_FACTOR * function.timeout
    retry = function.retries.policy
    if retry is None:
        return least
    if retry.exponential:
        function.retry_delays(
            f"an SQS queue redelivers after its fixed visibility timeout ({least} s)"
        )
        return least
    if retry.duration < function.timeout:
        function.retry_delays(
            "a queue's visibility timeout, after which a failed message comes back, must be at "
            f"least the function's timeout ({function.timeout} s); it is {least} s"
        )
        return least
    return math.ceil(retry.duration)


def _stream_event(function: _Function, kind: str, stream: Any) -> dict[str, Any]:
    """A Kinesis or DynamoDB stream event: partial replies on, retries as annotated."""
    properties: dict[str, Any] = {
        "Stream": stream,
        "StartingPosition": (
            function.annotation(StreamAnnotations).starting_position or StartingPosition.LATEST
        ).value,
    }
    _batching(function, properties, 10000)
    function.stream_retries(properties)
    properties["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
    return {"Type": kind, "Properties": properties}


def _kinesis_event(function: _Function) -> dict[str, Any]:
    """The Kinesis event; the stack creates the stream (on-demand) unless it exists. Dapr's
    `mode: extended` (enhanced fan-out) reads through a registered stream consumer named
    `consumerName`, as Dapr's does."""
    component = function.component
    stream_name = _name(component, "streamName")
    if function.existing:
        stream: Any = _arn("kinesis", f"stream/{stream_name}")
    else:
        stream_id = function.id("Stream")
        function.resources[stream_id] = {
            "Type": "AWS::Kinesis::Stream",
            "Properties": {"Name": stream_name, "StreamModeDetails": {"StreamMode": "ON_DEMAND"}},
        }
        stream = {"Fn::GetAtt": [stream_id, "Arn"]}
    if (_literal(component, "mode", required=False) or "shared").lower() == "extended":
        consumer_id = function.id("Consumer")
        function.resources[consumer_id] = {
            "Type": "AWS::Kinesis::StreamConsumer",
            "Properties": {"ConsumerName": _name(component, "consumerName"), "StreamARN": stream},
        }
        stream = {"Fn::GetAtt": [consumer_id, "ConsumerARN"]}
    return _stream_event(function, "Kinesis", stream)


def _dynamodb_event(function: _Function) -> dict[str, Any]:
    """The table's DynamoDB stream. The stack creates the table as the local emulator does
    (`bindings.aws.dynamodb.provision`: string partition key `id`, a NEW_AND_OLD_IMAGES
    stream); an existing table's stream ARN carries a creation timestamp, so it comes from
    `portabind.io/streamArn`."""
    from portabind.bindings.aws.dynamodb import KEY_ATTRIBUTE, STREAM_VIEW

    component = function.component
    table = _name(component, "table")
    stream: Any
    if function.existing:
        stream = _required(
            function.annotation(TableStream).stream_arn,
            component,
            "streamArn",
            "the existing table's stream ARN (its stream turned on)",
        )
    else:
        table_id = function.id("Table")
        function.resources[table_id] = {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "TableName": table,
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": KEY_ATTRIBUTE, "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}],
                "StreamSpecification": {"StreamViewType": STREAM_VIEW},
            },
        }
        stream = {"Fn::GetAtt": [table_id, "StreamArn"]}
    return _stream_event(function, "DynamoDB", stream)


def _sns_event(function: _Function) -> dict[str, Any]:
    function.async_retries()
    return {"Type": "SNS", "Properties": {"Topic": _name(function.component, "topicArn")}}


def _s3_event(function: _Function) -> dict[str, Any]:
    """An S3 notification of a bucket the stack creates (SAM accepts no other), or an
    EventBridge rule for an existing bucket (its EventBridge notifications turned on)."""
    component = function.component
    bucket = _name(component, "bucket")
    function.async_retries()
    if function.existing:
        return {
            "Type": "EventBridgeRule",
            "Properties": {
                "Pattern": {
                    "source": ["aws.s3"],
                    "detail-type": ["Object Created"],
                    "detail": {"bucket": {"name": [bucket]}},
                }
            },
        }
    bucket_id = function.id("Bucket")
    function.resources[bucket_id] = {
        "Type": "AWS::S3::Bucket",
        "Properties": {"BucketName": bucket},
    }
    notification = function.annotation(S3Annotations)
    properties: dict[str, Any] = {
        "Bucket": {"Ref": bucket_id},
        "Events": list(notification.events),
    }
    rules = [
        {"Name": part, "Value": value}
        for part, value in (("prefix", notification.prefix), ("suffix", notification.suffix))
        if value
    ]
    if rules:
        properties["Filter"] = {"S3Key": {"Rules": rules}}
    return {"Type": "S3", "Properties": properties}


def _cron_event(function: _Function) -> dict[str, Any]:
    """An EventBridge Scheduler schedule firing when Dapr's would (adapters/aws/schedule.py).
    As in Dapr, a failed tick is not retried unless maxRetries says so."""
    component = function.component
    schedule_text = _name(component, "schedule")
    try:
        expression = translate(parse_schedule(schedule_text))
    except (ScheduleError, Untranslatable) as error:
        raise component.error(
            f"schedule {schedule_text!r} cannot run on EventBridge Scheduler: {error}",
            field="schedule",
            hint="run it with " + _RUN + ", or change the schedule",
        ) from None
    function.async_retries(default=0)
    properties: dict[str, Any] = {
        "ScheduleExpression": expression.expression,
        # The scheduler's own context, so each tick carries the platform's identifiers.
        "Input": json.dumps(
            {
                "scheduledTime": "<aws.scheduler.scheduled-time>",
                "executionId": "<aws.scheduler.execution-id>",
                "scheduleArn": "<aws.scheduler.schedule-arn>",
            },
            separators=(",", ":"),
        ),
    }
    if expression.timezone:
        properties["ScheduleExpressionTimezone"] = expression.timezone
    return {"Type": "ScheduleV2", "Properties": properties}


def _http_event(function: _Function) -> dict[str, Any]:
    component = function.component
    function.refuse_retries("an HTTP request is synchronous: the caller sees the failure")
    trigger = function.annotation(HttpAnnotations)
    path = trigger.path or f"/{component.name}"
    if len(trigger.method) > 1:
        raise component.error(
            "an HttpApi event answers one method or all of them",
            field=field_name("method"),
            hint="name one method, or none for every method (one component per method otherwise)",
        )
    method = trigger.method[0].value if trigger.method else "ANY"
    return {"Type": "HttpApi", "Properties": {"Path": path, "Method": method}}


def _secret_arn(function: _Function, *fields: str) -> Any:
    """The Secrets Manager secret an event source authenticates with: the annotation
    `portabind.io/secretArn`, else the secret a `secretKeyRef` of one of `fields` names."""
    component = function.component
    annotated = function.annotation(SourceSecret).secret_arn
    if annotated:
        return annotated
    for name in fields:
        found = _value(component, name)
        if found is not None and found[1].secret_ref is not None:
            return _arn("secretsmanager", f"secret:{found[1].secret_ref.name}")
    raise component.error(
        "the event source needs the ARN of a Secrets Manager secret holding the credentials",
        field=field_name("secretArn"),
        hint=f"add portabind.io/secretArn, or give {' or '.join(fields)} as a secretKeyRef "
        "(the secret must hold Lambda's JSON keys, e.g. username and password)",
    )


def _kafka_access(function: _Function, msk: bool) -> list[dict[str, Any]]:
    """SourceAccessConfigurations from `authType`, `saslMechanism` and `caCert`."""
    component = function.component
    kafka = function.annotation(KafkaTrigger)
    auth = (_literal(component, "authType") or "").lower()
    access: list[dict[str, Any]] = []
    if auth == "password":
        mechanism = (_literal(component, "saslMechanism", required=False) or "PLAINTEXT").upper()
        if mechanism not in _SASL or (msk and mechanism not in _MSK_SASL):
            allowed = sorted(_MSK_SASL if msk else _SASL)
            raise component.error(
                f"saslMechanism {mechanism!r} has no {'MSK' if msk else 'Lambda'} event source "
                f"equivalent (use {', '.join(allowed)})",
                field="saslMechanism",
            )
        access.append({"Type": _SASL[mechanism], "URI": _secret_arn(function, "saslPassword")})
    elif auth == "mtls":
        access.append(
            {"Type": "CLIENT_CERTIFICATE_TLS_AUTH", "URI": _secret_arn(function, "clientKey")}
        )
    elif auth == "awsiam" and not msk:
        raise component.error(
            "authType awsiam needs an MSK cluster", field=field_name("mskClusterArn")
        )
    elif auth not in ("none", "awsiam"):
        raise component.error(
            f"authType {auth!r} has no Lambda Kafka event source equivalent",
            field="authType",
            hint="use none, password, mtls or awsiam (MSK), or run it with " + _RUN,
        )
    if not msk and _value(component, "caCert") is not None:
        access.append(
            {
                "Type": "SERVER_ROOT_CA_CERTIFICATE",
                "URI": _required(
                    kafka.ca_secret_arn,
                    component,
                    "caSecretArn",
                    "a Secrets Manager secret holding caCert",
                ),
            }
        )
    if bool(kafka.subnets) != bool(kafka.security_groups):
        raise component.error(
            "Lambda reaches brokers in a VPC through both subnets and security groups",
            field=field_name("subnets"),
            hint="annotate both portabind.io/subnets and portabind.io/securityGroups",
        )
    for items, (kind, prefix) in (
        (kafka.subnets, ("VPC_SUBNET", "subnet:")),
        (kafka.security_groups, ("VPC_SECURITY_GROUP", "security_group:")),
    ):
        access += [{"Type": kind, "URI": prefix + item} for item in items]
    return access


def _msk_arn(cluster: str, kind: str, name: str) -> str:
    """The ARN of a topic or consumer group of an MSK cluster: the cluster's
    `cluster/<name>/<uuid>` under `topic/` or `group/`."""
    prefix, _, path = cluster.partition(":cluster/")
    return f"{prefix}:{kind}/{path}/{name}"


def _allow(*grants: tuple[str, tuple[str, ...]]) -> dict[str, Any]:
    """An inline policy allowing each (resource, actions)."""
    return {
        "Statement": [
            {"Effect": "Allow", "Action": list(actions), "Resource": resource}
            for resource, actions in grants
        ]
    }


def _msk_iam_policy(cluster: str, topic: str, group: str | None) -> dict[str, Any]:
    """What Lambda's poller needs on an MSK cluster with IAM access control (`authType:
    awsiam`): connect, read the topic, and use its consumer group (the group Lambda names
    after the event source mapping when `consumerGroup` is not set)."""
    return _allow(
        (cluster, ("kafka-cluster:Connect", "kafka-cluster:DescribeClusterDynamicConfiguration")),
        (
            _msk_arn(cluster, "topic", topic),
            ("kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"),
        ),
        (
            _msk_arn(cluster, "group", group or "*"),
            ("kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"),
        ),
    )


def _msk_write_policy(component: Component) -> dict[str, Any]:
    """What a Kafka output with IAM access control needs on its MSK cluster: connect and
    write to `publishTopic` (to any topic of the cluster when requests name the topic)."""
    cluster = _required(
        TARGET.parse_annotations(component)[KafkaTrigger].msk_cluster_arn,
        component,
        "mskClusterArn",
        "the MSK cluster's ARN to let the function write to it (authType awsiam)",
    )
    topic = _literal(component, "publishTopic", required=False) or "*"
    return _allow(
        (cluster, ("kafka-cluster:Connect",)),
        (
            _msk_arn(cluster, "topic", topic),
            ("kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"),
        ),
    )


def _kafka_event(function: _Function) -> dict[str, Any]:
    """MSK when `portabind.io/mskClusterArn` names the cluster, else SelfManagedKafka on the
    component's brokers. Partial batch responses and retry settings need provisioned
    pollers (`portabind.io/provisionedPollers`); without them a failure retries the batch."""
    component = function.component
    topics = [t.strip() for t in _name(component, "topics").split(",") if t.strip()]
    if len(topics) != 1:
        raise component.error(
            f"a Lambda Kafka trigger reads exactly one topic, got {len(topics)}",
            field="topics",
            hint="one component (and handler) per topic",
        )
    kafka = function.annotation(KafkaTrigger)
    cluster = kafka.msk_cluster_arn
    offset = (_literal(component, "initialOffset", required=False) or "newest").lower()
    properties: dict[str, Any] = {
        "Topics": topics,
        "StartingPosition": "TRIM_HORIZON" if offset == "oldest" else "LATEST",
    }
    if cluster:
        properties["Stream"] = cluster
    else:
        properties["KafkaBootstrapServers"] = [
            b.strip() for b in _name(component, "brokers").split(",") if b.strip()
        ]
    group = _literal(component, "consumerGroup", required=False)
    if group:
        properties["ConsumerGroupId"] = group
    access = _kafka_access(function, msk=bool(cluster))
    if cluster and (_literal(component, "authType") or "").lower() == "awsiam":
        function.policies.append(_msk_iam_policy(cluster, topics[0], group))
    if not access and not cluster:
        raise component.error(
            "a self-managed Kafka trigger needs credentials or the brokers' VPC",
            field="authType",
            hint="use authType password or mtls (with portabind.io/secretArn), or annotate "
            "portabind.io/subnets and portabind.io/securityGroups for brokers in a VPC",
        )
    if access:
        properties["SourceAccessConfigurations"] = access
    _batching(function, properties, 10000, window=bool(cluster))
    pollers = kafka.provisioned_pollers
    if pollers is not None:
        properties["ProvisionedPollerConfig"] = {"MinimumPollers": pollers}
        function.stream_retries(properties, destination=bool(cluster))
        properties["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
    else:
        function.refuse_retries(
            "Lambda applies Kafka retry settings in provisioned mode only "
            "(portabind.io/provisionedPollers)"
        )
    return {"Type": "MSK" if cluster else "SelfManagedKafka", "Properties": properties}


def _rabbitmq_event(function: _Function) -> dict[str, Any]:
    """An Amazon MQ for RabbitMQ broker (`portabind.io/brokerArn`), with basic auth from a
    Secrets Manager secret and the virtual host of `host` (or `portabind.io/virtualHost`)."""
    component = function.component
    function.refuse_retries(
        "an MQ trigger retries by the broker's policy (set a dead-letter there)"
    )
    mq = function.annotation(MqTrigger)
    broker = _required(mq.broker_arn, component, "brokerArn", "the Amazon MQ broker's ARN")
    access: list[dict[str, Any]] = [{"Type": "BASIC_AUTH", "URI": _secret_arn(function)}]
    vhost = mq.virtual_host
    host = _value(component, "host")
    if vhost is None and host is not None and host[1].literal:
        vhost = urlsplit(host[1].literal).path.removeprefix("/") or None
    if vhost:
        access.append({"Type": "VIRTUAL_HOST", "URI": vhost})
    properties: dict[str, Any] = {
        "Broker": broker,
        "Queues": [_name(component, "queueName")],
        "SourceAccessConfigurations": access,
    }
    _batching(function, properties, 10000)
    return {"Type": "MQ", "Properties": properties}


def _mqtt_event(function: _Function) -> dict[str, Any]:
    """An AWS IoT Core topic rule. The payload travels base64-encoded beside `topic()`, so any
    payload (not only JSON) reaches the handler byte for byte, with the topic it came on."""
    topic = _name(function.component, "topic")
    if "'" in topic:
        raise function.component.error("a topic filter cannot contain a quote", field="topic")
    function.async_retries()
    return {
        "Type": "IoTRule",
        "Properties": {
            "Sql": f"SELECT encode(*, 'base64') AS data, topic() AS topic FROM '{topic}'",
            "AwsIotSqlVersion": "2016-03-23",
        },
    }


def _s3_templates(component: Component) -> tuple[str, ...]:
    """S3CrudPolicy, or narrower when `portabind.io/operations` lists the operations the app
    calls: S3ReadPolicy for reads only, S3WritePolicy for writes only, both for the two."""
    listed = TARGET.parse_annotations(component)[S3Policy].operations
    if listed is None:
        return ("S3CrudPolicy",)
    used = set(listed)
    if used & _S3_DELETES:
        return ("S3CrudPolicy",)
    return tuple(
        template
        for template, kind in (("S3ReadPolicy", _S3_READS), ("S3WritePolicy", _S3_WRITES))
        if used & kind
    )


def _policies(project: Project) -> list[dict[str, Any]]:
    """Least privilege for every output-capable AWS component of the profile."""
    policies: list[dict[str, Any]] = []
    for component in project.components.bindings():
        binding = registry.binding_for(component)
        wanted = component.direction or binding.directions
        kind = component.type
        if binding.output is None or "output" not in wanted:
            continue
        granted: list[dict[str, Any]]
        if kind == "bindings.aws.kinesis":
            stream = _arn("kinesis", f"stream/{_name(component, 'streamName')}")
            granted = [
                {
                    "Statement": [
                        {"Effect": "Allow", "Action": list(KINESIS_PUT), "Resource": stream}
                    ]
                }
            ]
        elif kind == "bindings.aws.s3":
            bucket = _name(component, "bucket")
            granted = [{template: {"BucketName": bucket}} for template in _s3_templates(component)]
        elif kind == "bindings.kafka":
            if (_literal(component, "authType", required=False) or "").lower() != "awsiam":
                continue  # the brokers check the credentials the component carries
            granted = [_msk_write_policy(component)]
        elif kind in POLICIES:
            template, parameter, field_name = POLICIES[kind]
            value = _name(component, field_name)
            if field_name == "topicArn":  # the policy template takes the topic's name
                value = value.rsplit(":", 1)[-1]
            granted = [{template: {parameter: value}}]
        else:
            continue
        policies.extend(policy for policy in granted if policy not in policies)
    return policies


def _secret_variables(project: Project) -> dict[str, str]:
    """Each reference as a Secrets Manager dynamic reference. A secretstores.aws.secretmanager
    store's reads as Dapr's would: the whole SecretString, or with
    multipleKeyValuesPerSecret its JSON key; another store's names a secret whose JSON key is
    the reference's key."""
    variables = {}
    for component in project.components.bindings():
        store = store_settings(project.components, component, "secretstores.aws.secretmanager")
        for key, value in component.binding_values().items():
            ref = value.secret_ref
            if ref is None:
                continue
            whole = store is not None and not (
                store.multiple_key_values_per_secret and ref.key and ref.key != ref.name
            )
            variables[secret_env_name(component.name, key)] = (
                f"{{{{resolve:secretsmanager:{ref.name}}}}}"
                if whole
                else f"{{{{resolve:secretsmanager:{ref.name}:SecretString:{ref.key or ref.name}}}}}"
            )
    return variables


def _trigger_of(component: Component, annotations: ParsedAnnotations) -> Trigger[EventWriter]:
    """The component's Lambda trigger, refused when it has none here."""
    trigger = TARGET.trigger(component.type)
    if trigger is None:
        native = ", ".join(t.binding_type for t in TARGET.triggers)
        raise BuildError(
            f"input binding {component.name!r} ({component.type}) has no AWS Lambda trigger",
            hint=f"use {TARGET.fallbacks.get(component.type, _RUN)} (`portabind run` is a "
            f"local listener; the components are Dapr's own); types with a Lambda trigger: "
            f"{native}",
        )
    if trigger.extension and not any(
        isinstance(found, ExtensionTrigger) and found.trigger for found in annotations.instances()
    ):
        raise component.error(
            f"{component.type} is output-only in Dapr; its Lambda trigger ({trigger.native}) "
            "is a portabind extension",
            field=field_name("trigger"),
            hint='add the annotation portabind.io/trigger: "true" to use it',
        )
    return trigger


def _timeout(function: _Function) -> int:
    """The function's timeout: an inbound timeout policy's, in whole seconds up to Lambda's
    longest."""
    seconds = function.resiliency.timeout
    if seconds is None or seconds <= 0:
        return TIMEOUT_SECONDS
    if seconds > MAX_TIMEOUT_SECONDS:
        function.cannot(
            "timeout",
            f"{seconds:g}s: a Lambda function runs at most {MAX_TIMEOUT_SECONDS} s, which it gets",
        )
    return min(math.ceil(seconds), MAX_TIMEOUT_SECONDS)


def template(project: Project, warnings: list[UserError] | None = None) -> dict[str, Any]:
    """The SAM template of the project, as a mapping; what it cannot express of the inbound
    Resiliency policies is added to `warnings`."""
    resources: dict[str, Any] = {}
    functions: dict[str, Any] = {}
    environment = _secret_variables(project)
    shared_policies = _policies(project)
    parsed = resiliency_policies(project.components.resiliency)
    for name in project.app.handlers:
        component = project.components.get(name)
        annotations = TARGET.parse_annotations(component)
        trigger = _trigger_of(component, annotations)
        inbound = parsed.policy(name, INBOUND)
        retries = _retries(component, inbound, annotations)
        function = _Function(component, annotations, retries, resources, resiliency=inbound)
        function.timeout = _timeout(function)
        if inbound.breaker is not None:
            function.cannot(
                "circuitBreaker",
                "Lambda has no circuit breaker on an event source: events keep coming while "
                "the function fails (outbound breakers apply in the function)",
            )
        event = trigger.write(function)
        if warnings is not None:
            warnings += function.warnings
        properties: dict[str, Any] = {
            "Runtime": _runtime(),
            "Handler": f"{ENTRY_MODULE}.{_handler_name(name)}",
            "CodeUri": ".",
            "Timeout": function.timeout,
            "Description": f"portabind: input binding {name} ({component.type})",
        }
        if environment:
            properties["Environment"] = {"Variables": environment}
        policies = shared_policies + [p for p in function.policies if p not in shared_policies]
        if policies:
            properties["Policies"] = policies
        properties.update(function.properties)
        properties["Events"] = {event["Type"]: event}
        functions[_logical_id(name, "Function")] = {
            "Type": "AWS::Serverless::Function",
            "Properties": properties,
        }
    if not functions:
        raise BuildError(
            "the app registers no input handler, so there is no function to deploy",
            hint='decorate a handler with @app.binding("<input component>")',
        )
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": f"portabind app {project.directory.resolve().name}",
        "Resources": {**functions, **resources},
    }


def _entry(project: Project) -> str:
    functions = []
    for name in project.app.handlers:
        component = project.components.get(name)
        annotations = TARGET.parse_annotations(component)
        trigger = _trigger_of(component, annotations)
        functions.append(
            entry.EntryFunction(
                name=_handler_name(name),
                component=name,
                entry=trigger.entry,
                parameters=("event", "context"),
                options=trigger.options(component, annotations),
            )
        )
    return entry.module(
        doc=f"AWS Lambda entry points of {project.app_ref}, written by `portabind build`.",
        runtime=Function.__module__,
        app_ref=project.app_ref,
        functions=functions,
    )


def _kafka_options(_component: Component, annotations: ParsedAnnotations) -> dict[str, bool]:
    """A Kafka trigger reports partial batch failures only with provisioned pollers, as
    `_kafka_event` declares it."""
    return {"partial_batch": annotations[KafkaTrigger].provisioned_pollers is not None}


class _Dumper(yaml.SafeDumper):
    """Writes shared lists (the policies every function gets) in full, not as YAML
    anchors and aliases, so each function reads on its own."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def build(project: Project, out: Path) -> list[Path]:
    """Write the SAM application for `project` into `out`; returns the files written."""
    document = template(project)  # first: raises before anything is written
    written = bundle.bundle(project, out, TARGET.name)
    files = {
        "template.yaml": yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100),
        f"{ENTRY_MODULE}.py": _entry(project),
        "requirements.txt": "\n".join(bundle.requirements(project, [BASE_EXTRA])) + "\n",
    }
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    if _runtime() == f"python{sys.version_info.major}.{sys.version_info.minor}":
        # Hash-checked bytecode stays valid when `sam build` copies the files (new mtimes).
        compileall.compile_dir(
            out,
            quiet=1,
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
        )
    return [out / name for name in files] + written


def _cannot_express(project: Project) -> list[UserError]:
    """What the SAM template cannot express of the inbound Resiliency policies (a project the
    build refuses has its error from the build)."""
    found: list[UserError] = []
    try:
        template(project, found)
    except UserError:
        return found
    return found


EventWriter = Callable[[_Function], dict[str, Any]]
TARGET = Target(
    name="aws",
    build=build,
    triggers=(
        Trigger("bindings.aws.sqs", "SQS", Function.sqs, _sqs_event),
        Trigger("bindings.aws.kinesis", "Kinesis", Function.kinesis, _kinesis_event),
        Trigger("bindings.aws.sns", "SNS (extension)", Function.sns, _sns_event, extension=True),
        Trigger(
            "bindings.aws.s3",
            "S3 or EventBridgeRule (extension)",
            Function.s3,
            _s3_event,
            extension=True,
        ),
        Trigger(
            "bindings.aws.dynamodb",
            "DynamoDB stream (extension)",
            Function.dynamodb,
            _dynamodb_event,
            extension=True,
        ),
        Trigger("bindings.cron", "ScheduleV2", Function.cron, _cron_event),
        Trigger("bindings.http", "HttpApi (extension)", Function.http, _http_event, extension=True),
        Trigger(
            "bindings.kafka",
            "MSK or SelfManagedKafka",
            Function.kafka,
            _kafka_event,
            options=_kafka_options,
        ),
        Trigger("bindings.rabbitmq", "MQ (Amazon MQ brokers)", Function.mq, _rabbitmq_event),
        Trigger("bindings.mqtt3", "IoTRule (AWS IoT Core)", Function.iot, _mqtt_event),
    ),
    annotations=BY_TYPE,
    cannot_express=_cannot_express,
    fallbacks={
        "bindings.azure.storagequeues": _RUN,
        "bindings.azure.servicebusqueues": _RUN,
        "bindings.azure.eventhubs": "bindings.kafka on the Event Hubs Kafka endpoint, or " + _RUN,
        "bindings.azure.eventgrid": "a bindings.http webhook trigger, or " + _RUN,
        "bindings.gcp.pubsub": "a push subscription to a bindings.http trigger, or " + _RUN,
        "bindings.kubernetes": "a Dapr sidecar in the cluster, or `portabind run`",
        "bindings.twitter": "a bindings.cron trigger that polls, or " + _RUN,
    },
)
