"""How long a queue listener takes to stop: the time from `stop.set()` to `listen()` returning.

Each run starts a listener on an empty queue (SQS, SNS and S3 through their relay queue,
Azure Storage Queues with its default 10 s polling interval), lets it settle into waiting
for messages for `--settle` seconds, sets `stop` and times the return. moto runs in this
process; Azurite is the one `find_azurite` finds (`PORTABIND_AZURITE`, PATH or tools/).

    .venv/bin/python benchmarks/stop_latency.py [--runs N] [--settle SECONDS] [--quick] [--json]
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from _report import Row, argument_parser, emit, runs

from portabind.adapters.local.emulators.aws import MotoEmulator
from portabind.adapters.local.emulators.azure import AzuriteEmulator
from portabind.bindings.aws import _aws, s3, sns, sqs
from portabind.bindings.azure import storagequeues

if TYPE_CHECKING:
    from collections.abc import Callable

    from portabind.binding import InputBinding
    from portabind.events import BindingEvent

ACCOUNT = "111122223333"


def sqs_listener(moto: MotoEmulator) -> InputBinding[Any]:
    values = {"queueName": f"bench-{uuid.uuid4().hex[:8]}", "region": "us-east-1"}
    metadata = sqs.SqsMetadata.model_validate({**values, **_aws.emulate({"moto": moto.endpoint})})
    sqs.provision(metadata)
    return sqs.SqsInput("orders", metadata)


def sns_listener(moto: MotoEmulator) -> InputBinding[Any]:
    values = {
        "topicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:bench-{uuid.uuid4().hex[:8]}",
        "region": "us-east-1",
    }
    metadata = sns.SnsMetadata.model_validate({**values, **sns.emulate({"moto": moto.endpoint})})
    sns.provision(metadata)
    return sns.SnsInput("alerts", metadata)


def s3_listener(moto: MotoEmulator) -> InputBinding[Any]:
    values = {"bucket": f"bench-{uuid.uuid4().hex[:8]}", "region": "us-east-1"}
    metadata = s3.S3Metadata.model_validate({**values, **_aws.emulate({"moto": moto.endpoint})})
    s3.provision(metadata)
    return s3.S3Input("uploads", metadata)


def storagequeues_listener(azurite: AzuriteEmulator) -> InputBinding[Any]:
    assert storagequeues.binding.emulate is not None
    endpoint = azurite.queue_endpoint.removesuffix(f"/{azurite.account_name}")
    values = {
        "queueName": f"bench-{uuid.uuid4().hex[:8]}",
        **storagequeues.binding.emulate({"azurite.queue": endpoint}),
    }
    metadata = storagequeues.StorageQueuesMetadata.model_validate(values)
    return storagequeues.StorageQueuesInput("orders", metadata)


def stop_seconds(listener: InputBinding[Any], settle: float) -> float:
    stop = threading.Event()

    def deliver(event: BindingEvent) -> None:
        raise AssertionError(f"the queue should be empty, got {event!r}")

    thread = threading.Thread(target=listener.listen, args=(deliver, stop), daemon=True)
    thread.start()
    time.sleep(settle)
    started = time.perf_counter()
    stop.set()
    thread.join(60)
    assert not thread.is_alive(), "listen() did not return"
    return time.perf_counter() - started


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--runs", type=int, help="default 5, quick 3")
    parser.add_argument("--settle", type=float, default=1.0)
    options = parser.parse_args()
    count = runs(options.runs, options, full=5, quick=3)
    rows: list[Row] = []
    moto = MotoEmulator().start()
    azurite = AzuriteEmulator().start()
    try:
        kinds: dict[str, Callable[[], InputBinding[Any]]] = {
            "sqs": lambda: sqs_listener(moto),
            "sns": lambda: sns_listener(moto),
            "s3": lambda: s3_listener(moto),
            "storagequeues": lambda: storagequeues_listener(azurite),
        }
        for kind, make in kinds.items():
            times = [stop_seconds(make(), options.settle) for _ in range(count)]
            value = (
                f"median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms"
            )
            print(f"{kind:14} {value}   ({count} runs)")
            rows.append(
                Row("stop latency", f"{kind} listener: stop.set() to listen() returning", value)
            )
    finally:
        azurite.stop()
        moto.stop()
    emit(rows, options)


if __name__ == "__main__":
    main()
