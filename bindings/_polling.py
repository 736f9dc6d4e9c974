"""The receive → deliver → acknowledge/release loop of the listeners that poll a queue.

SQS (`bindings.aws.sqs`), SNS topics and S3 notifications relayed through an SQS queue
(`bindings.aws._relay`) and Azure Storage Queues (`bindings.azure.storagequeues`) poll their
queue with this loop; a `QueueSource` subclass makes the service's calls.

Delivery is at least once:

- A message is acknowledged (deleted) only after the handler returned for each of its
  events: right after it (`Acknowledge.EACH`), or together with the batch's other handled
  messages once the batch is done (`Acknowledge.BATCH`: one request per batch, or sooner
  when handled messages have waited `BATCH_ACK_SECONDS`, so a batch of slow handlers does
  not hold them until the visibility timeout brings them back). A handler that ends the
  thread still leaves the messages handled before it acknowledged.
- A process killed outright (`kill -9`, a crash) acknowledges nothing more: under EACH the
  one message whose handler had returned is handled again, under BATCH every handled
  message of the batch in flight. Every message of that batch, handled or not, is received
  again once the visibility timeout passes, and on SQS that receive counts toward the
  redrive policy's `maxReceiveCount`: so only EACH keeps crashes from moving messages that
  had succeeded into the dead-letter queue. The storage queue listener uses EACH; the SQS
  ones use EACH on a queue with a redrive policy and BATCH on one without, where nothing
  can be dead-lettered (benchmarks/sqs_ack.py measures the difference).
- A message whose handler failed, or that cannot be read as events, is never acknowledged:
  it is released to come back after a back-off that doubles with its receive count (1 s,
  2 s, 4 s, … at most a minute). Should the release fail, the service's visibility timeout
  brings it back instead.
- A failed call to the service is logged and retried `RETRY_SECONDS` later.

Stopping does not wait out a long poll. Closing a boto3 client does not cut a receive in
flight (urllib3 closes only idle connections; the poll still runs its 5 s), so each receive
runs on a daemon thread of its own and the loop waits for it in `STOP_CHECK_SECONDS` steps,
looking at `stop` between them. On stop the loop returns at once; messages the abandoned
receive still brings are released for the next consumer, and the client is closed after
that. The undelivered rest of a batch is released the same way when `stop` is set between
two messages.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from abc import ABC, abstractmethod
from concurrent import futures
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from portabind.events import BindingEvent

log = logging.getLogger(__name__)

#: Pause after a failed call to the service (network, missing queue) before trying again.
RETRY_SECONDS = 2.0
#: Longest back-off before a failed message is delivered again.
BACKOFF_MAX_SECONDS = 60
#: How often a listener waiting for a receive looks at `stop`: the most a stop waits.
STOP_CHECK_SECONDS = 0.05
#: Under `Acknowledge.BATCH`, the longest a handled message waits for the batch's end
#: before it is acknowledged with those handled so far.
BATCH_ACK_SECONDS = 1.0

Message = TypeVar("Message")


class Acknowledge(enum.Enum):
    """When handled messages are acknowledged."""

    #: Each one right after its handler returned.
    EACH = "each"
    #: The handled messages of a batch together, once the batch is done.
    BATCH = "batch"


def backoff_seconds(receive_count: int) -> int:
    """The delay before a message that failed on its `receive_count`-th receive comes back."""
    return min(1 << max(receive_count - 1, 0), BACKOFF_MAX_SECONDS)  # 2 ** (count - 1)


class QueueSource(ABC, Generic[Message]):
    """A queue to poll. Subclasses make the service calls; `poll` is the loop.

    Every call may raise one of `errors` (the SDK's errors for a failed call): the loop logs
    it and goes on as the module docstring says.
    """

    #: EACH: a crash then repeats at most the one message whose handler had just returned.
    acknowledge = Acknowledge.EACH
    #: Pause after an empty receive. Zero for a service that long-polls (the receive itself
    #: waited); a service whose receive returns at once sets its polling interval.
    idle_seconds = 0.0

    def __init__(self, name: str, errors: tuple[type[Exception], ...]) -> None:
        #: The component, for log lines.
        self.name = name
        self.errors = errors

    @abstractmethod
    def receive(self) -> Sequence[Message]:
        """The next batch of messages, hidden from other consumers until acknowledged or
        released; may wait (long poll) for the first one. Runs on a thread of its own."""

    @abstractmethod
    def events(self, message: Message) -> Iterable[BindingEvent]:
        """The events of `message`, delivered in order; raising counts as a failed delivery."""

    @abstractmethod
    def ack(self, messages: Sequence[Message]) -> None:
        """Delete handled messages (at most one batch)."""

    @abstractmethod
    def release(self, messages: Sequence[Message], delay: int) -> None:
        """Make messages visible again `delay` seconds from now (0: at once)."""

    @abstractmethod
    def receive_count(self, message: Message) -> int:
        """How many times `message` was received, this time included."""

    @abstractmethod
    def message_id(self, message: Message) -> str:
        """The service's id of `message`, for log lines."""

    @abstractmethod
    def close(self) -> None:
        """Close the client once polling ended."""

    def poll(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        """Deliver the queue's messages until `stop` is set."""
        abandoned: futures.Future[Sequence[Message]] | None = None
        try:
            while not stop.is_set():
                receiving = self._receive_in_background()
                try:
                    batch = self._wait_for(receiving, stop)
                except self.errors as error:
                    log.warning("%s: receiving from the queue failed: %s", self.name, error)
                    stop.wait(RETRY_SECONDS)
                    continue
                if batch is None:
                    abandoned = receiving
                    break
                if batch:
                    self._handle(batch, deliver, stop)
                else:
                    stop.wait(self.idle_seconds)
        finally:
            if abandoned is None:
                self.close()
            else:
                abandoned.add_done_callback(self._settle_abandoned)

    def _receive_in_background(self) -> futures.Future[Sequence[Message]]:
        receiving: futures.Future[Sequence[Message]] = futures.Future()

        def run() -> None:
            try:
                receiving.set_result(self.receive())
            except BaseException as error:  # handed to the listener's thread, which raises it
                receiving.set_exception(error)

        # A daemon: an abandoned long poll must not hold up the interpreter's exit either.
        threading.Thread(target=run, name=f"{self.name} receive", daemon=True).start()
        return receiving

    @staticmethod
    def _wait_for(
        receiving: futures.Future[Sequence[Message]], stop: threading.Event
    ) -> Sequence[Message] | None:
        """The received batch, or None when `stop` was set first."""
        while True:
            try:
                return receiving.result(timeout=STOP_CHECK_SECONDS)
            except futures.TimeoutError:
                if stop.is_set():
                    return None

    def _settle_abandoned(self, receiving: futures.Future[Sequence[Message]]) -> None:
        """Release what a receive abandoned on stop brought, then close the client (not
        before: the receive and the release still use it)."""
        try:
            if receiving.exception() is None:
                self._release(receiving.result(), 0)
        finally:
            self.close()

    def _handle(
        self,
        batch: Sequence[Message],
        deliver: Callable[[BindingEvent], None],
        stop: threading.Event,
    ) -> None:
        handled: list[Message] = []  # handled, not yet acknowledged
        waiting_since = 0.0  # when the first of `handled` was handled
        try:
            for index, message in enumerate(batch):
                if stop.is_set():  # another consumer may take the rest at once
                    self._release(batch[index:], 0)
                    break
                if not self._deliver(message, deliver):
                    continue
                now = time.monotonic()
                if not handled:
                    waiting_since = now
                handled.append(message)
                if self.acknowledge is Acknowledge.EACH or now - waiting_since >= BATCH_ACK_SECONDS:
                    self._ack(handled)
                    handled = []
        finally:  # also when a handler ends the thread: what it handled is done
            self._ack(handled)

    def _deliver(self, message: Message, deliver: Callable[[BindingEvent], None]) -> bool:
        """Whether every event of `message` was handled; a failed message is released to
        come back after its back-off."""
        try:
            for event in self.events(message):
                deliver(event)
        except Exception as error:  # the handler's failure, or an unreadable message
            delay = backoff_seconds(self.receive_count(message))
            log.warning(
                "%s: message %s failed (%s); delivered again in %d s",
                self.name,
                self.message_id(message),
                error,
                delay,
            )
            self._release([message], delay)
            return False
        return True

    def _ack(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        try:
            self.ack(messages)
        except self.errors as error:  # at least once: they come again
            log.warning(
                "%s: deleting %d handled message(s) failed: %s", self.name, len(messages), error
            )

    def _release(self, messages: Sequence[Message], delay: int) -> None:
        if not messages:
            return
        try:
            self.release(messages, delay)
        except self.errors as error:  # the visibility timeout brings them back instead
            log.warning("%s: releasing %d message(s) failed: %s", self.name, len(messages), error)
