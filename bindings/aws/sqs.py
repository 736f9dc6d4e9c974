"""`bindings.aws.sqs`: Amazon SQS, input and output (dapr-bindings.md §3.15).

Output `create` sends the payload as the message body. The input listener long-polls the
queue and deletes a message only after the handler returned; a failed message stays in the
queue and SQS delivers it again once its visibility timeout runs out.

`event_from_message` is the one mapping from an SQS message to a `BindingEvent`; the local
listener and the Lambda runtime both use it, so a message looks the same on either path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings.aws import _aws
from portabind.errors import BindingError, ComponentError
from portabind.events import BindingEvent, BindingResponse, Metadata, rfc3339
from portabind.metadata import parse_duration, setting

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

#: Messages per ReceiveMessage call (the SQS maximum); Dapr reads one at a time.
RECEIVE_BATCH = 10
#: Long-poll wait. Dapr waits 20 s; a shorter wait lets `portabind run` stop within seconds
#: while still leaving an idle listener at one request per 5 s.
WAIT_SECONDS = 5
#: Pause after a failed ReceiveMessage (network, missing queue) before trying again.
RETRY_SECONDS = 2.0
#: System attributes copied into the event metadata as SQS names them (FIFO ones when present).
_ATTRIBUTES = ("ApproximateReceiveCount", "MessageGroupId", "MessageDeduplicationId")
#: Receives before a message moves to the dead-letter queue when the component names a
#: dead-letter target but no count (the AWS build's default too).
DEFAULT_MAX_RECEIVE_COUNT = 5
#: SQS's upper bound for a queue's visibility timeout (12 hours).
MAX_VISIBILITY_TIMEOUT = 12 * 3600


class SqsMetadata(_aws.AwsCredentials):
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
    """
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
    body = _field(message, "body") or ""
    return BindingEvent(name, body.encode("utf-8"), Metadata(metadata))


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


class SqsInput(InputBinding[SqsMetadata]):
    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        sqs = _aws.client("sqs", self.metadata)
        url: str | None = None
        arn: str | None = None
        while not stop.is_set():
            try:
                if url is None:
                    url = _queue_url(sqs, self.metadata.queue_name)
                    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                        "Attributes"
                    ]["QueueArn"]
                received = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=RECEIVE_BATCH,
                    WaitTimeSeconds=WAIT_SECONDS,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            except (BotoCoreError, ClientError) as error:
                log.warning("%s: receiving from SQS queue %r failed: %s", self.name, url, error)
                stop.wait(RETRY_SECONDS)
                continue
            messages = received.get("Messages", [])
            handled: list[dict[str, Any]] = []
            try:
                for index, message in enumerate(messages):
                    if stop.is_set():
                        # On failure they become visible after the visibility timeout anyway.
                        with contextlib.suppress(BotoCoreError, ClientError):
                            self._release(sqs, url, messages[index:])
                        break
                    try:
                        deliver(event_from_message(self.name, message, queue_arn=arn))
                    except Exception as error:  # the handler's failure: SQS redelivers it later
                        log.warning(
                            "%s: message %s failed (%s); left for redelivery",
                            self.name,
                            message["MessageId"],
                            error,
                        )
                        continue
                    handled.append(message)
            finally:  # also when a handler ends the thread: what it handled is done
                self._delete(sqs, url, handled)

    def _delete(self, sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
        """Delete the handled messages of a batch in one request, as Lambda's poller does once
        the function returns: one DeleteMessageBatch instead of a request per message is
        about a quarter of the listener's time against moto. A message that could not be
        deleted comes again (at least once)."""
        if not messages:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        except (BotoCoreError, ClientError) as error:
            log.warning(
                "%s: deleting %d handled message(s) failed: %s", self.name, len(messages), error
            )
            return
        for failure in answer.get("Failed", []):
            log.warning(
                "%s: deleting handled message %s failed: %s",
                self.name,
                messages[int(failure["Id"])]["MessageId"],
                failure.get("Message") or failure.get("Code"),
            )

    @staticmethod
    def _release(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
        """Make received but undelivered messages visible again now, rather than after the
        visibility timeout, so another consumer can take them at once."""
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages)
            ],
        )


def _annotation_error(key: str, expected: str, raw: str) -> ComponentError:
    return ComponentError(
        f"annotation portabind.io/{key} must be {expected}, got {raw!r}",
        field=f"metadata.annotations.portabind.io/{key}",
    )


def _annotation_int(annotations: Mapping[str, str], key: str, low: int, high: int) -> int | None:
    raw = annotations.get(key)
    if raw is None:
        return None
    if not re.fullmatch(r"\s*-?\d+\s*", raw) or not low <= int(raw) <= high:
        raise _annotation_error(key, f"a whole number from {low} to {high}", raw)
    return int(raw)


def _visibility_timeout(annotations: Mapping[str, str]) -> int | None:
    raw = annotations.get("visibilityTimeout")
    if raw is None:
        return None
    expected = "whole seconds from 0 to 12h (a Go duration such as 30s, or a number)"
    try:
        seconds = parse_duration(raw).total_seconds()
    except ValueError:
        raise _annotation_error("visibilityTimeout", expected, raw) from None
    if not (seconds.is_integer() and 0 <= seconds <= MAX_VISIBILITY_TIMEOUT):
        raise _annotation_error("visibilityTimeout", expected, raw)
    return int(seconds)


def redrive(queue_name: str, annotations: Mapping[str, str]) -> tuple[str, int] | None:
    """The dead-letter queue's name and `maxReceiveCount` the component asks for, or None.

    Asked for by `portabind.io/maxReceiveCount` (receives before the move), or
    `portabind.io/maxRetries` N (N + 1 receives; -1: never), or `portabind.io/onFailure`
    (an SQS queue ARN to move to, or `dlq`) with `DEFAULT_MAX_RECEIVE_COUNT` receives. The
    queue is `<queue>-dlq` (FIFO queues: `<queue>-dlq.fifo`) unless onFailure names one.
    The AWS build reads the same annotations for the queue it puts in the template.
    """
    receives = _annotation_int(annotations, "maxReceiveCount", 1, 1000)
    retries = _annotation_int(annotations, "maxRetries", -1, 999)
    on_failure = annotations.get("onFailure")
    if receives is None and retries is not None:
        if retries == -1:  # retried until it succeeds, as on AWS
            return None
        receives = retries + 1
    if receives is None and on_failure is None:
        return None
    if on_failure is not None and on_failure != "dlq":
        if not re.fullmatch(r"arn:aws[a-z-]*:sqs:[^:]*:[^:]*:[^:]+", on_failure):
            raise _annotation_error("onFailure", 'an SQS queue ARN or "dlq"', on_failure)
        dead_letter = on_failure.rsplit(":", 1)[-1]
    else:
        fifo = queue_name.endswith(".fifo")
        dead_letter = queue_name.removesuffix(".fifo") + "-dlq" + (".fifo" if fifo else "")
    return dead_letter, receives if receives is not None else DEFAULT_MAX_RECEIVE_COUNT


def provision(metadata: SqsMetadata, annotations: Mapping[str, str] | None = None) -> None:
    """Create the queue (a FIFO queue when the name ends in `.fifo`); idempotent.

    With annotations it also sets what Dapr's SQS metadata has no field for: the queue's
    `portabind.io/visibilityTimeout` (a Go duration or whole seconds) and the redrive policy
    `redrive` describes, creating the dead-letter queue; SQS itself then moves a message
    that was received `maxReceiveCount` times without being deleted.
    """
    annotations = annotations or {}
    sqs = _aws.client("sqs", metadata)
    fifo = {"FifoQueue": "true"} if metadata.queue_name.endswith(".fifo") else {}
    attributes: dict[str, str] = {}
    visibility = _visibility_timeout(annotations)
    if visibility is not None:
        attributes["VisibilityTimeout"] = str(visibility)
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
    output=SqsOutput,
    input=SqsInput,
    emulator="moto",
    emulate=_aws.emulate,
    provision=provision,
)
