"""A small Google Cloud Pub/Sub emulator speaking the real gRPC API.

Google's own emulator ships only with the gcloud SDK, so ``portabind run --emulate`` uses this
one. It is a grpcio server implementing ``google.pubsub.v1.Publisher`` and
``google.pubsub.v1.Subscriber`` closely enough for the official ``google-cloud-pubsub`` client
(point it here with ``PUBSUB_EMULATOR_HOST``): topics, subscriptions, Publish, Pull,
StreamingPull, ack deadlines and redelivery, ordering keys and dead-letter topics. Messages are
(de)serialized with the proto-plus types the client library ships, so no generated code is
needed. State is kept in memory for the lifetime of the ``PubSubEmulator`` object.

Deliberately not implemented, and refused rather than silently ignored: push, BigQuery,
Cloud Storage and Bigtable subscriptions and subscription filters (UNIMPLEMENTED), and the
RPCs this module does not register (Update*, snapshots, Seek, DetachSubscription, schemas, IAM),
which grpc answers with UNIMPLEMENTED. Accepted but simplified: retry policies redeliver without
backoff, exactly-once subscriptions get at-least-once delivery, and messages are retained until
acknowledged regardless of retention settings.

Run it on its own with ``python -m portabind.adapters.local.emulators.pubsub --port 8085``.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import empty_pb2
from google.pubsub_v1 import types as pubsub_types

from portabind.adapters.local.emulators import serve_until_signal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from types import TracebackType

__all__ = ["PubSubEmulator", "main"]

_LOG = logging.getLogger(__name__)

# Pub/Sub's documented limits and defaults, enforced so that code tested here also works
# against the real service.
_DEFAULT_ACK_DEADLINE = 10
_MIN_ACK_DEADLINE = 10
_MAX_ACK_DEADLINE = 600
_DEFAULT_MAX_DELIVERY_ATTEMPTS = 5
_MIN_DELIVERY_ATTEMPTS = 5
_MAX_DELIVERY_ATTEMPTS = 100
# Subscriptions whose topic was deleted report this topic name, as the real service does.
_DELETED_TOPIC = "_deleted-topic_"

# A unary Pull with nothing to deliver holds the call open this long (or until the client's
# own deadline, if shorter) so that polling clients do not spin. The real service holds longer;
# a short hold keeps a local run responsive to Ctrl-C and to tests.
_PULL_HOLD_SECONDS = 3.0
# Upper bound on messages in one Pull or StreamingPull response, like the real service.
_MAX_BATCH = 1000
# Every open StreamingPull occupies one worker thread for its whole life, so leave room for
# many streams plus the unary calls (acks, modacks, publishes) that run alongside them.
_MAX_WORKERS = 64

_PROJECT_NAME = re.compile(r"projects/[^/]+")
_TOPIC_NAME = re.compile(r"projects/[^/]+/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}")
_SUBSCRIPTION_NAME = re.compile(r"projects/[^/]+/subscriptions/[A-Za-z][A-Za-z0-9._~+%-]{2,254}")


class _StatusError(Exception):
    """A failure the client must see as a specific gRPC status code."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def _invalid(details: str) -> _StatusError:
    return _StatusError(grpc.StatusCode.INVALID_ARGUMENT, details)


def _not_found(name: str) -> _StatusError:
    return _StatusError(grpc.StatusCode.NOT_FOUND, f"Resource not found (resource={name}).")


def _check_name(pattern: re.Pattern[str], name: str, expected: str) -> None:
    if not pattern.fullmatch(name):
        raise _invalid(f"Invalid resource name {name!r}: expected {expected}.")


def _check_ack_deadline(seconds: int) -> None:
    # ModifyAckDeadline accepts 0 (nack) up to the maximum; only subscriptions and streams
    # have the 10 s minimum.
    if not 0 <= seconds <= _MAX_ACK_DEADLINE:
        raise _invalid(
            f"Invalid ack deadline {seconds}: must be between 0 and {_MAX_ACK_DEADLINE}."
        )


def _check_stream_ack_deadline(seconds: int) -> None:
    if not _MIN_ACK_DEADLINE <= seconds <= _MAX_ACK_DEADLINE:
        raise _invalid(
            f"Invalid stream_ack_deadline_seconds {seconds}: must be between "
            f"{_MIN_ACK_DEADLINE} and {_MAX_ACK_DEADLINE}."
        )


def _page(names: list[str], page_size: int, page_token: str) -> tuple[list[str], str]:
    """Return one page of the sorted ``names`` and the token for the next page ("" if none).

    The token is the last name of the previous page, so paging stays consistent while
    resources are created or deleted between calls.
    """
    start = bisect.bisect_right(names, page_token) if page_token else 0
    if page_size <= 0:
        return names[start:], ""
    chunk = names[start : start + page_size]
    more = start + page_size < len(names)
    return chunk, chunk[-1] if more else ""


@dataclass
class _Pending:
    """One message in one subscription, from publication until it is acknowledged."""

    seq: int  # publication order, kept across redeliveries so ordered delivery stays ordered
    message: pubsub_types.PubsubMessage
    size: int  # serialized size, for StreamingPull byte flow control
    attempts: int = 0  # deliveries so far, for delivery_attempt and dead-lettering


@dataclass(eq=False)
class _Stream:
    """The server side of one StreamingPull call."""

    subscription: str
    ack_deadline: int
    max_messages: int  # <= 0: no limit
    max_bytes: int  # <= 0: no limit
    ordered: bool
    done: bool = False
    error: _StatusError | None = None


@dataclass
class _Lease:
    """A delivered, not yet acknowledged message, keyed by its ack id."""

    pending: _Pending
    deadline: float  # time.monotonic() after which the message is redelivered
    stream: _Stream | None  # the StreamingPull that received it, for its flow control


@dataclass
class _Subscription:
    config: pubsub_types.Subscription  # never mutated once stored: replaced instead
    backlog: list[_Pending] = field(default_factory=list)  # undelivered, sorted by seq
    leases: dict[str, _Lease] = field(default_factory=dict)


def _seq(pending: _Pending) -> int:
    return pending.seq


class _State:
    """All topics, subscriptions and messages, guarded by one condition variable.

    Waiters (Pull, StreamingPull) sleep on the condition and are woken by anything that can
    make a message deliverable: a publish, an ack or nack (flow control, ordering keys), a
    stream or subscription ending. Ack deadlines expire lazily: every operation first
    redelivers expired leases, and waiters never sleep past the next deadline, so no
    background thread is needed.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._topics: dict[str, pubsub_types.Topic] = {}
        self._subscriptions: dict[str, _Subscription] = {}
        self._message_ids = itertools.count(1)
        self._ack_ids = itertools.count(1)
        self._seqs = itertools.count(1)

    def wake(self) -> None:
        """Wake every waiter so it re-checks its call (used when a call is cancelled)."""
        with self._cond:
            self._cond.notify_all()

    # Topics

    def create_topic(self, topic: pubsub_types.Topic) -> pubsub_types.Topic:
        _check_name(_TOPIC_NAME, topic.name, "projects/{project}/topics/{topic}")
        with self._cond:
            if topic.name in self._topics:
                raise _StatusError(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"Resource already exists in the project (resource={topic.name}).",
                )
            self._topics[topic.name] = topic
            return topic

    def get_topic(self, name: str) -> pubsub_types.Topic:
        with self._cond:
            return self._topic_locked(name)

    def list_topics(
        self, project: str, page_size: int, page_token: str
    ) -> tuple[list[pubsub_types.Topic], str]:
        _check_name(_PROJECT_NAME, project, "projects/{project}")
        with self._cond:
            names = sorted(n for n in self._topics if n.startswith(f"{project}/topics/"))
            page, token = _page(names, page_size, page_token)
            return [self._topics[n] for n in page], token

    def delete_topic(self, name: str) -> None:
        with self._cond:
            self._topic_locked(name)
            del self._topics[name]
            # Subscriptions outlive their topic and keep their backlog, as in Pub/Sub.
            for sub in self._subscriptions.values():
                if sub.config.topic == name:
                    config = pubsub_types.Subscription(sub.config)
                    config.topic = _DELETED_TOPIC
                    sub.config = config

    def list_topic_subscriptions(
        self, topic: str, page_size: int, page_token: str
    ) -> tuple[list[str], str]:
        with self._cond:
            self._topic_locked(topic)
            names = sorted(n for n, s in self._subscriptions.items() if s.config.topic == topic)
            return _page(names, page_size, page_token)

    def publish(self, topic: str, messages: Sequence[pubsub_types.PubsubMessage]) -> list[str]:
        if not messages:
            raise _invalid("The request contains no messages.")
        if any(not m.data and not m.attributes for m in messages):
            raise _invalid(
                "Some messages are empty: a message needs non-empty data or at least one attribute."
            )
        with self._cond:
            self._topic_locked(topic)
            ids = [
                self._publish_locked(topic, m.data, dict(m.attributes), m.ordering_key)
                for m in messages
            ]
            self._cond.notify_all()
            return ids

    # Subscriptions

    def create_subscription(
        self, subscription: pubsub_types.Subscription
    ) -> pubsub_types.Subscription:
        _check_name(_SUBSCRIPTION_NAME, subscription.name, "projects/{project}/subscriptions/{sub}")
        _check_name(_TOPIC_NAME, subscription.topic, "projects/{project}/topics/{topic}")
        unsupported = [
            feature
            for feature, used in (
                ("push delivery", bool(subscription.push_config.push_endpoint)),
                ("BigQuery subscriptions", bool(subscription.bigquery_config.table)),
                ("Cloud Storage subscriptions", bool(subscription.cloud_storage_config.bucket)),
                ("Bigtable subscriptions", bool(subscription.bigtable_config.table)),
                ("subscription filters", bool(subscription.filter)),
            )
            if used
        ]
        if unsupported:
            raise _StatusError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"The portabind Pub/Sub emulator does not support {', '.join(unsupported)}.",
            )
        deadline = subscription.ack_deadline_seconds or _DEFAULT_ACK_DEADLINE
        if not _MIN_ACK_DEADLINE <= deadline <= _MAX_ACK_DEADLINE:
            raise _invalid(
                f"Invalid ack_deadline_seconds {deadline}: must be between "
                f"{_MIN_ACK_DEADLINE} and {_MAX_ACK_DEADLINE}."
            )
        subscription.ack_deadline_seconds = deadline
        if "dead_letter_policy" in subscription:
            policy = subscription.dead_letter_policy
            _check_name(_TOPIC_NAME, policy.dead_letter_topic, "projects/{project}/topics/{topic}")
            attempts = policy.max_delivery_attempts or _DEFAULT_MAX_DELIVERY_ATTEMPTS
            if not _MIN_DELIVERY_ATTEMPTS <= attempts <= _MAX_DELIVERY_ATTEMPTS:
                raise _invalid(
                    f"Invalid max_delivery_attempts {attempts}: must be between "
                    f"{_MIN_DELIVERY_ATTEMPTS} and {_MAX_DELIVERY_ATTEMPTS}."
                )
            policy.max_delivery_attempts = attempts
        with self._cond:
            self._topic_locked(subscription.topic)
            if subscription.name in self._subscriptions:
                raise _StatusError(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"Resource already exists in the project (resource={subscription.name}).",
                )
            self._subscriptions[subscription.name] = _Subscription(subscription)
            return subscription

    def get_subscription(self, name: str) -> pubsub_types.Subscription:
        with self._cond:
            return self._subscription_locked(name).config

    def list_subscriptions(
        self, project: str, page_size: int, page_token: str
    ) -> tuple[list[pubsub_types.Subscription], str]:
        _check_name(_PROJECT_NAME, project, "projects/{project}")
        with self._cond:
            prefix = f"{project}/subscriptions/"
            names = sorted(n for n in self._subscriptions if n.startswith(prefix))
            page, token = _page(names, page_size, page_token)
            return [self._subscriptions[n].config for n in page], token

    def delete_subscription(self, name: str) -> None:
        with self._cond:
            self._subscription_locked(name)
            del self._subscriptions[name]
            # Open streams on it must end with NOT_FOUND.
            self._cond.notify_all()

    # Delivery

    def pull(
        self, name: str, max_messages: int, hold: float, is_active: Callable[[], bool]
    ) -> list[pubsub_types.ReceivedMessage]:
        """Lease up to ``max_messages``, waiting up to ``hold`` seconds for the first one."""
        if max_messages <= 0:
            raise _invalid("max_messages must be positive.")
        until = time.monotonic() + hold
        with self._cond:
            while True:
                self._expire_locked()
                sub = self._subscription_locked(name)
                received = self._deliver_locked(
                    sub,
                    limit=min(max_messages, _MAX_BATCH),
                    byte_room=None,
                    deadline=sub.config.ack_deadline_seconds,
                    stream=None,
                )
                if received or time.monotonic() >= until or not is_active():
                    return received
                self._wait_locked(until)

    def acknowledge(self, name: str, ack_ids: Sequence[str]) -> None:
        if not ack_ids:
            raise _invalid("No ack_ids given.")
        with self._cond:
            self._expire_locked()
            self._ack_locked(self._subscription_locked(name), ack_ids)

    def modify_ack_deadline(self, name: str, ack_ids: Sequence[str], seconds: int) -> None:
        if not ack_ids:
            raise _invalid("No ack_ids given.")
        _check_ack_deadline(seconds)
        with self._cond:
            self._expire_locked()
            sub = self._subscription_locked(name)
            self._modify_locked(sub, [(ack_id, seconds) for ack_id in ack_ids])

    def open_stream(self, request: pubsub_types.StreamingPullRequest) -> _Stream:
        """Validate the first request of a StreamingPull and register the stream."""
        if not request.subscription:
            raise _invalid("The first StreamingPullRequest must name the subscription.")
        _check_stream_ack_deadline(request.stream_ack_deadline_seconds)
        with self._cond:
            sub = self._subscription_locked(request.subscription)
            stream = _Stream(
                subscription=request.subscription,
                ack_deadline=request.stream_ack_deadline_seconds,
                max_messages=request.max_outstanding_messages,
                max_bytes=request.max_outstanding_bytes,
                ordered=sub.config.enable_message_ordering,
            )
        # The first request may already carry acks and deadline changes.
        self.apply_stream_request(stream, request)
        return stream

    def apply_stream_request(
        self, stream: _Stream, request: pubsub_types.StreamingPullRequest
    ) -> None:
        """Apply the acks, deadline changes and stream deadline carried by one request."""
        if len(request.modify_deadline_ack_ids) != len(request.modify_deadline_seconds):
            raise _invalid(
                "modify_deadline_ack_ids and modify_deadline_seconds must have the same length."
            )
        for seconds in request.modify_deadline_seconds:
            _check_ack_deadline(seconds)
        # Zero means "unchanged": clients send it in heartbeats.
        if request.stream_ack_deadline_seconds:
            _check_stream_ack_deadline(request.stream_ack_deadline_seconds)
        with self._cond:
            self._expire_locked()
            if request.stream_ack_deadline_seconds:
                stream.ack_deadline = request.stream_ack_deadline_seconds
            sub = self._subscriptions.get(stream.subscription)
            if sub is None:
                # The response side of the stream reports NOT_FOUND.
                return
            self._ack_locked(sub, request.ack_ids)
            self._modify_locked(
                sub,
                list(
                    zip(
                        request.modify_deadline_ack_ids,
                        request.modify_deadline_seconds,
                        strict=True,
                    )
                ),
            )

    def end_stream(self, stream: _Stream, error: _StatusError | None) -> None:
        """Mark ``stream`` finished (client closed, call cancelled, or a bad request)."""
        with self._cond:
            stream.done = True
            stream.error = stream.error or error
            self._cond.notify_all()

    def next_stream_batch(self, stream: _Stream) -> list[pubsub_types.ReceivedMessage]:
        """Block until messages can be sent on ``stream``; an empty list means it is over."""
        with self._cond:
            while True:
                self._expire_locked()
                if stream.error is not None:
                    raise stream.error
                if stream.done:
                    return []
                sub = self._subscription_locked(stream.subscription)
                # Server-side flow control is approximate by design: the client enforces the
                # exact limits, the server only avoids flooding it.
                held = [lease for lease in sub.leases.values() if lease.stream is stream]
                limit = _MAX_BATCH
                if stream.max_messages > 0:
                    limit = min(limit, stream.max_messages - len(held))
                byte_room = None
                if stream.max_bytes > 0:
                    byte_room = stream.max_bytes - sum(lease.pending.size for lease in held)
                received = self._deliver_locked(
                    sub,
                    limit=limit,
                    byte_room=byte_room,
                    deadline=stream.ack_deadline,
                    stream=stream,
                )
                if received:
                    return received
                self._wait_locked(None)

    # Internals; callers hold self._cond.

    def _topic_locked(self, name: str) -> pubsub_types.Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise _not_found(name)
        return topic

    def _subscription_locked(self, name: str) -> _Subscription:
        sub = self._subscriptions.get(name)
        if sub is None:
            raise _not_found(name)
        return sub

    def _publish_locked(
        self, topic: str, data: bytes, attributes: dict[str, str], ordering_key: str
    ) -> str:
        message = pubsub_types.PubsubMessage(
            data=data,
            attributes=attributes,
            ordering_key=ordering_key,
            message_id=str(next(self._message_ids)),
            publish_time=datetime.now(timezone.utc),
        )
        size = int(pubsub_types.PubsubMessage.pb(message).ByteSize())
        for sub in self._subscriptions.values():
            if sub.config.topic == topic:
                # Sequence numbers only grow, so appending keeps the backlog sorted.
                sub.backlog.append(_Pending(next(self._seqs), message, size))
        return str(message.message_id)

    def _deliver_locked(
        self,
        sub: _Subscription,
        *,
        limit: int,
        byte_room: int | None,
        deadline: int,
        stream: _Stream | None,
    ) -> list[pubsub_types.ReceivedMessage]:
        """Lease up to ``limit`` messages (and roughly ``byte_room`` bytes) from ``sub``."""
        ordered = sub.config.enable_message_ordering
        # With ordering on, a key with a message in flight is blocked until that message is
        # acked, so the next message of the key cannot overtake a redelivery of the previous.
        busy_keys = (
            {lease.pending.message.ordering_key for lease in sub.leases.values()}
            if ordered
            else set()
        )
        counts_attempts = bool(sub.config.dead_letter_policy.dead_letter_topic)
        expires = time.monotonic() + deadline
        received: list[pubsub_types.ReceivedMessage] = []
        kept: list[_Pending] = []
        for pending in sub.backlog:
            key = pending.message.ordering_key
            full = len(received) >= limit or (byte_room is not None and byte_room <= 0)
            if full or (ordered and key and key in busy_keys):
                kept.append(pending)
                continue
            if ordered and key:
                busy_keys.add(key)
            if byte_room is not None:
                byte_room -= pending.size
            pending.attempts += 1
            ack_id = str(next(self._ack_ids))
            sub.leases[ack_id] = _Lease(pending, expires, stream)
            received.append(
                pubsub_types.ReceivedMessage(
                    ack_id=ack_id,
                    message=pending.message,
                    # Pub/Sub reports attempts only on subscriptions with a dead-letter policy.
                    delivery_attempt=pending.attempts if counts_attempts else 0,
                )
            )
        sub.backlog = kept
        return received

    def _ack_locked(self, sub: _Subscription, ack_ids: Iterable[str]) -> None:
        # Unknown ack ids belong to expired or already acked deliveries; Pub/Sub ignores them.
        for ack_id in ack_ids:
            sub.leases.pop(ack_id, None)
        # Acks free flow-control room and unblock ordering keys.
        self._cond.notify_all()

    def _modify_locked(self, sub: _Subscription, changes: Iterable[tuple[str, int]]) -> None:
        # A deadline of 0 is a nack: the lease expires now and the next sweep redelivers it
        # (or dead-letters it), exactly like a deadline that ran out.
        now = time.monotonic()
        for ack_id, seconds in changes:
            lease = sub.leases.get(ack_id)
            if lease is not None:
                lease.deadline = now + seconds
        # Waiters sleep until the earliest deadline they saw, which may just have moved.
        self._cond.notify_all()

    def _expire_locked(self) -> None:
        now = time.monotonic()
        for sub in list(self._subscriptions.values()):
            expired = [ack_id for ack_id, lease in sub.leases.items() if lease.deadline <= now]
            for ack_id in expired:
                self._redeliver_locked(sub, sub.leases.pop(ack_id).pending)

    def _redeliver_locked(self, sub: _Subscription, pending: _Pending) -> None:
        """Handle a failed delivery (nack or expired deadline): retry or dead-letter."""
        policy = sub.config.dead_letter_policy
        if policy.dead_letter_topic and pending.attempts >= policy.max_delivery_attempts:
            if policy.dead_letter_topic in self._topics:
                self._dead_letter_locked(sub, pending, policy.dead_letter_topic)
                return
            # Like Pub/Sub without permission to publish there: keep the message.
            _LOG.warning(
                "Dead-letter topic %s of %s does not exist; redelivering message %s.",
                policy.dead_letter_topic,
                sub.config.name,
                pending.message.message_id,
            )
        bisect.insort(sub.backlog, pending, key=_seq)
        self._cond.notify_all()

    def _dead_letter_locked(self, sub: _Subscription, pending: _Pending, topic: str) -> None:
        message = pending.message
        # The attributes Pub/Sub adds to dead-lettered messages, so handlers of the
        # dead-letter topic can tell where a message came from.
        _, project, _, subscription_id = sub.config.name.split("/")
        published: datetime = message.publish_time
        attributes = {
            **message.attributes,
            "CloudPubSubDeadLetterSourceDeliveryCount": str(pending.attempts),
            "CloudPubSubDeadLetterSourceSubscription": subscription_id,
            "CloudPubSubDeadLetterSourceSubscriptionProject": project,
            "CloudPubSubDeadLetterSourceTopicPublishTime": published.strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            ),
        }
        new_id = self._publish_locked(topic, message.data, attributes, message.ordering_key)
        _LOG.info(
            "Message %s of %s dead-lettered to %s as message %s after %d delivery attempts.",
            message.message_id,
            sub.config.name,
            topic,
            new_id,
            pending.attempts,
        )
        self._cond.notify_all()

    def _wait_locked(self, until: float | None) -> None:
        """Sleep until notified, ``until`` passes, or the next ack deadline expires."""
        now = time.monotonic()
        wakeups = [
            lease.deadline for s in self._subscriptions.values() for lease in s.leases.values()
        ]
        if until is not None:
            wakeups.append(until)
        self._cond.wait(max(0.0, min(wakeups) - now) if wakeups else None)


def _call(
    behavior: Callable[[Any, grpc.ServicerContext], Any],
    context: grpc.ServicerContext,
    request: Any,
) -> Any:
    try:
        return behavior(request, context)
    except _StatusError as error:
        # abort() raises; re-raising keeps a non-raising context from returning None.
        context.abort(error.code, error.details)
        raise


def _unary(
    behavior: Callable[[Any, grpc.ServicerContext], Any],
    request_type: Any,
    serialize: Callable[[Any], bytes],
) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        lambda request, context: _call(behavior, context, request),
        request_deserializer=request_type.deserialize,
        response_serializer=serialize,
    )


class _Servicer:
    """The RPCs, translating between the wire types and ``_State``."""

    def __init__(self, state: _State) -> None:
        self._state = state

    def handlers(self) -> tuple[grpc.GenericRpcHandler, ...]:
        t = pubsub_types
        empty = empty_pb2.Empty.SerializeToString
        publisher = grpc.method_handlers_generic_handler(
            "google.pubsub.v1.Publisher",
            {
                "CreateTopic": _unary(self.create_topic, t.Topic, t.Topic.serialize),
                "GetTopic": _unary(self.get_topic, t.GetTopicRequest, t.Topic.serialize),
                "ListTopics": _unary(
                    self.list_topics, t.ListTopicsRequest, t.ListTopicsResponse.serialize
                ),
                "DeleteTopic": _unary(self.delete_topic, t.DeleteTopicRequest, empty),
                "Publish": _unary(self.publish, t.PublishRequest, t.PublishResponse.serialize),
                "ListTopicSubscriptions": _unary(
                    self.list_topic_subscriptions,
                    t.ListTopicSubscriptionsRequest,
                    t.ListTopicSubscriptionsResponse.serialize,
                ),
            },
        )
        subscriber = grpc.method_handlers_generic_handler(
            "google.pubsub.v1.Subscriber",
            {
                "CreateSubscription": _unary(
                    self.create_subscription, t.Subscription, t.Subscription.serialize
                ),
                "GetSubscription": _unary(
                    self.get_subscription, t.GetSubscriptionRequest, t.Subscription.serialize
                ),
                "ListSubscriptions": _unary(
                    self.list_subscriptions,
                    t.ListSubscriptionsRequest,
                    t.ListSubscriptionsResponse.serialize,
                ),
                "DeleteSubscription": _unary(
                    self.delete_subscription, t.DeleteSubscriptionRequest, empty
                ),
                "Pull": _unary(self.pull, t.PullRequest, t.PullResponse.serialize),
                "Acknowledge": _unary(self.acknowledge, t.AcknowledgeRequest, empty),
                "ModifyAckDeadline": _unary(
                    self.modify_ack_deadline, t.ModifyAckDeadlineRequest, empty
                ),
                "StreamingPull": grpc.stream_stream_rpc_method_handler(
                    self.streaming_pull,
                    request_deserializer=t.StreamingPullRequest.deserialize,
                    response_serializer=t.StreamingPullResponse.serialize,
                ),
            },
        )
        return publisher, subscriber

    # Publisher

    def create_topic(
        self, request: pubsub_types.Topic, context: grpc.ServicerContext
    ) -> pubsub_types.Topic:
        return self._state.create_topic(request)

    def get_topic(
        self, request: pubsub_types.GetTopicRequest, context: grpc.ServicerContext
    ) -> pubsub_types.Topic:
        return self._state.get_topic(request.topic)

    def list_topics(
        self, request: pubsub_types.ListTopicsRequest, context: grpc.ServicerContext
    ) -> pubsub_types.ListTopicsResponse:
        topics, token = self._state.list_topics(
            request.project, request.page_size, request.page_token
        )
        return pubsub_types.ListTopicsResponse(topics=topics, next_page_token=token)

    def delete_topic(
        self, request: pubsub_types.DeleteTopicRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self._state.delete_topic(request.topic)
        return empty_pb2.Empty()

    def publish(
        self, request: pubsub_types.PublishRequest, context: grpc.ServicerContext
    ) -> pubsub_types.PublishResponse:
        ids = self._state.publish(request.topic, request.messages)
        return pubsub_types.PublishResponse(message_ids=ids)

    def list_topic_subscriptions(
        self, request: pubsub_types.ListTopicSubscriptionsRequest, context: grpc.ServicerContext
    ) -> pubsub_types.ListTopicSubscriptionsResponse:
        names, token = self._state.list_topic_subscriptions(
            request.topic, request.page_size, request.page_token
        )
        return pubsub_types.ListTopicSubscriptionsResponse(
            subscriptions=names, next_page_token=token
        )

    # Subscriber

    def create_subscription(
        self, request: pubsub_types.Subscription, context: grpc.ServicerContext
    ) -> pubsub_types.Subscription:
        return self._state.create_subscription(request)

    def get_subscription(
        self, request: pubsub_types.GetSubscriptionRequest, context: grpc.ServicerContext
    ) -> pubsub_types.Subscription:
        return self._state.get_subscription(request.subscription)

    def list_subscriptions(
        self, request: pubsub_types.ListSubscriptionsRequest, context: grpc.ServicerContext
    ) -> pubsub_types.ListSubscriptionsResponse:
        subscriptions, token = self._state.list_subscriptions(
            request.project, request.page_size, request.page_token
        )
        return pubsub_types.ListSubscriptionsResponse(
            subscriptions=subscriptions, next_page_token=token
        )

    def delete_subscription(
        self, request: pubsub_types.DeleteSubscriptionRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self._state.delete_subscription(request.subscription)
        return empty_pb2.Empty()

    def pull(
        self, request: pubsub_types.PullRequest, context: grpc.ServicerContext
    ) -> pubsub_types.PullResponse:
        hold = 0.0
        if not request.return_immediately:
            remaining = context.time_remaining()
            hold = _PULL_HOLD_SECONDS if remaining is None else min(_PULL_HOLD_SECONDS, remaining)
            # Cancellation and server shutdown must end the hold at once.
            context.add_callback(self._state.wake)
        received = self._state.pull(
            request.subscription, request.max_messages, hold, context.is_active
        )
        return pubsub_types.PullResponse(received_messages=received)

    def acknowledge(
        self, request: pubsub_types.AcknowledgeRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self._state.acknowledge(request.subscription, request.ack_ids)
        return empty_pb2.Empty()

    def modify_ack_deadline(
        self, request: pubsub_types.ModifyAckDeadlineRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self._state.modify_ack_deadline(
            request.subscription, request.ack_ids, request.ack_deadline_seconds
        )
        return empty_pb2.Empty()

    def streaming_pull(
        self,
        requests: Iterator[pubsub_types.StreamingPullRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[pubsub_types.StreamingPullResponse]:
        try:
            first = next(requests, None)
            if first is None:
                return
            stream = self._state.open_stream(first)
            # Cancellation, client disconnects and server shutdown end the stream.
            if not context.add_callback(partial(self._state.end_stream, stream, None)):
                return
            # Requests (acks, deadline changes, heartbeats) arrive while responses are being
            # sent, so they are consumed on their own thread.
            threading.Thread(
                target=self._read_requests,
                args=(requests, stream),
                name="pubsub-emulator-streaming-pull",
                daemon=True,
            ).start()
            properties = pubsub_types.StreamingPullResponse.SubscriptionProperties(
                message_ordering_enabled=stream.ordered
            )
            while received := self._state.next_stream_batch(stream):
                yield pubsub_types.StreamingPullResponse(
                    received_messages=received, subscription_properties=properties
                )
        except _StatusError as error:
            context.abort(error.code, error.details)
            raise

    def _read_requests(
        self, requests: Iterator[pubsub_types.StreamingPullRequest], stream: _Stream
    ) -> None:
        error: _StatusError | None = None
        try:
            for request in requests:
                self._state.apply_stream_request(stream, request)
        except _StatusError as bad_request:
            error = bad_request
        except grpc.RpcError:
            # The call was cancelled or the server is stopping: nothing left to read.
            pass
        self._state.end_stream(stream, error)


class PubSubEmulator:
    """An in-memory Pub/Sub server for the real client; use as a context manager or start/stop.

    Topics, subscriptions and messages survive ``stop()`` and a later ``start()``; they live
    as long as this object.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._requested_port = port
        self._servicer = _Servicer(_State())
        self._server: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._port = 0

    def start(self) -> None:
        """Bind and start serving; port 0 picks a free port (see ``address``)."""
        if self._server is not None:
            raise RuntimeError("The Pub/Sub emulator is already running.")
        executor = ThreadPoolExecutor(
            max_workers=_MAX_WORKERS, thread_name_prefix="pubsub-emulator"
        )
        server = grpc.server(executor, handlers=self._servicer.handlers())
        target = f"{_bracket(self._host)}:{self._requested_port}"
        try:
            port = int(server.add_insecure_port(target))
        except RuntimeError as error:  # grpcio reports a failed bind this way
            executor.shutdown(wait=False)
            raise OSError(f"Pub/Sub emulator cannot listen on {target}: {error}") from error
        server.start()
        self._server, self._executor, self._port = server, executor, port

    def stop(self) -> None:
        """Stop serving: open calls are cancelled at once. Safe to call when not running."""
        if self._server is None or self._executor is None:
            return
        # No grace period: streaming pulls never finish on their own, so a grace period would
        # only delay every shutdown by its full length.
        self._server.stop(grace=None).wait()
        self._executor.shutdown(wait=True)
        self._server = self._executor = None

    @property
    def address(self) -> str:
        """``host:port`` of the running server: the value for ``PUBSUB_EMULATOR_HOST``."""
        if self._server is None:
            raise RuntimeError("The Pub/Sub emulator is not running; call start() first.")
        return f"{_bracket(self._host)}:{self._port}"

    def __enter__(self) -> PubSubEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _bracket(host: str) -> str:
    """Bracket IPv6 literals so that ``host:port`` stays unambiguous."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGINT or SIGTERM; print its address on stdout."""
    return serve_until_signal(
        PubSubEmulator,
        title="Pub/Sub",
        address_variable="PUBSUB_EMULATOR_HOST",
        default_port=8085,
        argv=argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
