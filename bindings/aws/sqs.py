"""`bindings.aws.sqs`: Amazon SQS, input and output.

Output `create` sends the payload as the message body. The input listener long-polls the
queue (`SqsQueue`, polled as `bindings._polling` describes) and deletes handled messages: each
one right after its handler returned when the queue has a redrive policy, else those of a
receive together; a failed message stays in the queue and comes back after a back-off that
grows with its receive count.

`event_from_message` is the one mapping from an SQS message to a `BindingEvent`; the local
listener and the Lambda runtime both use it, so a message looks the same on either path.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any

from portabind.annotations import Annotations, arn, whole_number, whole_seconds
from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings._polling import Acknowledge, QueueSource
from portabind.bindings.aws import _aws
from portabind.errors import BindingError
from portabind.events import BindingEvent, BindingResponse, Metadata, rfc3339
from portabind.metadata import setting

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterable, Mapping, Sequence

log = logging.getLogger(__name__)

#: Messages per ReceiveMessage call (the SQS maximum); Dapr reads one at a time.
RECEIVE_BATCH = 10
#: Long-poll wait. Dapr waits 20 s. A stop does not wait for the poll, but a message that a
#: poll abandoned on stop takes waits for the poll's end before it is released to the next
#: listener: 5 s bounds that delay, and an idle listener still sends one request per 5 s.
WAIT_SECONDS = 5
#: System attributes copied into the event metadata as SQS names them (FIFO ones when present).
_ATTRIBUTES = ("ApproximateReceiveCount", "MessageGroupId", "MessageDeduplicationId")
#: Receives before a message moves to the dead-letter queue when the component names a
#: dead-letter target but no count (the AWS build's default too).
DEFAULT_MAX_RECEIVE_COUNT = 5
#: SQS's upper bound for a queue's visibility timeout (12 hours).
MAX_VISIBILITY_TIMEOUT = 12 * 3600
#: How long the listener goes by the redrive policy it read before reading it again (a policy
#: set on the queue while it runs takes effect within this time).
REDRIVE_CHECK_SECONDS = 60.0


class SqsMetadata(_aws.AwsServiceMetadata):
    binding_type = "bindings.aws.sqs"

    queue_name: str = setting("queueName", description="queue name (not URL or ARN)")


def _field(message: Mapping[str, Any], name: str) -> Any:
    """Lambda spells SQS fields in lowerCamel case (`messageId`, `stringValue`), the SQS API
    in UpperCamel case (`MessageId`, `StringValue`); otherwise the shapes agree."""
    value = message.get(name)
    return value if value is not None else message.get(name[0].upper() + name[1:])


def _sent_time(milliseconds: str) -> str:
    stamp = int(milliseconds)
    moment = datetime.fromtimestamp(stamp // 1000, tz=timezone.utc)
    return rfc3339(moment + timedelta(milliseconds=stamp % 1000))


def event_from_message(
    name: str, message: Mapping[str, Any], *, queue_arn: str | None = None
) -> BindingEvent:
    """The event for one SQS message, given as a ReceiveMessage entry or a Lambda record.

    `data` is the body, untouched. Metadata: the user's message attributes that have a string
    value (String and Number types) under their own names, then `messageId`, `receiptHandle`,
    `eventSourceARN` (the record's, else `queue_arn`), `ApproximateReceiveCount`,
    `SentTimestamp` (RFC 3339) and, on FIFO queues, `MessageGroupId` and
    `MessageDeduplicationId`. The platform's keys come last, so an attribute cannot mask them.
    The metadata is made when the handler first reads it.
    """
    body = _field(message, "body") or ""
    return BindingEvent(
        name,
        body.encode("utf-8"),
        Metadata.deferred(lambda: _message_metadata(message, queue_arn)),
    )


def _message_metadata(message: Mapping[str, Any], queue_arn: str | None) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for key, attribute in (_field(message, "messageAttributes") or {}).items():
        value = _field(attribute, "stringValue")
        if value is not None:
            metadata[key] = str(value)
    metadata["messageId"] = str(_field(message, "messageId"))
    metadata["receiptHandle"] = str(_field(message, "receiptHandle"))
    arn = message.get("eventSourceARN") or queue_arn
    if arn:
        metadata["eventSourceARN"] = str(arn)
    attributes = _field(message, "attributes") or {}
    for key in _ATTRIBUTES:
        if attributes.get(key) is not None:
            metadata[key] = str(attributes[key])
    if attributes.get("SentTimestamp") is not None:
        metadata["SentTimestamp"] = _sent_time(attributes["SentTimestamp"])
    return metadata


def _queue_url(sqs: Any, queue_name: str) -> str:
    url: str = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    return url


class SqsOutput(OutputBinding[SqsMetadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: SqsMetadata) -> None:
        super().__init__(name, metadata)
        self._sqs = _aws.client("sqs", metadata)
        # Dapr looks the URL up on every call; it is stable for a queue name, so once is enough.
        self._url: str | None = None

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        try:
            body = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BindingError(
                self.name, "create", "an SQS message body must be UTF-8 text"
            ) from None
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if self._url is None:
                self._url = _queue_url(self._sqs, self.metadata.queue_name)
            self._sqs.send_message(QueueUrl=self._url, MessageBody=body)
        except (BotoCoreError, ClientError) as error:
            raise BindingError(self.name, "create", str(error)) from error
        return BindingResponse()


class SqsQueue(QueueSource[dict[str, Any]]):
    """The queue `queue_name` polled through client `sqs`; it is looked up on the first
    receive (and again after that failed), its redrive policy read again every
    `REDRIVE_CHECK_SECONDS`. A subclass may find or create it otherwise
    (`_locate`) and read its messages as other events (`events`)."""

    #: Set from the queue's redrive policy (`_read_queue`). With one, EACH: a runner killed
    #: mid-batch would otherwise leave the batch's handled messages undeleted, and each
    #: redelivery counts toward the policy's maxReceiveCount, so crashes could move messages
    #: that had succeeded into the dead-letter queue; with EACH a kill repeats at most the
    #: one message whose handler had returned. Without one no message can be dead-lettered,
    #: so BATCH: one DeleteMessageBatch per receive, where a request per message costs
    #: about a quarter more CPU per message than the hand-written loop of
    #: benchmarks/runner_throughput.py spends; a kill then repeats at most the handled
    #: messages of the receive in flight. EACH until the policy was read.
    acknowledge = Acknowledge.EACH

    def __init__(self, name: str, sqs: Any, queue_name: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        super().__init__(name, (BotoCoreError, ClientError))
        self.sqs = sqs
        self.queue_name = queue_name
        self._url: str | None = None
        self._arn: str | None = None
        #: time.monotonic() when `_read_queue` last read the redrive policy.
        self._read_at = 0.0

    def _locate(self) -> tuple[str, str]:
        """The queue's URL and ARN (`_read_queue`)."""
        url = _queue_url(self.sqs, self.queue_name)
        return url, self._read_queue(url)

    def _read_queue(self, url: str) -> str:
        """The queue's ARN; its redrive policy, read in the same request, sets `acknowledge`."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn", "RedrivePolicy"]
        )["Attributes"]
        redrive = bool(attributes.get("RedrivePolicy"))
        self.acknowledge = Acknowledge.EACH if redrive else Acknowledge.BATCH
        self._read_at = time.monotonic()
        arn: str = attributes["QueueArn"]
        return arn

    def receive(self) -> list[dict[str, Any]]:
        if self._url is None:
            self._url, self._arn = self._locate()
        elif time.monotonic() - self._read_at >= REDRIVE_CHECK_SECONDS:
            self._arn = self._read_queue(self._url)
        received = self.sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=RECEIVE_BATCH,
            WaitTimeSeconds=WAIT_SECONDS,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = received.get("Messages", [])
        return messages

    def events(self, message: dict[str, Any]) -> Iterable[BindingEvent]:
        return [event_from_message(self.name, message, queue_arn=self._arn)]

    def ack(self, messages: Sequence[dict[str, Any]]) -> None:
        """One DeleteMessageBatch for the lot (a single message under `Acknowledge.EACH`)."""
        answer = self.sqs.delete_message_batch(
            QueueUrl=self._url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
        self._log_failed(answer, messages, "deleting handled")

    def release(self, messages: Sequence[dict[str, Any]], delay: int) -> None:
        answer = self.sqs.change_message_visibility_batch(
            QueueUrl=self._url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": delay}
                for i, m in enumerate(messages)
            ],
        )
        self._log_failed(answer, messages, "releasing")

    def _log_failed(
        self, answer: Mapping[str, Any], messages: Sequence[dict[str, Any]], doing: str
    ) -> None:
        """Log the entries a batch request could not do; their messages come again after
        the visibility timeout."""
        for failure in answer.get("Failed", []):
            log.warning(
                "%s: %s message %s failed: %s",
                self.name,
                doing,
                self.message_id(messages[int(failure["Id"])]),
                failure.get("Message") or failure.get("Code"),
            )

    def receive_count(self, message: dict[str, Any]) -> int:
        return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))

    def message_id(self, message: dict[str, Any]) -> str:
        return str(message["MessageId"])

    def close(self) -> None:
        self.sqs.close()


class SqsInput(InputBinding[SqsMetadata]):
    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        queue = SqsQueue(self.name, _aws.client("sqs", self.metadata), self.metadata.queue_name)
        queue.poll(deliver, stop)


class SqsAnnotations(Annotations):
    """What Dapr's SQS metadata has no field for: the queue's visibility timeout and its
    redrive to a dead-letter queue (`redrive`). `provision` sets them on the emulated queue;
    the AWS build reads them for the queue it puts in the template."""

    visibility_timeout: Annotated[int, whole_seconds(MAX_VISIBILITY_TIMEOUT)] | None = setting(
        "visibilityTimeout", None, description="the queue's visibility timeout"
    )
    max_receive_count: Annotated[int, whole_number(1, 1000)] | None = setting(
        "maxReceiveCount", None, description="receives before the move to the dead-letter queue"
    )
    max_retries: Annotated[int, whole_number(-1, 999)] | None = setting(
        "maxRetries", None, description="retries before the move (N + 1 receives; -1: never)"
    )
    on_failure: Annotated[str, arn("sqs", words=("dlq",))] | None = setting(
        "onFailure", None, description="the dead-letter queue's ARN, or dlq for <queue>-dlq"
    )


def redrive(queue_name: str, annotations: SqsAnnotations) -> tuple[str, int] | None:
    """The dead-letter queue's name and `maxReceiveCount` the component asks for, or None.

    Asked for by `portabind.io/maxReceiveCount` (receives before the move), or
    `portabind.io/maxRetries` N (N + 1 receives; -1: never), or `portabind.io/onFailure`
    (an SQS queue ARN to move to, or `dlq`) with `DEFAULT_MAX_RECEIVE_COUNT` receives. The
    queue is `<queue>-dlq` (FIFO queues: `<queue>-dlq.fifo`) unless onFailure names one.
    """
    receives = annotations.max_receive_count
    retries = annotations.max_retries
    on_failure = annotations.on_failure
    if receives is None and retries is not None:
        if retries == -1:  # retried until it succeeds, as on AWS
            return None
        receives = retries + 1
    if receives is None and on_failure is None:
        return None
    if on_failure is not None and on_failure != "dlq":
        dead_letter = on_failure.rsplit(":", 1)[-1]
    else:
        fifo = queue_name.endswith(".fifo")
        dead_letter = queue_name.removesuffix(".fifo") + "-dlq" + (".fifo" if fifo else "")
    return dead_letter, receives if receives is not None else DEFAULT_MAX_RECEIVE_COUNT


def provision(metadata: SqsMetadata, annotations: SqsAnnotations | None = None) -> None:
    """Create the queue (a FIFO queue when the name ends in `.fifo`); idempotent.

    It also sets what the annotations ask for: the queue's visibility timeout and the
    redrive policy `redrive` describes, creating the dead-letter queue; SQS itself then
    moves a message that was received `maxReceiveCount` times without being deleted.
    """
    annotations = annotations or SqsAnnotations()
    sqs = _aws.client("sqs", metadata)
    fifo = {"FifoQueue": "true"} if metadata.queue_name.endswith(".fifo") else {}
    attributes: dict[str, str] = {}
    if annotations.visibility_timeout is not None:
        attributes["VisibilityTimeout"] = str(annotations.visibility_timeout)
    policy = redrive(metadata.queue_name, annotations)
    if policy is not None:
        dead_letter, receives = policy
        dlq_url = sqs.create_queue(QueueName=dead_letter, Attributes=fifo)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": receives}
        )
    url = sqs.create_queue(QueueName=metadata.queue_name, Attributes=fifo)["QueueUrl"]
    # Set apart from the creation: SQS refuses to "create" an existing queue with other
    # attributes, and a queue made before the run must get the annotated settings too.
    if attributes:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)


binding = Binding(
    metadata=SqsMetadata,
    annotations=SqsAnnotations,
    output=SqsOutput,
    input=SqsInput,
    emulator="moto",
    emulate=_aws.emulate,
    provision=provision,
)
