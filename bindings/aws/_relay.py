"""Local inputs for push-only AWS sources (SNS topics, S3 bucket notifications), read through
an SQS queue the listener owns.

SNS and S3 push to Lambda; a process on a laptop cannot be pushed to, so the listener creates
an SQS queue, has the source deliver into it (`attach`: an SNS subscription, a bucket
notification), and polls it. The queue's name is fixed per component and source, so messages
sent while `portabind run` was stopped are still there on the next start, and attaching again
is a no-op. The queue, its policy and the subscription or notification outlive the run on
purpose; against real AWS (no `--emulate`) delete them by hand when the listener is retired
(queues are named `portabind-<sns|s3>-<component>-<hash>`).

The queue is polled as `bindings._polling` describes: a message is deleted once every event
in it was delivered (handled messages are deleted as `bindings.aws.sqs` says: each at once on
a queue with a redrive policy, else those of a receive together); after a handler failure it
comes back after a back-off that grows with its receive count, so a failure never loses a
message.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from portabind.bindings.aws import _aws
from portabind.bindings.aws.sqs import SqsQueue

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterable

    from portabind.events import BindingEvent


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


class _RelayQueue(SqsQueue):
    """The relay queue: created, and the source attached to it, on the first receive (and
    again after that failed); each message's body read by `read`."""

    def __init__(
        self,
        name: str,
        sqs: Any,
        queue: str,
        attach: Callable[[Any, str, str], None],
        read: Callable[[str], Iterable[BindingEvent]],
    ) -> None:
        super().__init__(name, sqs, queue)
        self._attach = attach
        self._read = read

    def _locate(self) -> tuple[str, str]:
        url: str = self.sqs.create_queue(QueueName=self.queue_name)["QueueUrl"]
        arn = self._read_queue(url)
        self._attach(self.sqs, url, arn)
        return url, arn

    def events(self, message: dict[str, Any]) -> Iterable[BindingEvent]:
        return self._read(message["Body"])


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
    sqs = _aws.client("sqs", metadata, endpoint=endpoint)
    if account:
        _aws.in_account(sqs, account)
    _RelayQueue(name, sqs, queue, attach, events).poll(deliver, stop)
