"""portabind's AMQP broker against the unmodified azure-servicebus and azure-eventhub SDKs:
what Service Bus queues and Event Hubs promise their clients (peek-lock and settlement,
delivery counts and the dead-letter sub-queue, lock expiry and renewal, time-to-live and
scheduled messages; partitions, sequence numbers, offsets, start positions, consumer groups
and owner levels), and the frames azure-eventhub 5.15 needs whole."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub._pyamqp._decode import decode_frame
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusReceiveMode
from azure.servicebus.exceptions import ServiceBusError
from proton import Collector, Connection, Transport

from portabind.adapters.local.emulators._amqp_frames import Padder, pad

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from portabind.adapters.local.emulators.amqp import AmqpBroker

#: Performative code → the number of fields AMQP 1.0 defines for it.
FIELDS = {0x10: 10, 0x11: 8, 0x12: 14, 0x13: 11, 0x14: 11, 0x15: 6, 0x16: 3, 0x17: 1, 0x18: 1}


# --- frames -------------------------------------------------------------------------------


def _frames(stream: bytes) -> list[bytes]:
    frames, at = [], 0
    while at < len(stream):
        size = 8 if stream[at : at + 4] == b"AMQP" else struct.unpack_from(">I", stream, at)[0]
        frames.append(stream[at : at + size])
        at += size
    return frames


def _server_output() -> tuple[bytes, bytes]:
    """What proton's server side writes for an open, a session, links both ways, a flow
    and a transfer: as written, and through the broker's padder."""
    client, server = Connection(), Connection()
    client_transport, server_transport = Transport(), Transport(Transport.SERVER)
    client_transport.bind(client)
    server_transport.bind(server)
    collector = Collector()
    server.collect(collector)
    client.open()
    session = client.session()
    session.open()
    receiver = session.receiver("in")
    receiver.source.address = "queue"
    receiver.open()
    receiver.flow(10)
    session.sender("out").open()
    raw, padder = bytearray(), Padder()
    for _ in range(6):
        for transport, other in ((client_transport, server_transport), (server_transport, None)):
            pending = transport.pending()
            if pending > 0:
                data = transport.peek(pending) or b""
                transport.pop(len(data))
                if other is not None:
                    other.push(data)
                else:
                    raw += data
                    client_transport.push(data)
        while (event := collector.peek()) is not None:
            for endpoint in (event.connection, event.session, event.link):
                if endpoint is not None and endpoint.state & endpoint.LOCAL_UNINIT:
                    endpoint.open()
            link = event.link
            if link is not None and link.is_receiver and not link.credit:
                link.flow(5)
            if link is not None and link.is_sender and link.credit and not link.unsettled:
                link.delivery(b"tag")
                link.send(b"\x00\x53\x77\xa1\x02hi")
                link.advance()
            collector.pop()
    return bytes(raw), padder.feed(bytes(raw))


def _performatives(stream: bytes) -> list[tuple[int, list[Any]]]:
    """Each AMQP performative of a byte stream, as azure-eventhub 5.15 decodes it."""
    return [
        decode_frame(memoryview(frame)[frame[4] * 4 :])
        for frame in _frames(stream)
        if frame[:4] != b"AMQP" and frame[5] == 0 and len(frame) > 8
    ]


def test_every_performative_proton_writes_is_padded_to_all_its_fields() -> None:
    raw, padded = _server_output()
    decoded = _performatives(padded)
    assert {0x10, 0x11, 0x12, 0x13, 0x14} <= {kind for kind, _ in decoded}
    for kind, fields in decoded:
        # transfer's payload follows its fields
        assert len(fields) == FIELDS[kind] + (kind == 0x14), hex(kind)
    # Proton leaves trailing fields out, which is why the padding exists: once this fails,
    # proton writes whole performatives and `Padder` can go.
    assert any(len(fields) < FIELDS[kind] for kind, fields in _performatives(raw) if kind != 0x14)


def test_padding_keeps_the_payload_and_grows_a_full_list8_into_a_list32() -> None:
    fields = b"\xa1\xf0" + b"x" * 0xF0 + b"\x43"  # name (240 chars), handle 0
    attach = b"\x00\x53\x12\xc0" + bytes((len(fields) + 1, 2)) + fields
    frame = struct.pack(">IBBH", 8 + len(attach), 2, 0, 0) + attach
    kind, decoded = decode_frame(memoryview(pad(frame))[8:])
    assert kind == 0x12 and len(decoded) == 14
    assert decoded[0] == b"x" * 0xF0 and decoded[3] == 2  # snd-settle-mode: mixed
    transfer = b"\x00\x53\x14\xc0\x02\x01\x43" + b"\x00\x53\x77\xa1\x02hi"
    frame = struct.pack(">IBBH", 8 + len(transfer), 2, 0, 0) + transfer
    kind, decoded = decode_frame(memoryview(pad(frame))[8:])
    assert len(decoded) == 12 and bytes(decoded[11]) == b"\x00\x53\x77\xa1\x02hi"


# --- Service Bus ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service_bus(amqp_broker: AmqpBroker) -> Iterator[ServiceBusClient]:
    with ServiceBusClient.from_connection_string(amqp_broker.connection_string()) as client:
        yield client


@pytest.fixture
def queue(amqp_broker: AmqpBroker, unique_name: Callable[..., str]) -> str:
    name = unique_name("q")
    amqp_broker.declare_queue(name, max_delivery_count=2, lock_duration=2)
    return name


def receive(client: ServiceBusClient, queue: str, count: int = 1, **options: Any) -> list[Any]:
    with client.get_queue_receiver(queue, **options) as receiver:
        messages = receiver.receive_messages(max_message_count=count, max_wait_time=2)
        for message in messages:
            if options.get("receive_mode") != ServiceBusReceiveMode.RECEIVE_AND_DELETE:
                receiver.complete_message(message)
        return messages


def test_a_message_arrives_with_its_properties_sequence_and_lock(
    service_bus: ServiceBusClient, queue: str
) -> None:
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    with service_bus.get_queue_sender(queue) as sender:
        sender.send_messages(
            ServiceBusMessage(
                b"hello",
                message_id="m-1",
                correlation_id="c-1",
                subject="greeting",
                content_type="text/plain",
                session_id=None,
                application_properties={"color": "red", "size": 3},
            )
        )
        sender.send_messages([ServiceBusMessage(b"two"), ServiceBusMessage(b"three")])  # a batch
    with service_bus.get_queue_receiver(queue) as receiver:
        first, second, third = receiver.receive_messages(max_message_count=3, max_wait_time=2)
        assert b"".join(first.body) == b"hello"
        assert (first.message_id, first.correlation_id, first.subject) == ("m-1", "c-1", "greeting")
        assert first.content_type == "text/plain"
        assert first.application_properties == {b"color": b"red", b"size": 3}
        assert [m.sequence_number for m in (first, second, third)] == [1, 2, 3]
        assert first.delivery_count == 0  # earlier deliveries: none
        assert first.enqueued_time_utc is not None and first.enqueued_time_utc > before
        assert first.locked_until_utc > datetime.now(timezone.utc)
        assert isinstance(first.lock_token, uuid.UUID) and first.lock_token != second.lock_token
        assert [b"".join(m.body) for m in (second, third)] == [b"two", b"three"]
        for message in (first, second, third):
            receiver.complete_message(message)
    assert receive(service_bus, queue) == []


def test_abandoned_messages_come_back_then_move_to_the_dead_letter_queue(
    service_bus: ServiceBusClient, queue: str, amqp_broker: AmqpBroker
) -> None:
    with service_bus.get_queue_sender(queue) as sender:
        sender.send_messages(ServiceBusMessage(b"poison"))
    counts = []
    with service_bus.get_queue_receiver(queue) as receiver:
        for _ in range(2):  # the queue's max delivery count
            (message,) = receiver.receive_messages(max_wait_time=2)
            counts.append(message.delivery_count)
            receiver.abandon_message(message)
        assert receiver.receive_messages(max_wait_time=0.5) == []
    assert counts == [0, 1]
    assert amqp_broker.queue_counts(queue)["dead_letter"] == 1
    (dead,) = receive(service_bus, queue, sub_queue="deadletter")
    assert b"".join(dead.body) == b"poison"
    assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
    assert dead.dead_letter_source == queue
    assert amqp_broker.queue_counts(queue)["dead_letter"] == 0


def test_dead_lettering_keeps_the_reason_and_deferring_sets_a_message_aside(
    service_bus: ServiceBusClient, queue: str, amqp_broker: AmqpBroker
) -> None:
    with service_bus.get_queue_sender(queue) as sender:
        sender.send_messages([ServiceBusMessage(b"bad"), ServiceBusMessage(b"later")])
    with service_bus.get_queue_receiver(queue) as receiver:
        bad, later = receiver.receive_messages(max_message_count=2, max_wait_time=2)
        receiver.dead_letter_message(bad, reason="unparseable", error_description="not JSON")
        receiver.defer_message(later)
    assert amqp_broker.queue_counts(queue) == {
        "active": 0,
        "locked": 0,
        "deferred": 1,
        "dead_letter": 1,
    }
    (dead,) = receive(service_bus, queue, sub_queue="deadletter")
    assert (dead.dead_letter_reason, dead.dead_letter_error_description) == (
        "unparseable",
        "not JSON",
    )


def test_an_expired_lock_makes_the_message_available_again_and_renewal_keeps_it(
    service_bus: ServiceBusClient, queue: str
) -> None:
    with service_bus.get_queue_sender(queue) as sender:
        sender.send_messages([ServiceBusMessage(b"kept"), ServiceBusMessage(b"lost")])
    with service_bus.get_queue_receiver(queue) as receiver:
        kept, lost = receiver.receive_messages(max_message_count=2, max_wait_time=2)
        locked_until = kept.locked_until_utc
        time.sleep(1.2)
        assert receiver.renew_message_lock(kept) > locked_until
        time.sleep(1.2)  # past the 2 s lock of `lost`, within the renewed one of `kept`
        receiver.complete_message(kept)
        with pytest.raises(ServiceBusError):
            receiver.complete_message(lost)
        (again,) = receiver.receive_messages(max_wait_time=2)
        assert (b"".join(again.body), again.delivery_count) == (b"lost", 1)
        receiver.complete_message(again)


def test_time_to_live_scheduling_peeking_and_receive_and_delete(
    service_bus: ServiceBusClient, queue: str, amqp_broker: AmqpBroker
) -> None:
    mode = ServiceBusReceiveMode.RECEIVE_AND_DELETE
    with (
        service_bus.get_queue_receiver(queue, receive_mode=mode) as receiver,
        service_bus.get_queue_sender(queue) as sender,
    ):
        # The SDK sends whole seconds of time to live.
        sender.send_messages(ServiceBusMessage(b"short", time_to_live=timedelta(seconds=1)))
        sent = time.monotonic()  # the broker took it by now
        soon = datetime.now(timezone.utc) + timedelta(seconds=2.5)
        sender.send_messages(ServiceBusMessage(b"scheduled", scheduled_enqueue_time_utc=soon))
        sender.send_messages(ServiceBusMessage(b"now"))
        peeked = receiver.peek_messages(max_message_count=5)
        assert [b"".join(m.body) for m in peeked] == [b"short", b"scheduled", b"now"]
        time.sleep(max(1.1 - (time.monotonic() - sent), 0))  # `short` expires
        now = receiver.receive_messages(max_message_count=5, max_wait_time=0.2)
        assert [b"".join(m.body) for m in now] == [b"now"]
        assert amqp_broker.queue_counts(queue)["active"] == 1  # scheduled, not yet due
        (due,) = receiver.receive_messages(max_wait_time=3)
    assert b"".join(due.body) == b"scheduled"
    assert due.scheduled_enqueue_time_utc is not None
    assert amqp_broker.queue_counts(queue)["active"] == 0


def test_a_queue_that_was_not_declared_does_not_exist(amqp_broker: AmqpBroker) -> None:
    text = amqp_broker.connection_string()
    with (
        ServiceBusClient.from_connection_string(text, retry_total=0) as client,
        client.get_queue_sender(f"missing-{uuid.uuid4().hex[:8]}") as sender,
        pytest.raises(ServiceBusError),
    ):
        sender.send_messages(ServiceBusMessage(b"x"))


@pytest.mark.server(name="amqp")  # starts the broker as a process of its own
def test_command_line_declares_entities_and_serves_until_sigterm(tmp_path: Path) -> None:
    module = "portabind.adapters.local.emulators.amqp"
    declared = ["--queue", "orders", "--event-hub", "readings:2"]
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", *declared],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,  # not the checkout: its portabind/ folder would shadow the package
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("AMQP broker on 127.0.0.1:")
        text = process.stdout.readline().strip().removeprefix("connection string: ")
        with (
            ServiceBusClient.from_connection_string(text) as client,
            client.get_queue_sender("orders") as sender,
        ):
            sender.send_messages(ServiceBusMessage(b"x"))
        with EventHubProducerClient.from_connection_string(text, eventhub_name="readings") as hub:
            assert hub.get_partition_ids() == ["0", "1"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --- Event Hubs -----------------------------------------------------------------------------


@pytest.fixture
def hub(amqp_broker: AmqpBroker, unique_name: Callable[..., str]) -> str:
    name = unique_name("hub")
    amqp_broker.declare_event_hub(name, partitions=2)
    return name


def read(
    amqp_broker: AmqpBroker,
    hub: str,
    partition: str,
    count: int,
    *,
    wait: float = 5,
    **options: Any,
) -> list[EventData]:
    """Up to `count` events of one partition (waiting at most `wait` s), read by a consumer
    of `options`."""
    group = options.pop("consumer_group", "$Default")
    client = EventHubConsumerClient.from_connection_string(
        amqp_broker.connection_string(hub), consumer_group=group
    )
    events: list[EventData] = []

    def on_event(context: Any, event: EventData | None) -> None:
        if event is not None:
            events.append(event)
        if len(events) >= count:
            threading.Thread(target=client.close).start()

    timer = threading.Timer(wait, client.close)
    timer.start()
    client.receive(on_event, partition_id=partition, max_wait_time=0.5, **options)
    timer.cancel()
    return events


def bodies(events: list[EventData]) -> list[str]:
    return [event.body_as_str() for event in events]


def test_hub_and_partition_properties_sequence_numbers_and_offsets(
    amqp_broker: AmqpBroker, hub: str
) -> None:
    with EventHubProducerClient.from_connection_string(
        amqp_broker.connection_string(hub)
    ) as producer:
        assert producer.get_partition_ids() == ["0", "1"]
        batch = producer.create_batch(partition_key="device-7")
        for n in range(3):
            batch.add(EventData(f"reading {n}"))
        producer.send_batch(batch)
        (keyed,) = [p for p in ("0", "1") if not producer.get_partition_properties(p)["is_empty"]]
        producer.send_event(EventData("direct"), partition_id=keyed)
        info = producer.get_partition_properties(keyed)
    events = read(amqp_broker, hub, keyed, 4, starting_position="-1")
    assert bodies(events) == ["reading 0", "reading 1", "reading 2", "direct"]
    assert [e.sequence_number for e in events] == [0, 1, 2, 3]
    offsets = [int(e.offset) for e in events]
    assert offsets[0] == 0 and offsets == sorted(set(offsets))
    assert [e.partition_key for e in events] == [b"device-7"] * 3 + [None]
    assert (info["last_enqueued_sequence_number"], info["last_enqueued_offset"]) == (
        3,
        events[-1].offset,
    )
    assert all(e.enqueued_time is not None for e in events)


def test_start_positions_and_consumer_groups(amqp_broker: AmqpBroker, hub: str) -> None:
    with EventHubProducerClient.from_connection_string(
        amqp_broker.connection_string(hub)
    ) as producer:
        for n in range(2):
            producer.send_event(EventData(f"e{n}"), partition_id="1")
        time.sleep(0.05)
        between = datetime.now(timezone.utc)
        time.sleep(0.05)
        for n in range(2, 4):
            producer.send_event(EventData(f"e{n}"), partition_id="1")
    assert bodies(read(amqp_broker, hub, "1", 4, starting_position="-1")) == [
        "e0",
        "e1",
        "e2",
        "e3",
    ]
    # Another consumer group reads the same events, from its own position.
    assert bodies(read(amqp_broker, hub, "1", 1, starting_position=2, consumer_group="audit")) == [
        "e3"
    ]
    inclusive = read(
        amqp_broker, hub, "1", 2, starting_position=1, starting_position_inclusive=True
    )
    assert bodies(inclusive) == ["e1", "e2"]
    assert bodies(read(amqp_broker, hub, "1", 2, starting_position=between)) == ["e2", "e3"]
    assert read(amqp_broker, hub, "1", 1, wait=1, starting_position="@latest") == []


def test_a_receiver_with_a_higher_owner_level_takes_the_partition(
    amqp_broker: AmqpBroker, hub: str
) -> None:
    with EventHubProducerClient.from_connection_string(
        amqp_broker.connection_string(hub)
    ) as producer:
        producer.send_event(EventData("first"), partition_id="0")
    errors: list[Exception] = []
    attached = threading.Event()
    first = EventHubConsumerClient.from_connection_string(
        amqp_broker.connection_string(hub), consumer_group="$Default"
    )
    receiving = threading.Thread(
        target=first.receive,
        kwargs={
            "on_event": lambda context, event: attached.set(),
            "on_error": lambda context, error: errors.append(error),
            "partition_id": "0",
            "owner_level": 0,
            "starting_position": "-1",
        },
        daemon=True,
    )
    receiving.start()
    assert attached.wait(10)  # the first receiver reads the partition
    assert bodies(read(amqp_broker, hub, "0", 1, owner_level=1, starting_position="-1")) == [
        "first"
    ]
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.05)
    first.close()
    receiving.join(5)
    assert errors and "stolen" in str(errors[0]).lower()
