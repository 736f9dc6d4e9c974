"""The in-project Pub/Sub emulator, driven by the real google-cloud-pubsub clients."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import TYPE_CHECKING

import pytest
from google.api_core import exceptions
from google.cloud import pubsub_v1

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from google.cloud.pubsub_v1.subscriber.message import Message

    from portabind.adapters.local.emulators.pubsub import PubSubEmulator

PROJECT = "projects/portabind-test"


@pytest.fixture
def publisher(
    pubsub_server: PubSubEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pubsub_v1.PublisherClient]:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_server.address)
    client = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
    yield client
    client.stop()


@pytest.fixture
def subscriber(
    pubsub_server: PubSubEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pubsub_v1.SubscriberClient]:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_server.address)
    client = pubsub_v1.SubscriberClient()
    yield client
    client.close()


def _name(kind: str) -> str:
    return f"{PROJECT}/{kind}/t-{uuid.uuid4().hex[:12]}"


def _topic(publisher: pubsub_v1.PublisherClient) -> str:
    name = _name("topics")
    publisher.create_topic(name=name)
    return name


def _subscription(subscriber: pubsub_v1.SubscriberClient, topic: str, **settings: object) -> str:
    name = _name("subscriptions")
    subscriber.create_subscription(request={"name": name, "topic": topic, **settings})
    return name


def _pull(
    subscriber: pubsub_v1.SubscriberClient, subscription: str, *, max_messages: int = 10
) -> list[pubsub_v1.types.ReceivedMessage]:
    """Pull, letting the emulator hold the call until something arrives (or ~3 s pass)."""
    response = subscriber.pull(
        request={"subscription": subscription, "max_messages": max_messages}, timeout=10
    )
    return list(response.received_messages)


def _pull_now(
    subscriber: pubsub_v1.SubscriberClient, subscription: str
) -> list[pubsub_v1.types.ReceivedMessage]:
    """Pull without waiting: what is deliverable right now."""
    with pytest.warns(DeprecationWarning):  # the client frowns upon return_immediately
        response = subscriber.pull(
            request={"subscription": subscription, "max_messages": 10, "return_immediately": True},
            timeout=10,
        )
    return list(response.received_messages)


def test_topics_and_subscriptions_are_managed(
    publisher: pubsub_v1.PublisherClient, subscriber: pubsub_v1.SubscriberClient
) -> None:
    topic = _topic(publisher)
    subscription = _subscription(subscriber, topic)

    assert publisher.get_topic(topic=topic).name == topic
    assert topic in {t.name for t in publisher.list_topics(project=PROJECT)}
    assert list(publisher.list_topic_subscriptions(topic=topic)) == [subscription]
    config = subscriber.get_subscription(subscription=subscription)
    assert (config.topic, config.ack_deadline_seconds) == (topic, 10)
    assert subscription in {s.name for s in subscriber.list_subscriptions(project=PROJECT)}

    with pytest.raises(exceptions.AlreadyExists):
        publisher.create_topic(name=topic)
    with pytest.raises(exceptions.AlreadyExists):
        subscriber.create_subscription(name=subscription, topic=topic)

    publisher.delete_topic(topic=topic)
    # A subscription outlives its topic, as on Pub/Sub.
    assert subscriber.get_subscription(subscription=subscription).topic == "_deleted-topic_"
    subscriber.delete_subscription(subscription=subscription)
    with pytest.raises(exceptions.NotFound):
        subscriber.get_subscription(subscription=subscription)


def test_listing_pages_through_every_topic(publisher: pubsub_v1.PublisherClient) -> None:
    topics = {_topic(publisher) for _ in range(5)}
    pager = publisher.list_topics(request={"project": PROJECT, "page_size": 2})
    listed = [t.name for t in pager]
    assert topics <= set(listed)
    assert len(listed) == len(set(listed))


def test_publish_then_pull_passes_data_attributes_and_ordering_key(
    publisher: pubsub_v1.PublisherClient, subscriber: pubsub_v1.SubscriberClient
) -> None:
    topic = _topic(publisher)
    first = _subscription(subscriber, topic)
    second = _subscription(subscriber, topic)

    message_id = publisher.publish(
        topic, b"payload", ordering_key="order-7", origin="test", kind="created"
    ).result(timeout=10)

    for subscription in (first, second):  # every subscription of the topic gets a copy
        (received,) = _pull(subscriber, subscription)
        message = received.message
        assert message.data == b"payload"
        assert dict(message.attributes) == {"origin": "test", "kind": "created"}
        assert message.ordering_key == "order-7"
        assert message.message_id == message_id
        assert message.publish_time.timestamp() == pytest.approx(time.time(), abs=60)
        assert received.delivery_attempt == 0  # reported only with a dead-letter policy
        subscriber.acknowledge(subscription=subscription, ack_ids=[received.ack_id])
        assert _pull_now(subscriber, subscription) == []


def test_nack_redelivers_at_once(
    publisher: pubsub_v1.PublisherClient, subscriber: pubsub_v1.SubscriberClient
) -> None:
    topic = _topic(publisher)
    subscription = _subscription(subscriber, topic)
    publisher.publish(topic, b"retry me").result(timeout=10)

    (first,) = _pull(subscriber, subscription)
    assert _pull_now(subscriber, subscription) == []  # leased: not delivered twice
    subscriber.modify_ack_deadline(
        subscription=subscription, ack_ids=[first.ack_id], ack_deadline_seconds=0
    )
    (again,) = _pull_now(subscriber, subscription)
    assert again.message.message_id == first.message.message_id
    assert again.ack_id != first.ack_id


def test_expired_ack_deadline_redelivers(
    publisher: pubsub_v1.PublisherClient, subscriber: pubsub_v1.SubscriberClient
) -> None:
    topic = _topic(publisher)
    subscription = _subscription(subscriber, topic)
    publisher.publish(topic, b"slow consumer").result(timeout=10)

    (first,) = _pull(subscriber, subscription)
    subscriber.modify_ack_deadline(
        subscription=subscription, ack_ids=[first.ack_id], ack_deadline_seconds=1
    )
    shortened = time.monotonic()
    assert _pull_now(subscriber, subscription) == []
    (again,) = _pull(subscriber, subscription)  # the held Pull returns once the lease expires
    assert time.monotonic() - shortened >= 0.9
    assert again.message.message_id == first.message.message_id

    # An ack with the expired ack id is ignored; the current one settles the message.
    subscriber.acknowledge(subscription=subscription, ack_ids=[first.ack_id])
    subscriber.modify_ack_deadline(
        subscription=subscription, ack_ids=[again.ack_id], ack_deadline_seconds=1
    )
    subscriber.acknowledge(subscription=subscription, ack_ids=[again.ack_id])
    time.sleep(1.2)
    assert _pull_now(subscriber, subscription) == []


def test_ordered_subscription_holds_a_key_until_its_message_is_acked(
    publisher: pubsub_v1.PublisherClient, subscriber: pubsub_v1.SubscriberClient
) -> None:
    topic = _topic(publisher)
    subscription = _subscription(subscriber, topic, enable_message_ordering=True)
    for data in (b"k1", b"k2", b"other"):
        key = "other" if data == b"other" else "k"
        publisher.publish(topic, data, ordering_key=key).result(timeout=10)

    batch = _pull(subscriber, subscription)
    assert [m.message.data for m in batch] == [b"k1", b"other"]
    subscriber.modify_ack_deadline(  # a nack puts k1 back ahead of k2
        subscription=subscription, ack_ids=[batch[0].ack_id], ack_deadline_seconds=0
    )
    (redelivered,) = _pull_now(subscriber, subscription)
    assert redelivered.message.data == b"k1"
    subscriber.acknowledge(subscription=subscription, ack_ids=[redelivered.ack_id])
    assert [m.message.data for m in _pull_now(subscriber, subscription)] == [b"k2"]


def test_streaming_pull_delivers_to_a_callback(
    publisher: pubsub_v1.PublisherClient, subscriber: pubsub_v1.SubscriberClient
) -> None:
    topic = _topic(publisher)
    subscription = _subscription(subscriber, topic)
    received: list[tuple[bytes, str, int]] = []
    all_settled = threading.Event()

    def callback(message: Message) -> None:
        # Fail the first delivery of "b" to see the nack come back over the stream.
        if message.data == b"b" and not any(data == b"b" for data, *_ in received):
            received.append((message.data, message.attributes["n"], 0))
            message.nack()
            return
        received.append((message.data, message.attributes["n"], 1))
        message.ack()
        if sum(acked for *_, acked in received) == 3:
            all_settled.set()

    future = subscriber.subscribe(subscription, callback)
    try:
        for n, data in enumerate((b"a", b"b", b"c")):
            publisher.publish(topic, data, n=str(n)).result(timeout=10)
        assert all_settled.wait(timeout=20), received
    finally:
        future.cancel()
        future.result(timeout=10)

    assert sorted(received) == [
        (b"a", "0", 1),
        (b"b", "1", 0),
        (b"b", "1", 1),
        (b"c", "2", 1),
    ]
    assert _pull_now(subscriber, subscription) == []  # every ack reached the emulator


def test_streaming_pull_takes_acks_and_nacks_in_band_and_honours_flow_control(
    publisher: pubsub_v1.PublisherClient, subscriber: pubsub_v1.SubscriberClient
) -> None:
    # subscribe() acks through unary calls; drive the raw stream to cover in-band requests.
    topic = _topic(publisher)
    subscription = _subscription(subscriber, topic)
    for data in (b"a", b"b"):
        publisher.publish(topic, data).result(timeout=10)
    outbox: queue.Queue[pubsub_v1.types.StreamingPullRequest | None] = queue.Queue()
    outbox.put(
        pubsub_v1.types.StreamingPullRequest(
            subscription=subscription, stream_ack_deadline_seconds=10, max_outstanding_messages=1
        )
    )
    responses = subscriber.streaming_pull(requests=iter(outbox.get, None), timeout=15)
    try:
        (first,) = next(responses).received_messages  # one only: flow control
        outbox.put(
            pubsub_v1.types.StreamingPullRequest(
                modify_deadline_ack_ids=[first.ack_id], modify_deadline_seconds=[0]
            )
        )
        (again,) = next(responses).received_messages
        assert again.message.message_id == first.message.message_id
        outbox.put(pubsub_v1.types.StreamingPullRequest(ack_ids=[again.ack_id]))
        (second,) = next(responses).received_messages
        assert {first.message.data, second.message.data} == {b"a", b"b"}
        outbox.put(pubsub_v1.types.StreamingPullRequest(ack_ids=[second.ack_id]))
    finally:
        outbox.put(None)  # half-close: the emulator ends the stream
    assert list(responses) == []
    assert _pull_now(subscriber, subscription) == []


def test_streaming_pull_on_a_missing_subscription_fails_with_not_found(
    subscriber: pubsub_v1.SubscriberClient,
) -> None:
    future = subscriber.subscribe(_name("subscriptions"), lambda message: message.ack())
    with pytest.raises(exceptions.NotFound):
        future.result(timeout=20)


def test_dead_letter_topic_gets_the_message_after_max_delivery_attempts(
    publisher: pubsub_v1.PublisherClient, subscriber: pubsub_v1.SubscriberClient
) -> None:
    topic = _topic(publisher)
    dead_letters = _topic(publisher)
    dead_letter_subscription = _subscription(subscriber, dead_letters)
    subscription = _subscription(
        subscriber,
        topic,
        dead_letter_policy={"dead_letter_topic": dead_letters, "max_delivery_attempts": 5},
    )
    publisher.publish(topic, b"poison", ordering_key="k", reason="bad").result(timeout=10)

    for attempt in range(1, 6):
        (received,) = _pull(subscriber, subscription)
        assert received.delivery_attempt == attempt
        subscriber.modify_ack_deadline(
            subscription=subscription, ack_ids=[received.ack_id], ack_deadline_seconds=0
        )

    assert _pull_now(subscriber, subscription) == []
    (dead,) = _pull(subscriber, dead_letter_subscription)
    assert dead.message.data == b"poison"
    assert dead.message.ordering_key == "k"
    attributes = dict(dead.message.attributes)
    assert attributes["reason"] == "bad"
    assert attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert attributes["CloudPubSubDeadLetterSourceSubscription"] == subscription.rsplit("/")[-1]
    assert attributes["CloudPubSubDeadLetterSourceSubscriptionProject"] == "portabind-test"


def test_dead_lettering_also_follows_expired_deadlines(
    publisher: pubsub_v1.PublisherClient, subscriber: pubsub_v1.SubscriberClient
) -> None:
    topic = _topic(publisher)
    dead_letters = _topic(publisher)
    dead_letter_subscription = _subscription(subscriber, dead_letters)
    subscription = _subscription(
        subscriber, topic, dead_letter_policy={"dead_letter_topic": dead_letters}
    )
    assert (
        subscriber.get_subscription(subscription=subscription).dead_letter_policy
    ).max_delivery_attempts == 5  # Pub/Sub's default

    publisher.publish(topic, b"never acked").result(timeout=10)
    for attempt in range(1, 6):
        (received,) = _pull(subscriber, subscription)
        assert received.delivery_attempt == attempt
        if attempt < 5:
            subscriber.modify_ack_deadline(
                subscription=subscription, ack_ids=[received.ack_id], ack_deadline_seconds=0
            )
        else:  # the last attempt times out instead of being nacked
            subscriber.modify_ack_deadline(
                subscription=subscription, ack_ids=[received.ack_id], ack_deadline_seconds=1
            )
    (dead,) = _pull(subscriber, dead_letter_subscription)
    assert dead.message.data == b"never acked"


def test_unknown_resources_raise_not_found(
    publisher: pubsub_v1.PublisherClient, subscriber: pubsub_v1.SubscriberClient
) -> None:
    missing_topic = _name("topics")
    missing_subscription = _name("subscriptions")
    with pytest.raises(exceptions.NotFound):
        publisher.publish(missing_topic, b"lost").result(timeout=10)
    with pytest.raises(exceptions.NotFound):
        publisher.get_topic(topic=missing_topic)
    with pytest.raises(exceptions.NotFound):
        publisher.delete_topic(topic=missing_topic)
    with pytest.raises(exceptions.NotFound):
        subscriber.create_subscription(name=_name("subscriptions"), topic=missing_topic)
    with pytest.raises(exceptions.NotFound):
        subscriber.pull(subscription=missing_subscription, max_messages=1, timeout=10)
    with pytest.raises(exceptions.NotFound):
        subscriber.acknowledge(subscription=missing_subscription, ack_ids=["1"])


def test_invalid_requests_raise_invalid_argument(
    publisher: pubsub_v1.PublisherClient, subscriber: pubsub_v1.SubscriberClient
) -> None:
    topic = _topic(publisher)
    with pytest.raises(exceptions.InvalidArgument):
        publisher.create_topic(name="topics/no-project")
    with pytest.raises(exceptions.InvalidArgument):
        subscriber.create_subscription(
            name=_name("subscriptions"), topic=topic, ack_deadline_seconds=5
        )
    with pytest.raises(exceptions.InvalidArgument):
        _subscription(
            subscriber,
            topic,
            dead_letter_policy={"dead_letter_topic": topic, "max_delivery_attempts": 1},
        )
    subscription = _subscription(subscriber, topic)
    with pytest.raises(exceptions.InvalidArgument):
        subscriber.modify_ack_deadline(
            subscription=subscription, ack_ids=["1"], ack_deadline_seconds=601
        )
    with pytest.raises(exceptions.MethodNotImplemented):
        _subscription(subscriber, topic, filter='attributes.kind = "x"')


@pytest.mark.server(name="pubsub")  # starts the emulator as a process of its own
def test_command_line_serves_until_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "portabind.adapters.local.emulators.pubsub", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,  # not the checkout: its portabind/ folder would shadow the installed package
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    try:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        host, _, port = address.rpartition(":")
        assert host == "127.0.0.1"
        assert int(port) > 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
