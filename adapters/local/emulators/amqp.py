"""portabind's own AMQP 1.0 broker: Azure Service Bus queues and Event Hubs, locally.

Microsoft's Service Bus and Event Hubs emulators run only in Docker, so `portabind run
--emulate` and the tests use this one: a broker on python-qpid-proton's protocol engine that
the unmodified azure-servicebus and azure-eventhub SDKs talk to through a connection string
with `UseDevelopmentEmulator=true` (plain AMQP, no TLS, on the port the endpoint names). It is
not Azure's emulator and implements what portabind's bindings and their tests use:

- Claims-based security: a put-token on `$cbs` is answered with status 202 (tokens are not
  checked: there is nothing to protect on 127.0.0.1).
- Service Bus queues: peek-lock (a lock token per delivery, the lock's expiry, renew-lock on
  `<queue>/$management`) and receive-and-delete; settlement with the outcome state the
  client asked for: complete (accepted), abandon (modified), dead-letter (rejected with
  `com.microsoft:dead-letter`), defer (modified, undeliverable here: set aside); a lock that
  expires or a receiver that goes away counts as an abandon. The delivery count, then the
  queue's max delivery count, after which a message moves to the `$DeadLetterQueue`
  sub-queue with `DeadLetterReason` `MaxDeliveryCountExceeded`; message time-to-live (the
  message's, bounded by the queue's default) after which it is dropped; scheduled enqueue
  times; sequence numbers and enqueued times; peek-message.
- Event Hubs: partitions (the partition a sender names, else the hash of the partition key,
  else round robin), batch messages split into events, sequence numbers, offsets (the bytes
  before the event in its partition), enqueued times; consumers on any consumer group from a
  start position (offset, sequence number or enqueued time, inclusive or not, `@latest`),
  with the owner level (epoch) of a new receiver taking the partition from the old ones;
  `$management` READ of the hub and of a partition.

Refused rather than ignored: session receivers, and management operations not listed above
(status 501). Entities exist once declared (`declare_queue`, `declare_event_hub`): like
Azure, attaching to another name fails with `amqp:not-found`.

Proton's protocol engine (`Transport`, `Connection`, `Collector`) is driven here with the
broker's own non-blocking sockets on one thread, so every byte proton writes passes through
`_amqp_frames.Padder` (azure-eventhub 5.15 needs performatives with all their fields) and
every byte it reads through `_amqp_frames.TransferFormats` (the message format, which proton
does not expose, marks a batch).

Run it on its own with ``python -m portabind.adapters.local.emulators.amqp --port 5673``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import heapq
import itertools
import logging
import re
import selectors
import signal
import socket
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import cproton
from proton import (
    Collector,
    Condition,
    Connection,
    Data,
    Delivery,
    Described,
    Event,
    Link,
    Message,
    Transport,
    symbol,
    timestamp,
    ulong,
)

from portabind.adapters.local.emulators import LOCALHOST, Emulator
from portabind.adapters.local.emulators._amqp_frames import (
    BATCH_FORMAT,
    Padder,
    TransferFormats,
    with_header,
)
from portabind.bindings.azure import development_connection_string

if TYPE_CHECKING:
    from collections.abc import Callable

    from typing_extensions import Self

__all__ = ["AmqpBroker", "main"]

_LOG = logging.getLogger(__name__)

#: Service Bus's defaults for a new queue.
DEFAULT_LOCK_SECONDS = 60.0
DEFAULT_MAX_DELIVERY_COUNT = 10
#: Credit the broker gives a client sending to it, topped up as messages arrive.
_CREDIT = 500
_DATA_SECTION = ulong(0x75)
_DEAD_LETTER = "$deadletterqueue"
_SELECTOR = re.compile(
    r"amqp\.annotation\.(x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time)\s*"
    r"(>=|>)\s*'([^']*)'"
)
_SESSION_FILTER = symbol("com.microsoft:session-filter")
_EPOCH = symbol("com.microsoft:epoch")


def _ms(seconds: float) -> timestamp:
    return timestamp(int(seconds * 1000))


def _tag(delivery: Delivery) -> bytes:
    """A delivery's tag as bytes (proton's `Delivery.tag` decodes it as UTF-8, which a
    binary tag is not)."""
    tag: bytes = cproton.bytes2pybytes(cproton.lib.pn_delivery_tag(delivery._impl))
    return tag


def _entity_path(address: str | None) -> str:
    """An address as the path of the entity it names: `amqp://host:port/queue`, `/queue` and
    `queue` are all `queue`; case is kept (names are compared lower-cased)."""
    text = address or ""
    if "://" in text:
        text = text.split("://", 1)[1]
        text = text.split("/", 1)[1] if "/" in text else ""
    return text.strip("/")


def _split_batch(raw: bytes) -> tuple[list[bytes], dict[Any, Any]]:
    """The messages of a batch message (its data sections) and its message annotations."""
    data = Data()
    parts: list[bytes] = []
    annotations: dict[Any, Any] = {}
    at = 0
    while at < len(raw):
        data.clear()
        at += data.decode(raw[at:])
        data.rewind()
        data.next()
        section = data.get_object()
        if not isinstance(section, Described):
            raise ValueError("a batch message holds sections")
        value: Any = section.value
        if section.descriptor == _DATA_SECTION:
            parts.append(bytes(value))
        elif section.descriptor == ulong(0x72):  # message annotations
            annotations = dict(value)
    return parts, annotations


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _filters(link: Link) -> dict[Any, Any]:
    """The filter set of the source a receiving client asked for."""
    data = link.remote_source.filter
    data.rewind()
    if not data.next():
        return {}
    found = data.get_object()
    return dict(found) if isinstance(found, dict) else {}


def _decode(raw: bytes) -> Message:
    message = Message()
    message.decode(raw)
    if isinstance(message.body, memoryview):  # a data section, viewed in proton's buffer
        message.body = bytes(message.body)
    return message


class _Refused(Exception):
    """An attach the broker answers by closing the link with this AMQP error."""

    def __init__(self, condition: str, description: str) -> None:
        super().__init__(description)
        self.condition = condition
        self.description = description


# --- Service Bus ---------------------------------------------------------------------------


@dataclass(eq=False)
class _Stored:
    """A Service Bus message at rest in a queue."""

    sequence: int
    message: Message
    annotations: dict[Any, Any]
    enqueued: float
    visible: float
    expires: float | None
    #: The time-to-live the sender gave it, in milliseconds.
    ttl: int | None
    #: How many times it was delivered (the AMQP header's delivery-count at the next one).
    deliveries: int = 0

    def __lt__(self, other: _Stored) -> bool:
        return self.sequence < other.sequence


@dataclass(eq=False)
class _Lock:
    stored: _Stored
    queue: _Queue
    until: float
    delivery: Delivery


@dataclass(eq=False)
class _Queue:
    name: str
    lock_duration: float
    #: None for a dead-letter sub-queue, whose messages are never dead-lettered again.
    max_delivery_count: int | None
    default_ttl: float | None
    available: list[_Stored] = field(default_factory=list)  # a heap by sequence number
    scheduled: list[tuple[float, int, _Stored]] = field(default_factory=list)
    deferred: list[_Stored] = field(default_factory=list)
    consumers: list[Link] = field(default_factory=list)
    dead_letter: _Queue | None = None

    def __post_init__(self) -> None:
        self._sequence = itertools.count(1)

    def next_sequence(self) -> int:
        return next(self._sequence)

    def messages(self) -> list[_Stored]:
        """Every message not dead-lettered, deferred included, by sequence number."""
        return sorted([*self.available, *(s for _, _, s in self.scheduled), *self.deferred])


# --- Event Hubs ----------------------------------------------------------------------------


class _Event(NamedTuple):
    sequence: int
    offset: int
    #: Seconds since the epoch.
    enqueued: float
    #: The event as delivered, its annotations written.
    payload: bytes


@dataclass(eq=False)
class _Partition:
    hub: str
    id: str
    events: list[_Event] = field(default_factory=list)
    size: int = 0
    consumers: list[Link] = field(default_factory=list)


@dataclass(eq=False)
class _EventHub:
    name: str
    partitions: list[_Partition]
    created: float
    turn: itertools.cycle[int] = field(init=False)

    def __post_init__(self) -> None:
        self.turn = itertools.cycle(range(len(self.partitions)))

    def partition_for(self, key: str | None) -> _Partition:
        if key is not None:
            return self.partitions[zlib.crc32(key.encode("utf-8")) % len(self.partitions)]
        return self.partitions[next(self.turn)]


# --- what each link is ---------------------------------------------------------------------


@dataclass(eq=False)
class _Node:
    """What a link attaches to: `kind` is cbs, management, queue or partition."""

    kind: str
    queue: _Queue | None = None
    hub: _EventHub | None = None
    partition: _Partition | None = None
    #: A consumer's next event (index into `partition.events`) and owner level.
    cursor: int = 0
    epoch: int | None = None
    group: str = ""


class _Client:
    """One client connection: its socket, proton's engine for it, and the byte streams."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.connection = Connection()
        self.collector = Collector()
        self.connection.collect(self.collector)
        self.transport = Transport(Transport.SERVER)
        sasl = self.transport.sasl()
        sasl.allowed_mechs("ANONYMOUS PLAIN")
        self.transport.bind(self.connection)
        self.padder = Padder()
        self.formats = TransferFormats()
        self.outbox = bytearray()
        self.closed = False

    def read(self) -> None:
        capacity = self.transport.capacity()
        if capacity <= 0:
            return
        try:
            data = self.sock.recv(min(capacity, 1 << 16))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.transport.close_tail()
            return
        self.formats.feed(data)
        self.transport.push(data)

    def flush(self) -> bool:
        """Write what proton produced; False once the connection is over."""
        pending = self.transport.pending()
        if pending > 0:
            produced = self.transport.peek(pending) or b""
            self.transport.pop(len(produced))
            self.outbox += self.padder.feed(produced)
        if self.outbox:
            try:
                sent = self.sock.send(self.outbox)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                return False
            del self.outbox[:sent]
        return not (pending < 0 and not self.outbox)


class AmqpBroker(Emulator):
    """The broker on 127.0.0.1 and a free port (or `port`), serving from a thread."""

    def __init__(self, host: str = LOCALHOST, port: int = 0) -> None:
        self.host = host
        self._requested_port = port
        self._lock = threading.RLock()
        self._queues: dict[str, _Queue] = {}
        self._hubs: dict[str, _EventHub] = {}
        self._nodes: dict[Link, _Node] = {}
        self._locks: dict[uuid.UUID, _Lock] = {}
        self._lost: dict[Delivery, uuid.UUID] = {}
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_order = itertools.count()
        self._clients: dict[socket.socket, _Client] = {}
        self._clients_by_connection: dict[Connection, _Client] = {}
        self._listener: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """Listen and serve; returns once connections are accepted. Idempotent."""
        if self._thread is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self._requested_port))
        listener.listen(64)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ, None)
        selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._listener, self._selector, self._stopping = listener, selector, False
        self._thread = threading.Thread(target=self._serve, name="amqp-broker", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection and the listening socket. Safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping = True
        self._wake()
        thread.join(5)
        for client in list(self._clients.values()):
            client.sock.close()
        self._clients.clear()
        self._clients_by_connection.clear()
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        if self._selector is not None:
            self._selector.close()
        self._listener = self._selector = self._wake_r = self._wake_w = None

    def _wake(self) -> None:
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    # -- connection details --------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def connection_string(self, entity: str | None = None) -> str:
        """A development connection string the Azure SDKs accept, for the namespace or
        (`EntityPath`) one queue or event hub."""
        return development_connection_string(self.address, entity)

    # -- entities ------------------------------------------------------------------------

    def declare_queue(
        self,
        name: str,
        *,
        lock_duration: float = DEFAULT_LOCK_SECONDS,
        max_delivery_count: int = DEFAULT_MAX_DELIVERY_COUNT,
        default_ttl: float | None = None,
    ) -> None:
        """Create a Service Bus queue (and its dead-letter sub-queue) unless it exists; as in
        Azure, a queue that exists keeps its settings."""
        with self._lock:
            key = name.lower()
            if key in self._queues:
                return
            self._queues[key] = _Queue(
                key,
                lock_duration,
                max_delivery_count,
                default_ttl,
                dead_letter=_Queue(f"{key}/{_DEAD_LETTER}", lock_duration, None, None),
            )

    def declare_event_hub(self, name: str, *, partitions: int = 1) -> None:
        """Create an event hub with `partitions` partitions ("0", "1", ...) unless it exists."""
        with self._lock:
            key = name.lower()
            if key not in self._hubs:
                self._hubs[key] = _EventHub(
                    key, [_Partition(key, str(i)) for i in range(partitions)], time.time()
                )

    def queue_counts(self, name: str) -> dict[str, int]:
        """How many messages a queue holds: active (available or scheduled), locked,
        deferred and dead-lettered; for tests and the console."""
        with self._lock:
            queue = self._queues.get(name.lower())
            if queue is None:
                raise KeyError(f"no queue {name!r}")
            dead = queue.dead_letter
            return {
                "active": len(queue.available) + len(queue.scheduled),
                "locked": sum(1 for lock in self._locks.values() if lock.queue is queue),
                "deferred": len(queue.deferred),
                "dead_letter": len(dead.available) if dead else 0,
            }

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name.lower())
        if queue is None:
            raise _Refused("amqp:not-found", f"no queue {name!r} in this namespace")
        return queue

    def _hub(self, name: str) -> _EventHub:
        hub = self._hubs.get(name.lower())
        if hub is None:
            raise _Refused("amqp:not-found", f"no event hub {name!r} in this namespace")
        return hub

    # -- the loop ------------------------------------------------------------------------

    def _serve(self) -> None:
        assert self._selector is not None
        while not self._stopping:
            for key, mask in self._selector.select(self._timeout()):
                if key.fileobj is self._listener:
                    self._accept()
                elif key.fileobj is self._wake_r:
                    self._drain_wake()
                elif mask & selectors.EVENT_READ:
                    key.data.read()
            with self._lock:
                self._run_timers()
                self._process_all()
                self._flush_all()

    def _timeout(self) -> float:
        with self._lock:
            if not self._timers:
                return 1.0
            return min(max(self._timers[0][0] - time.time(), 0.0), 1.0)

    def _accept(self) -> None:
        assert self._listener is not None and self._selector is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = _Client(sock)
        self._clients[sock] = client
        self._clients_by_connection[client.connection] = client
        self._selector.register(sock, selectors.EVENT_READ, client)

    def _drain_wake(self) -> None:
        assert self._wake_r is not None
        try:
            while self._wake_r.recv(512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _process_all(self) -> None:
        """Handle proton's events until no connection has any: acting on one connection
        (a delivery to a consumer) makes events on another."""
        busy = True
        while busy:
            busy = False
            for client in list(self._clients.values()):
                while (event := client.collector.peek()) is not None:
                    busy = True
                    try:
                        self._on_event(event)
                    except Exception:  # a broker bug must not take down every connection
                        _LOG.exception("AMQP broker: handling %s failed", event.type)
                    client.collector.pop()

    def _flush_all(self) -> None:
        assert self._selector is not None
        now = time.monotonic()
        for sock, client in list(self._clients.items()):
            client.transport.tick(now)
            if not client.flush():
                self._forget(client)
                continue
            wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.outbox else 0)
            if self._selector.get_key(sock).events != wanted:
                self._selector.modify(sock, wanted, client)

    def _forget(self, client: _Client) -> None:
        assert self._selector is not None
        for link in [link for link in self._nodes if link.connection == client.connection]:
            self._detached(link)
        self._selector.unregister(client.sock)
        client.sock.close()
        del self._clients[client.sock]
        del self._clients_by_connection[client.connection]

    # -- timers --------------------------------------------------------------------------

    def _at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (when, next(self._timer_order), action))

    def _run_timers(self) -> None:
        now = time.time()
        while self._timers and self._timers[0][0] <= now:
            _, _, action = heapq.heappop(self._timers)
            action()

    # -- proton events -------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        kind, link = event.type, event.link
        if link is not None:
            if kind == Event.LINK_REMOTE_OPEN:
                self._attach(link)
            elif kind == Event.LINK_FLOW and link.is_sender:
                self._pump(link)
                link.drained()
            elif kind == Event.DELIVERY and event.delivery is not None:
                self._on_delivery(link, event.delivery)
            elif kind in (Event.LINK_REMOTE_CLOSE, Event.LINK_REMOTE_DETACH):
                self._detached(link)
                link.close()
        elif kind == Event.SESSION_REMOTE_OPEN and event.session is not None:
            event.session.open()
        elif kind == Event.SESSION_REMOTE_CLOSE and event.session is not None:
            event.session.close()
        elif kind == Event.CONNECTION_REMOTE_OPEN and event.connection is not None:
            event.connection.container = "portabind-amqp-broker"
            event.connection.open()
        elif kind == Event.CONNECTION_REMOTE_CLOSE and event.connection is not None:
            event.connection.close()

    def _attach(self, link: Link) -> None:
        remote = link.remote_source if link.is_sender else link.remote_target
        try:
            node = self._node(_entity_path(remote.address), link)
        except _Refused as refusal:
            # As Service Bus refuses: an attach without the terminus asked for, then a
            # detach with the error.
            link.open()
            link.condition = Condition(refusal.condition, refusal.description)
            link.close()
            return
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        link.snd_settle_mode = link.remote_snd_settle_mode
        link.rcv_settle_mode = link.remote_rcv_settle_mode
        self._nodes[link] = node
        link.open()
        if link.is_receiver:
            link.flow(_CREDIT)
        elif node.partition is not None:
            node.partition.consumers.append(link)
            self._pump(link)
        elif node.kind == "queue" and node.queue is not None:
            node.queue.consumers.append(link)
            self._pump(link)

    def _node(self, path: str, link: Link) -> _Node:
        parts = path.split("/")
        lowered = [part.lower() for part in parts]
        if lowered[-1] == "$cbs":
            return _Node("cbs")
        if lowered[-1] == "$management":
            queue = self._queues.get("/".join(lowered[:-1])) if len(parts) > 1 else None
            return _Node("management", queue=queue)
        if len(parts) == 5 and lowered[1] == "consumergroups" and lowered[3] == "partitions":
            if link.is_receiver:
                raise _Refused("amqp:not-allowed", "send to the event hub or a partition")
            return self._consumer(self._hub(parts[0]), parts[2], parts[4], link)
        if len(parts) == 3 and lowered[1] == "partitions":
            hub = self._hub(parts[0])
            return _Node("partition", hub=hub, partition=self._partition(hub, parts[2]))
        if lowered[0] in self._hubs and len(parts) == 1:
            if link.is_sender:
                raise _Refused("amqp:not-allowed", "receive from a consumer group's partition")
            return _Node("partition", hub=self._hubs[lowered[0]])
        if len(parts) == 2 and lowered[1] == _DEAD_LETTER:
            dead = self._queue(parts[0]).dead_letter
            assert dead is not None
            return self._queue_node(dead, link)
        if len(parts) == 1:
            return self._queue_node(self._queue(parts[0]), link)
        raise _Refused("amqp:not-found", f"no entity {path!r} in this namespace")

    def _queue_node(self, queue: _Queue, link: Link) -> _Node:
        if link.is_sender and _SESSION_FILTER in _filters(link):
            raise _Refused(
                "amqp:not-implemented", "portabind's AMQP broker has no session receivers"
            )
        return _Node("queue", queue=queue)

    def _partition(self, hub: _EventHub, partition_id: str) -> _Partition:
        for partition in hub.partitions:
            if partition.id == partition_id:
                return partition
        raise _Refused(
            "amqp:not-found", f"event hub {hub.name!r} has no partition {partition_id!r}"
        )

    def _consumer(self, hub: _EventHub, group: str, partition_id: str, link: Link) -> _Node:
        partition = self._partition(hub, partition_id)
        properties = link.remote_properties or {}
        epoch = properties.get(_EPOCH)
        epoch = None if epoch is None else int(epoch)
        rivals = [self._nodes[other] for other in partition.consumers]
        rivals = [node for node in rivals if node.group == group.lower()]
        if any(node.epoch is not None and (epoch is None or node.epoch > epoch) for node in rivals):
            raise _Refused(
                "amqp:link:stolen", "a receiver with a higher owner level reads this partition"
            )
        if epoch is not None:
            for other in list(partition.consumers):
                if self._nodes[other].group == group.lower():
                    self._detached(other)
                    other.condition = Condition(
                        "amqp:link:stolen", "a receiver with a higher owner level took over"
                    )
                    other.close()
        cursor = self._start(partition, link)
        return _Node(
            "partition",
            hub=hub,
            partition=partition,
            cursor=cursor,
            epoch=epoch,
            group=group.lower(),
        )

    def _start(self, partition: _Partition, link: Link) -> int:
        """The index of the first event a new consumer receives, from its selector filter."""
        filters = _filters(link)
        selector = next((value for value in filters.values() if isinstance(value, Described)), None)
        match = _SELECTOR.search(str(selector.value)) if selector is not None else None
        if match is None:
            return len(partition.events)  # no position: from the end, as Event Hubs does
        kind, operator, text = match.groups()
        if text == "@latest":
            return len(partition.events)
        value = int(text)
        for index, event in enumerate(partition.events):
            current = {
                "x-opt-sequence-number": event.sequence,
                "x-opt-offset": event.offset,
                "x-opt-enqueued-time": int(event.enqueued * 1000),
            }[kind]
            if current > value or (operator == ">=" and current == value):
                return index
        return len(partition.events)

    def _detached(self, link: Link) -> None:
        """Forget a link; the messages it held locked go back to their queue."""
        node = self._nodes.pop(link, None)
        if node is None:
            return
        if node.partition is not None and link in node.partition.consumers:
            node.partition.consumers.remove(link)
        if node.kind == "queue" and node.queue is not None:
            if link in node.queue.consumers:
                node.queue.consumers.remove(link)
            for token, lock in list(self._locks.items()):
                if lock.delivery.link == link:
                    del self._locks[token]
                    self._abandoned(lock.queue, lock.stored)
            for delivery in [d for d in self._lost if d.link == link]:
                del self._lost[delivery]

    # -- deliveries from clients ---------------------------------------------------------

    def _on_delivery(self, link: Link, delivery: Delivery) -> None:
        if link.is_sender:
            if delivery.updated:
                self._settled_by_client(delivery)
            return
        if delivery.partial or not delivery.readable:
            return
        raw = link.recv(delivery.pending)
        message_format = self._clients_by_connection[link.connection].formats.take(_tag(delivery))
        node = self._nodes.get(link)
        try:
            if node is None:
                raise ValueError("the link is not attached to an entity")
            self._received(link, node, raw, message_format == BATCH_FORMAT)
        except Exception as error:
            delivery.local.condition = Condition("amqp:internal-error", str(error))
            delivery.update(Delivery.REJECTED)
        else:
            delivery.update(Delivery.ACCEPTED)
        delivery.settle()
        link.advance()
        if link.credit < _CREDIT // 2:
            link.flow(_CREDIT - link.credit)

    def _received(self, link: Link, node: _Node, raw: bytes, batch: bool) -> None:
        if node.kind == "cbs":
            self._reply(link, _decode(raw), 202, "Accepted", None)
        elif node.kind == "management":
            self._manage(link, node, _decode(raw))
        elif node.kind == "partition":
            assert node.hub is not None
            self._publish(node.hub, node.partition, raw, batch)
        elif node.queue is not None:
            parts = _split_batch(raw)[0] if batch else [raw]
            for part in parts:
                self._enqueue(node.queue, _decode(part))

    # -- Service Bus ---------------------------------------------------------------------

    def _enqueue(self, queue: _Queue, message: Message) -> None:
        now = time.time()
        annotations = dict(message.annotations or {})
        scheduled = annotations.get(symbol("x-opt-scheduled-enqueue-time"))
        visible = max(now, int(scheduled) / 1000) if scheduled is not None else now
        ttl = message.ttl or None  # seconds
        ttls = [t for t in (ttl, queue.default_ttl) if t]
        expires = visible + min(ttls) if ttls else None
        # The header is written anew at each delivery (`_header`); proton leaves it out now.
        message.ttl, message.durable, message.priority = 0, False, Message.DEFAULT_PRIORITY
        message.first_acquirer, message.delivery_count = False, 0
        stored = _Stored(
            queue.next_sequence(),
            message,
            annotations,
            visible,
            visible,
            expires,
            None if ttl is None else round(ttl * 1000),
        )
        if visible > now:
            heapq.heappush(queue.scheduled, (visible, stored.sequence, stored))
            self._at(visible, functools.partial(self._due, queue))
        else:
            heapq.heappush(queue.available, stored)
            self._dispatch(queue)

    def _due(self, queue: _Queue) -> None:
        now = time.time()
        while queue.scheduled and queue.scheduled[0][0] <= now:
            _, _, stored = heapq.heappop(queue.scheduled)
            stored.enqueued = now
            heapq.heappush(queue.available, stored)
        self._dispatch(queue)

    def _dispatch(self, queue: _Queue) -> None:
        """Hand available messages to the queue's receivers with credit, in turn."""
        while queue.available:
            ready = [link for link in queue.consumers if link.credit > 0]
            if not ready:
                return
            for link in ready:
                stored = self._next_live(queue)
                if stored is None:
                    return
                self._deliver(link, queue, stored)

    def _next_live(self, queue: _Queue) -> _Stored | None:
        now = time.time()
        while queue.available:
            stored = heapq.heappop(queue.available)
            if stored.expires is None or stored.expires > now:
                return stored
        return None

    def _deliver(self, link: Link, queue: _Queue, stored: _Stored) -> None:
        peek_lock = link.snd_settle_mode != Link.SND_SETTLED
        annotations = {
            **stored.annotations,
            symbol("x-opt-sequence-number"): stored.sequence,
            symbol("x-opt-enqueued-time"): _ms(stored.enqueued),
        }
        token = uuid.uuid4()
        if peek_lock:
            until = time.time() + queue.lock_duration
            annotations[symbol("x-opt-locked-until")] = _ms(until)
        payload = self._encoded(stored, annotations)
        stored.deliveries += 1
        delivery = link.delivery(token.bytes_le)  # type: ignore[arg-type]  # bytes, as tags are
        link.send(payload)
        link.advance()
        if not peek_lock:
            delivery.settle()
            return
        self._locks[token] = _Lock(stored, queue, until, delivery)
        self._at(until, functools.partial(self._lock_expired, token, until))

    def _lock_expired(self, token: uuid.UUID, until: float) -> None:
        lock = self._locks.get(token)
        if lock is None or lock.until != until:
            return  # settled, or renewed since
        del self._locks[token]
        self._lost[lock.delivery] = token
        self._abandoned(lock.queue, lock.stored)

    def _abandoned(self, queue: _Queue, stored: _Stored) -> None:
        """A delivery that failed (abandon, lost lock): the message is available again, or
        dead-lettered once it has been delivered the queue's max delivery count."""
        limit = queue.max_delivery_count
        if limit is not None and stored.deliveries >= limit:
            self._dead_letter(
                queue,
                stored,
                "MaxDeliveryCountExceeded",
                f"Message could not be consumed after {limit} delivery attempts.",
            )
            return
        heapq.heappush(queue.available, stored)
        self._dispatch(queue)

    def _dead_letter(
        self, queue: _Queue, stored: _Stored, reason: str | None, description: str | None
    ) -> None:
        dead = queue.dead_letter
        if dead is None:  # already in a dead-letter queue: it stays there
            heapq.heappush(queue.available, stored)
            self._dispatch(queue)
            return
        properties: dict[str, Any] = dict(stored.message.properties or {})
        if reason is not None:
            properties["DeadLetterReason"] = reason
        if description is not None:
            properties["DeadLetterErrorDescription"] = description
        message: Any = stored.message  # proton types its properties as None
        message.properties = properties
        stored.annotations[symbol("x-opt-deadletter-source")] = queue.name
        stored.expires = stored.ttl = None
        heapq.heappush(dead.available, stored)
        self._dispatch(dead)

    def _settled_by_client(self, delivery: Delivery) -> None:
        token = uuid.UUID(bytes_le=_tag(delivery))
        lock = self._locks.pop(token, None)
        state = delivery.remote_state
        if lock is None:
            if self._lost.pop(delivery, None) is not None:
                delivery.local.condition = Condition(
                    "com.microsoft:message-lock-lost",
                    "The lock supplied is invalid: it expired, or the message was already "
                    "removed from the queue",
                )
                delivery.update(Delivery.REJECTED)
            else:
                delivery.update(state)
            delivery.settle()
            return
        queue, stored = lock.queue, lock.stored
        if state == Delivery.ACCEPTED:
            pass  # completed: the message is gone
        elif state == Delivery.REJECTED:
            condition = delivery.remote.condition
            found: Any = condition.info if condition is not None else None
            info: dict[Any, Any] = dict(found or {})
            self._dead_letter(
                queue,
                stored,
                _optional_text(info.get("DeadLetterReason")),
                _optional_text(info.get("DeadLetterErrorDescription")),
            )
        elif state == Delivery.MODIFIED and delivery.remote.undeliverable:
            queue.deferred.append(stored)
        elif state == Delivery.RELEASED:
            stored.deliveries -= 1  # released: not a delivery attempt
            heapq.heappush(queue.available, stored)
            self._dispatch(queue)
        else:  # modified: abandoned
            self._abandoned(queue, stored)
        delivery.update(state)
        delivery.settle()

    # -- Event Hubs ----------------------------------------------------------------------

    def _publish(
        self, hub: _EventHub, partition: _Partition | None, raw: bytes, batch: bool
    ) -> None:
        parts, outer = _split_batch(raw) if batch else ([raw], {})
        key_symbol = symbol("x-opt-partition-key")
        for part in parts:
            message = _decode(part)
            annotations = {**outer, **dict(message.annotations or {})}
            key = annotations.get(key_symbol)
            target = partition or hub.partition_for(None if key is None else str(key))
            now = time.time()
            sequence, offset = len(target.events), target.size
            annotations[symbol("x-opt-sequence-number")] = sequence
            annotations[symbol("x-opt-offset")] = str(offset)
            annotations[symbol("x-opt-enqueued-time")] = _ms(now)
            message.annotations = annotations
            encoded = bytes(message.encode())
            target.events.append(_Event(sequence, offset, now, encoded))
            target.size += len(part)
            for link in target.consumers:
                self._pump(link)

    # -- sending to clients --------------------------------------------------------------

    def _pump(self, link: Link) -> None:
        node = self._nodes.get(link)
        if node is None:
            return
        if node.kind == "queue" and node.queue is not None:
            self._dispatch(node.queue)
        elif node.partition is not None:
            events = node.partition.events
            while link.credit > 0 and node.cursor < len(events):
                self._send(link, events[node.cursor].payload)
                node.cursor += 1

    def _send(self, link: Link, payload: bytes) -> None:
        """Send one message; settled at once unless the client asked to settle first."""
        delivery = link.delivery(uuid.uuid4().bytes)  # type: ignore[arg-type]  # bytes, as tags are
        link.send(payload)
        link.advance()
        if link.snd_settle_mode != Link.SND_UNSETTLED:
            delivery.settle()

    def _reply(
        self, link: Link, request: Message, status: int, description: str, body: Any
    ) -> None:
        """Answer a request to `$cbs` or `$management` on the client's link for replies."""
        reply = Message(
            body=body,
            correlation_id=request.id,
            properties={
                "status-code": status,
                "statusCode": status,
                "status-description": description,
                "statusDescription": description,
            },
        )
        # The client's reply link: on the same session, from the node the request went to
        # (and to the request's reply-to address, when it names one).
        node = _entity_path(link.remote_target.address)
        for other in self._nodes:
            if (
                other.is_sender
                and other.session == link.session
                and _entity_path(other.remote_source.address) == node
                and request.reply_to in (None, other.remote_target.address)
            ):
                self._send(other, bytes(reply.encode()))
                return
        _LOG.debug("AMQP broker: no link to reply to a request to %r on", node)

    def _manage(self, link: Link, node: _Node, request: Message) -> None:
        properties: dict[Any, Any] = request.properties or {}
        operation = str(properties.get("operation", ""))
        body = request.body if isinstance(request.body, dict) else {}
        try:
            status, answer = self._operation(node, operation, properties, body)
        except _Refused as refusal:
            self._reply(link, request, 404, refusal.description, None)
            return
        description = "OK" if status < 300 else answer
        self._reply(link, request, status, description, None if status >= 300 else answer)

    def _operation(
        self, node: _Node, operation: str, properties: dict[Any, Any], body: dict[Any, Any]
    ) -> tuple[int, Any]:
        if operation == "READ":
            hub = self._hub(str(properties.get("name", "")))
            if str(properties.get("type")) == "com.microsoft:partition":
                return 200, self._partition_info(self._partition(hub, str(properties["partition"])))
            return 200, {
                "name": hub.name,
                "created_at": _ms(hub.created),
                "partition_count": len(hub.partitions),
                "partition_ids": [p.id for p in hub.partitions],
            }
        if node.queue is not None and operation == "com.microsoft:renew-lock":
            return 200, {"expirations": self._renew(node.queue, body.get("lock-tokens"))}
        if node.queue is not None and operation == "com.microsoft:peek-message":
            first = int(body.get("from-sequence-number", 0))
            count = int(body.get("message-count", 1))
            found = [s for s in node.queue.messages() if s.sequence >= first][:count]
            if not found:
                return 204, "No messages to peek"
            return 200, {"messages": [{"message": self._peeked(s)} for s in found]}
        return 501, f"portabind's AMQP broker does not implement {operation!r}"

    def _partition_info(self, partition: _Partition) -> dict[str, Any]:
        last = partition.events[-1] if partition.events else _Event(-1, -1, 0.0, b"")
        return {
            "name": partition.hub,
            "partition": partition.id,
            "begin_sequence_number": 0,
            "last_enqueued_sequence_number": last.sequence,
            "last_enqueued_offset": str(last.offset),
            "last_enqueued_time_utc": _ms(last.enqueued),
            "is_partition_empty": not partition.events,
        }

    def _renew(self, queue: _Queue, tokens: Any) -> list[timestamp]:
        expirations = []
        for token in getattr(tokens, "elements", tokens) or ():
            key = uuid.UUID(str(token))
            lock = self._locks.get(key)
            if lock is None or lock.queue is not queue:
                raise _Refused("com.microsoft:message-lock-lost", f"lock {token} is not held")
            lock.until = time.time() + queue.lock_duration
            self._at(lock.until, functools.partial(self._lock_expired, key, lock.until))
            expirations.append(_ms(lock.until))
        return expirations

    def _peeked(self, stored: _Stored) -> bytes:
        return self._encoded(
            stored,
            {
                **stored.annotations,
                symbol("x-opt-sequence-number"): stored.sequence,
                symbol("x-opt-enqueued-time"): _ms(stored.enqueued),
            },
        )

    def _encoded(self, stored: _Stored, annotations: dict[Any, Any]) -> bytes:
        """The message as delivered: its header (with the delivery count), the annotations,
        then the rest as the sender wrote it."""
        message = stored.message
        message.annotations = annotations
        return with_header(bytes(message.encode()), stored.ttl, stored.deliveries)


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted: `python -m portabind.adapters.local.emulators.amqp`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5673)
    parser.add_argument("--queue", action="append", default=[], help="declare a queue")
    parser.add_argument(
        "--event-hub", action="append", default=[], help="declare an event hub: NAME[:PARTITIONS]"
    )
    options = parser.parse_args(argv)
    broker = AmqpBroker(port=options.port).start()
    for name in options.queue:
        broker.declare_queue(name)
    for spec in options.event_hub:
        name, _, partitions = spec.partition(":")
        broker.declare_event_hub(name, partitions=int(partitions or 1))
    print(f"AMQP broker on {broker.address}", flush=True)
    print(f"connection string: {broker.connection_string()}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
