"""Messages per second through the SQS listener on a queue with a redrive policy, where it
deletes each handled message at once (`Acknowledge.EACH`, one DeleteMessageBatch of one entry
per message), against a queue without one, where it deletes the handled messages of a
receive together (`Acknowledge.BATCH`, one request per batch of 10).

Each run fills a fresh queue on a moto server (in this process) with `--messages`
messages, then times the listener (`SqsQueue.poll`, a handler that does nothing) from its
start until it has handled the last one and acknowledged it. The two kinds of queue run in
turn, so the ratio of their medians is not the machine's drift.

    .venv/bin/python benchmarks/sqs_ack.py [--runs N] [--messages N] [--quick] [--json]
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from _local import sqs_queue
from _report import Row, argument_parser, emit, interleave, medians, runs

from portabind.adapters.local.emulators.aws import MotoEmulator
from portabind.bindings._polling import Acknowledge
from portabind.bindings.aws import _aws, sqs

if TYPE_CHECKING:
    from portabind.events import BindingEvent


def _client(moto: MotoEmulator) -> Any:
    metadata = sqs.SqsMetadata.model_validate(
        {"queueName": "unused", "region": "us-east-1", **_aws.emulate({"moto": moto.endpoint})}
    )
    return _aws.client("sqs", metadata)


def drain(moto: MotoEmulator, acknowledge: Acknowledge, messages: int) -> float:
    """Messages per second of one listener draining a queue of `messages` messages, one
    with a redrive policy under EACH (the listener picks the acknowledgement by it)."""
    client = _client(moto)
    name = f"bench-ack-{uuid.uuid4().hex[:8]}"
    redrive = acknowledge is Acknowledge.EACH
    url = sqs_queue(moto.endpoint, name, redrive=redrive)
    for first in range(0, messages, 10):
        entries = [
            {"Id": str(index), "MessageBody": json.dumps({"id": index})}
            for index in range(first, min(first + 10, messages))
        ]
        client.send_message_batch(QueueUrl=url, Entries=entries)
    queue = sqs.SqsQueue("orders", _client(moto), name)
    stop = threading.Event()
    handled = 0

    def deliver(event: BindingEvent) -> None:
        nonlocal handled
        handled += 1
        if handled == messages:
            stop.set()  # the loop acknowledges this last one, then returns

    started = time.perf_counter()
    queue.poll(deliver, stop)
    elapsed = time.perf_counter() - started
    assert queue.acknowledge is acknowledge
    client.delete_queue(QueueUrl=url)
    if redrive:
        client.delete_queue(QueueUrl=client.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"])
    client.close()
    return messages / elapsed


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--runs", type=int, default=None, help="runs of each mode")
    parser.add_argument("--messages", type=int, default=100, help="messages per run")
    options = parser.parse_args()
    rounds = runs(options.runs, options, full=5, quick=3)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's line per request
    moto = MotoEmulator()
    moto.start()
    try:
        samples = interleave(
            rounds,
            {
                mode.value: functools.partial(drain, moto, mode, options.messages)
                for mode in (Acknowledge.EACH, Acknowledge.BATCH)
            },
        )
    finally:
        moto.stop()
    rates = medians(samples)
    each, batch = rates[Acknowledge.EACH.value], rates[Acknowledge.BATCH.value]
    for mode, values in samples.items():
        each_run = ", ".join(f"{value:.0f}" for value in values)
        print(f"{mode:>5}: {rates[mode]:6.0f} messages/s (runs: {each_run})")
    print(
        f"each (redrive policy) / batch (none): {each / batch:.2f}x  "
        f"({rounds} runs of {options.messages} messages)"
    )
    row = Row(
        "SQS acknowledgement",
        "redrive policy: delete each message / none: delete per batch, messages/s",
        f"{each:.0f} vs {batch:.0f} messages/s",
        ratio=round(each / batch, 3),
    )
    emit([row], options)


if __name__ == "__main__":
    main()
