"""`bindings.gcp.pubsub`: publish to a Pub/Sub topic; receive from a subscription (Dapr's:
components-contrib `bindings/gcp/pubsub/pubsub.go`).

Output `create` publishes the payload (request metadata `topic` overrides the component's)
and returns once the server has acknowledged it; like Dapr it sends no attributes. Input is a
streaming pull: a message is acked after the handler returns and nacked when it raises, so
Pub/Sub redelivers it (or dead-letters it, by the subscription's policy).

`message_event` is the one mapping from a Pub/Sub message to a `BindingEvent`, used by the
local listener and by the Cloud Functions adapter (which receives the message inside a
`google.cloud.pubsub.topic.v1.messagePublished` CloudEvent).
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import logging
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from portabind.binding import Binding, InputBinding, OutputBinding
from portabind.bindings.gcp._gcp import (
    PUBSUB_EMULATOR_ENV,
    GcpMetadata,
    credentials,
    emulate_credentials,
)
from portabind.errors import BindingError, NotFound, UserError
from portabind.events import BindingEvent, BindingResponse, Metadata
from portabind.metadata import setting

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from google.cloud.pubsub_v1 import PublisherClient

_LOG = logging.getLogger(__name__)

#: How long `create` waits for the server to acknowledge a publish.
PUBLISH_TIMEOUT = 60.0
#: How long a stopping listener waits for the message being handled and its ack.
SHUTDOWN_SECONDS = 30.0


class PubSubMetadata(GcpMetadata):
    binding_type = "bindings.gcp.pubsub"

    topic: str | None = setting("topic", None, description="topic `create` publishes to")
    subscription: str | None = setting(
        "subscription", None, description="existing subscription the input pulls from"
    )


def topic_path(project: str, topic: str) -> str:
    """A topic's full name; a name given in full (`projects/P/topics/T`) is kept."""
    return topic if topic.startswith("projects/") else f"projects/{project}/topics/{topic}"


def subscription_path(project: str, subscription: str) -> str:
    """A subscription's full name; a name given in full is kept."""
    if subscription.startswith("projects/"):
        return subscription
    return f"projects/{project}/subscriptions/{subscription}"


# --- the normalized event ------------------------------------------------------------------

_RFC3339 = re.compile(
    r"^(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)$"
)


def _parse_rfc3339(text: str) -> tuple[datetime, int]:
    """An RFC 3339 time as (whole seconds in UTC, nanoseconds): Pub/Sub's JSON carries up to
    nine fractional digits, more than `datetime` holds."""
    match = _RFC3339.match(text.strip())
    if match is None:
        raise ValueError(f"publishTime {text!r} is not an RFC 3339 time")
    day, clock, fraction, zone = match.groups()
    offset = "+00:00" if zone in ("Z", "z") else zone
    seconds = datetime.fromisoformat(f"{day}T{clock}{offset}").astimezone(timezone.utc)
    return seconds, int((fraction or "").ljust(9, "0"))


def publish_time(value: datetime | str) -> str:
    """`publishTime` as RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits (protobuf's JSON
    form, which Pub/Sub uses), so the SDK's timestamp and the CloudEvent's string agree."""
    if isinstance(value, str):
        seconds, nanos = _parse_rfc3339(value)
    else:
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        moment = moment.astimezone(timezone.utc)
        # The SDK's DatetimeWithNanoseconds keeps the full precision in `nanosecond`.
        nanos = int(getattr(moment, "nanosecond", 0) or moment.microsecond * 1000)
        seconds = moment.replace(microsecond=0)
    text = seconds.strftime("%Y-%m-%dT%H:%M:%S")
    if nanos % 1_000_000 == 0 and nanos:
        text += f".{nanos // 1_000_000:03d}"
    elif nanos % 1000 == 0 and nanos:
        text += f".{nanos // 1000:06d}"
    elif nanos:
        text += f".{nanos:09d}"
    return text + "Z"


def message_event(name: str, message: Any, subscription: str | None = None) -> BindingEvent:
    """The `BindingEvent` of one Pub/Sub message, given either as the SDK's received message
    (`google.cloud.pubsub_v1.subscriber.message.Message`) or as the data of a
    `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent
    (`{"message": {"data": <base64>, ...}, "subscription": ...}`).

    `data` is the payload as published (the CloudEvent's base64 removed). Metadata: each
    attribute under its own name, then Dapr's `id` and `publishTime` (RFC 3339), plus
    `orderingKey` when set and `subscription` (its full name) where known; Dapr's keys win
    over an attribute of the same name.
    """
    if isinstance(message, Mapping):
        body: Mapping[str, Any] = message.get("message") or {}
        data = base64.b64decode(body.get("data") or "")
        message_id = str(body.get("messageId") or body.get("message_id") or "")
        published: datetime | str = str(body.get("publishTime") or body.get("publish_time"))
        attributes: Mapping[str, Any] = body.get("attributes") or {}
        ordering_key = str(body.get("orderingKey") or body.get("ordering_key") or "")
        subscription = message.get("subscription") or subscription
    else:
        data = bytes(message.data)
        message_id = str(message.message_id)
        published = message.publish_time
        attributes = message.attributes
        ordering_key = str(message.ordering_key or "")
    values = {str(key): str(value) for key, value in attributes.items()}
    values["id"] = message_id
    values["publishTime"] = publish_time(published)
    if ordering_key:
        values["orderingKey"] = ordering_key
    if subscription:
        values["subscription"] = str(subscription)
    return BindingEvent(name, data, Metadata(values))


# --- output --------------------------------------------------------------------------------


def _publisher(metadata: PubSubMetadata) -> PublisherClient:
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient(credentials=credentials(metadata, PUBSUB_EMULATOR_ENV))


class PubSubOutput(OutputBinding[PubSubMetadata]):
    operations = ("create",)

    def __init__(self, name: str, metadata: PubSubMetadata) -> None:
        super().__init__(name, metadata)
        self._client: PublisherClient | None = None

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        topic = metadata.get("topic") or self.metadata.topic
        if not topic:
            raise BindingError(
                self.name,
                "create",
                "no topic: set `topic` in the component or in the request metadata",
            )
        from google.api_core import exceptions

        if self._client is None:
            self._client = _publisher(self.metadata)
        path = topic_path(self.metadata.project_id, topic)
        try:
            self._client.publish(path, data).result(timeout=PUBLISH_TIMEOUT)
        except exceptions.NotFound as error:
            raise NotFound(self.name, "create", f"topic {path} not found: {error}") from error
        except Exception as error:
            raise BindingError(self.name, "create", f"publishing to {path}: {error}") from error
        return BindingResponse()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.stop()


# --- input ---------------------------------------------------------------------------------


class PubSubInput(InputBinding[PubSubMetadata]):
    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        if not self.metadata.subscription:
            raise UserError(
                f"input binding {self.name!r} ({PubSubMetadata.binding_type}) has no subscription",
                hint="set the `subscription` metadata field to the subscription to pull from",
            )
        from google.cloud import pubsub_v1

        path = subscription_path(self.metadata.project_id, self.metadata.subscription)

        def receive(message: Any) -> None:
            try:
                deliver(message_event(self.name, message, path))
            except Exception as error:
                # A nack makes Pub/Sub redeliver now instead of after the ack deadline.
                _LOG.warning(
                    "%s: message %s failed, redelivering: %s", self.name, message.message_id, error
                )
                message.nack()
            else:
                message.ack()

        subscriber = pubsub_v1.SubscriberClient(
            credentials=credentials(self.metadata, PUBSUB_EMULATOR_ENV)
        )
        with subscriber:
            # On stop, a message being handled finishes and its ack goes out before the
            # channel closes (else the ack fails on the closed channel, and the message
            # comes back though it was handled).
            streaming = subscriber.subscribe(path, receive, await_callbacks_on_shutdown=True)
            try:
                while not stop.wait(0.1):
                    if streaming.done():
                        streaming.result()  # the stream ended: raise why
                        return
            finally:
                if not streaming.done():
                    streaming.cancel()
                    # Returns once the stream, its callbacks and their acks are done; a
                    # handler that never returns cannot hold the stop for ever.
                    with contextlib.suppress(concurrent.futures.TimeoutError):
                        streaming.result(timeout=SHUTDOWN_SECONDS)


def provision(metadata: PubSubMetadata) -> None:
    """Create the topic and the subscription (on that topic) if missing."""
    from google.api_core import exceptions
    from google.cloud import pubsub_v1

    if metadata.subscription and not metadata.topic:
        raise UserError(
            f"cannot create subscription {metadata.subscription!r}: the component names no topic",
            hint="set the `topic` metadata field to the topic the subscription reads",
        )
    if not metadata.topic:
        return
    creds = credentials(metadata, PUBSUB_EMULATOR_ENV)
    topic = topic_path(metadata.project_id, metadata.topic)
    publisher = pubsub_v1.PublisherClient(credentials=creds)
    try:
        with contextlib.suppress(exceptions.AlreadyExists):
            publisher.create_topic(name=topic)
    finally:
        publisher.stop()
    if metadata.subscription:
        with (
            pubsub_v1.SubscriberClient(credentials=creds) as subscriber,
            contextlib.suppress(exceptions.AlreadyExists),
        ):
            subscriber.create_subscription(
                name=subscription_path(metadata.project_id, metadata.subscription), topic=topic
            )


binding = Binding(
    metadata=PubSubMetadata,
    output=PubSubOutput,
    input=PubSubInput,
    emulator="pubsub",
    emulate=emulate_credentials,
    provision=provision,
    requires=("google-cloud-pubsub",),
)
