"""`bindings.aws.sqs`: Amazon SQS, input and output (dapr-bindings.md §3.15).

Output `create` sends the payload as the message body. The input listener long-polls the
queue and deletes a message only after the handler returned; a failed message stays in the
queue and SQS delivers it again once its visibility timeout runs out.

`event_from_message` is the one mapping from an SQS message to a `BindingEvent`; the local
listener and the Lambda runtime both use it, so a message looks the same on either path.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings.aws import _aws
from portabind.errors import BindingError
from portabind.events import BindingEvent, BindingResponse, Metadata, rfc3339
from portabind.metadata import setting

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
            for index, message in enumerate(messages):
                if stop.is_set():
                    # On failure they become visible after the visibility timeout anyway.
                    with contextlib.suppress(BotoCoreError, ClientError):
                        self._release(sqs, url, messages[index:])
                    return
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
                try:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                except (BotoCoreError, ClientError) as error:  # at least once: it comes again
                    log.warning("%s: deleting a handled message failed: %s", self.name, error)

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


def provision(metadata: SqsMetadata) -> None:
    """Create the queue (a FIFO queue when the name ends in `.fifo`); idempotent."""
    attributes = {"FifoQueue": "true"} if metadata.queue_name.endswith(".fifo") else {}
    _aws.client("sqs", metadata).create_queue(QueueName=metadata.queue_name, Attributes=attributes)


binding = Binding(
    metadata=SqsMetadata,
    output=SqsOutput,
    input=SqsInput,
    emulator="moto",
    emulate=_aws.emulate,
    provision=provision,
)
