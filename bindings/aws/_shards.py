"""Polling a sharded stream (Kinesis, DynamoDB Streams) with Lambda's delivery semantics.

Both services expose the same model: a stream has shards, a shard iterator reads a shard in
order, each record has a sequence number. `poll` reads every shard with GetRecords, delivers
records one at a time in shard order and remembers, per shard, the sequence number of the last
record the handler accepted (the checkpoint, kept in memory for the life of the listener).

When the handler fails, that shard stops advancing: its iterator is dropped, and after a
back-off the shard is read again at the failed record's sequence number, so it comes again
and nothing behind it is skipped. That is what Lambda does for a stream trigger by
default (retry from the first failed sequence number until the record expires); other shards
keep flowing meanwhile.

Not reproduced: after a reshard Lambda finishes a closed parent shard before reading its
children; here children are read alongside it, so order per partition key can break across a
split or merge (moto does not close split shards, so the difference cannot show locally).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from portabind.annotations import Annotations, Choice
from portabind.binding import InputBinding
from portabind.bindings.aws._aws import AwsCredentials
from portabind.metadata import setting

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from portabind.events import BindingEvent

log = logging.getLogger(__name__)

#: Records per GetRecords call (Lambda's default batch size for streams).
BATCH = 100
#: Pause when no shard returned records; Lambda polls each shard about once a second.
IDLE_SECONDS = 1.0
#: Seconds between re-reading the shard list, so shards added by resharding are picked up.
SHARD_REFRESH_SECONDS = 30.0
#: Back-off after a failed delivery: doubled per consecutive failure of the shard, capped.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0


class StartingPosition(Choice):
    """Where a stream is first read, as Lambda's `StartingPosition` names it."""

    LATEST = "LATEST"
    TRIM_HORIZON = "TRIM_HORIZON"


#: Where a new listener starts reading, unless `portabind.io/startingPosition` says otherwise.
#: Lambda's trigger defaults to LATEST (the AWS build); locally the oldest record is the
#: better default: an emulated stream is new on every run, and records the app writes while
#: the listener is still starting would be skipped at LATEST.
DEFAULT_START = StartingPosition.TRIM_HORIZON


class StreamAnnotations(Annotations):
    """What the stream listeners and the AWS stream triggers (Kinesis, DynamoDB) read.
    Unset, each uses its own default: `DEFAULT_START` here, LATEST on Lambda."""

    starting_position: StartingPosition | None = setting(
        "startingPosition", None, description="LATEST or TRIM_HORIZON"
    )


class Stream(Protocol):
    """What `poll` needs from one service; errors of the SDK propagate from every method."""

    def shard_ids(self) -> list[str]:
        """Every shard of the stream, open or closed."""
        ...

    def iterator(self, shard_id: str, kind: str, sequence: str | None) -> str:
        """A shard iterator of type `kind` (TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER,
        AFTER_SEQUENCE_NUMBER), at `sequence` for the last two."""
        ...

    def read(self, iterator: str) -> tuple[list[dict[str, Any]], str | None]:
        """Records at `iterator` and the next iterator (None once a closed shard is done)."""
        ...

    def sequence(self, record: dict[str, Any]) -> str:
        """The sequence number of a record as `read` returns it."""
        ...

    def event(self, shard_id: str, record: dict[str, Any]) -> BindingEvent:
        """The normalized event of a record as `read` returns it."""
        ...


M = TypeVar("M", bound=AwsCredentials)


class StreamInput(InputBinding[M]):
    """A listener on a sharded stream: `stream()` names it, `poll` reads it from the
    annotated starting position."""

    annotations: StreamAnnotations

    def __init__(
        self, name: str, metadata: M, *, annotations: StreamAnnotations | None = None
    ) -> None:
        super().__init__(name, metadata, annotations=annotations or StreamAnnotations())
        self.start = (self.annotations.starting_position or DEFAULT_START).value

    def stream(self) -> Stream:
        raise NotImplementedError

    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        errors = (BotoCoreError, ClientError)
        poll(self.name, self.stream(), deliver, stop, errors, start=self.start)


@dataclass
class _Shard:
    #: Where a new iterator starts: the listener's starting position, then after the last
    #: delivered record, or at a failed one.
    kind: str
    sequence: str | None = None
    iterator: str | None = None
    done: bool = False
    failures: int = 0
    not_before: float = 0.0


def poll(
    name: str,
    stream: Stream,
    deliver: Callable[[BindingEvent], None],
    stop: threading.Event,
    service_errors: tuple[type[BaseException], ...],
    *,
    start: str = DEFAULT_START.value,
) -> None:
    """Deliver every record of `stream` until `stop` is set, each shard from `start`
    (TRIM_HORIZON or LATEST). `service_errors` are the SDK's exceptions: a failed call is
    logged and retried on the next round, never fatal."""
    shards: dict[str, _Shard] = {}
    refreshed = float("-inf")
    while not stop.is_set():
        if time.monotonic() - refreshed >= SHARD_REFRESH_SECONDS:
            try:
                for shard_id in stream.shard_ids():
                    shards.setdefault(shard_id, _Shard(start))
                refreshed = time.monotonic()
            except service_errors as error:
                log.warning("%s: listing the stream's shards failed: %s", name, error)
                stop.wait(IDLE_SECONDS)
                continue
        delivered = False
        for shard_id, shard in shards.items():
            if stop.is_set():
                return
            if shard.done or time.monotonic() < shard.not_before:
                continue
            delivered |= _read_shard(name, stream, shard_id, shard, deliver, stop, service_errors)
        if not delivered:
            stop.wait(IDLE_SECONDS)


def _read_shard(
    name: str,
    stream: Stream,
    shard_id: str,
    shard: _Shard,
    deliver: Callable[[BindingEvent], None],
    stop: threading.Event,
    service_errors: tuple[type[BaseException], ...],
) -> bool:
    """One GetRecords round on a shard; True when records were delivered."""
    try:
        if shard.iterator is None:
            shard.iterator = stream.iterator(shard_id, shard.kind, shard.sequence)
        records, following = stream.read(shard.iterator)
    except service_errors as error:
        # An expired iterator among them: the next round asks for a new one where it was.
        log.warning("%s: reading shard %s failed: %s", name, shard_id, error)
        shard.iterator = None
        return False
    for record in records:
        if stop.is_set():
            # Undelivered records stay behind the checkpoint; reading resumes there.
            shard.iterator = None
            return True
        sequence = stream.sequence(record)
        try:
            deliver(stream.event(shard_id, record))
        except Exception as error:  # the handler's failure: retry this record, keep order
            shard.failures += 1
            delay = min(RETRY_FIRST_SECONDS * 2 ** (shard.failures - 1), RETRY_MAX_SECONDS)
            log.warning(
                "%s: record %s of shard %s failed (%s); retrying it in %.1f s",
                name,
                sequence,
                shard_id,
                error,
                delay,
            )
            shard.iterator = None
            shard.kind, shard.sequence = "AT_SEQUENCE_NUMBER", sequence
            shard.not_before = time.monotonic() + delay
            return True
        shard.kind, shard.sequence = "AFTER_SEQUENCE_NUMBER", sequence
        shard.failures = 0
    shard.iterator = following
    shard.done = following is None
    return bool(records)
