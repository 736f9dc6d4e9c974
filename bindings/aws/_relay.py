"""Local inputs for push-only AWS sources (SNS topics, S3 bucket notifications), read through
an SQS queue the listener owns.

SNS and S3 push to Lambda; a process on a laptop cannot be pushed to, so the listener creates
an SQS queue, has the source deliver into it (`attach`: an SNS subscription, a bucket
notification), and polls it. The queue's name is fixed per component and source, so messages
sent while `portabind run` was stopped are still there on the next start, and attaching again
is a no-op. The queue, its policy and the subscription or notification outlive the run on
purpose; against real AWS (no `--emulate`) delete them by hand when the listener is retired
(queues are named `portabind-<sns|s3>-<component>-<hash>`).

A message is deleted only after every event in it was delivered; after a handler failure it
comes back after a back-off that grows with its receive count (1 s, 2 s, 4 s, … up to a
minute), so a failure never loses a message.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from typing import TYPE_CHECKING, Any

from portabind.bindings.aws import _aws

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterable

    from portabind.events import BindingEvent

log = logging.getLogger(__name__)

#: Messages per ReceiveMessage call (the SQS maximum).
RECEIVE_BATCH = 10
#: Long-poll wait: short enough for `portabind run` to stop within seconds.
WAIT_SECONDS = 5
#: Pause after a failed call to SQS or the source before trying again.
RETRY_SECONDS = 2.0
#: Longest back-off before a failed message is delivered again.
BACKOFF_MAX_SECONDS = 60


def queue_name(kind: str, component: str, source: str) -> str:
    """The relay queue of `component` for `source` (a topic or bucket ARN): stable across
    runs, at most 80 characters of SQS's alphabet."""
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", component)[:48]
    return f"portabind-{kind}-{slug}-{digest}"


def allow(sqs: Any, url: str, queue_arn: str, service: str, source_arn: str) -> None:
    """Let `service` (e.g. sns.amazonaws.com) send to the queue on behalf of `source_arn`
    only. Real AWS requires it; moto ignores queue policies."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})


def relay(
    name: str,
    metadata: _aws.AwsCredentials,
    queue: str,
    attach: Callable[[Any, str, str], None],
    events: Callable[[str], Iterable[BindingEvent]],
    deliver: Callable[[BindingEvent], None],
    stop: threading.Event,
    *,
    endpoint: str | None = None,
    account: str = "",
) -> None:
    """Create `queue` (in moto account `account` when given), call
    `attach(sqs, queue_url, queue_arn)` to route the source into it, then deliver
    `events(body)` of each message until `stop` is set."""
    from botocore.exceptions import BotoCoreError, ClientError

    sqs = _aws.client("sqs", metadata, endpoint=endpoint)
    if account:
        _aws.in_account(sqs, account)
    url: str | None = None
    while not stop.is_set():
        try:
            if url is None:
                created = sqs.create_queue(QueueName=queue)["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=created, AttributeNames=["QueueArn"])
                attach(sqs, created, arn["Attributes"]["QueueArn"])
                url = created
            received = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=RECEIVE_BATCH,
                WaitTimeSeconds=WAIT_SECONDS,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except (BotoCoreError, ClientError) as error:
            log.warning("%s: relaying through SQS queue %s failed: %s", name, queue, error)
            stop.wait(RETRY_SECONDS)
            continue
        messages = received.get("Messages", [])
        for index, message in enumerate(messages):
            if stop.is_set():
                with contextlib.suppress(BotoCoreError, ClientError):
                    _retry_after(sqs, url, messages[index:], 0)
                return
            try:
                for event in events(message["Body"]):
                    deliver(event)
            except Exception as error:  # the handler's failure: the message comes back
                count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
                delay = min(2 ** (count - 1), BACKOFF_MAX_SECONDS)
                log.warning(
                    "%s: message %s failed (%s); delivered again in %d s",
                    name,
                    message["MessageId"],
                    error,
                    delay,
                )
                with contextlib.suppress(BotoCoreError, ClientError):
                    _retry_after(sqs, url, [message], delay)
                continue
            try:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            except (BotoCoreError, ClientError) as error:  # at least once: it comes again
                log.warning("%s: deleting a handled message failed: %s", name, error)


def _retry_after(sqs: Any, url: str, messages: list[dict[str, Any]], seconds: int) -> None:
    """Make `messages` visible again in `seconds` (0: at once, for another consumer)."""
    sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": seconds}
            for i, m in enumerate(messages)
        ],
    )
