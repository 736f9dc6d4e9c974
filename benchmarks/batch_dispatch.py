"""Per-record dispatch: a 10-record SQS batch through the generated AWS entry vs Powertools.

A tiny app whose handler does nothing is built with `portabind build --target aws`; its
generated entry (`portabind_lambda.py`) is imported here, as Lambda imports it, and handles
the same 10-record SQS event many times. The baseline is Powertools' `BatchProcessor` with
`process_partial_response` and a record handler that does nothing: what a hand-written
function pays for partial batch responses. The difference is what portabind adds per record
(normalizing the record into a `BindingEvent`, finding and calling the handler).

Rounds interleave the two so drift on the machine hits both alike; each figure is the median
over rounds of the time per batch.

    .venv/bin/python benchmarks/batch_dispatch.py [--rounds N] [--batches N] [--quick] [--json]
"""

from __future__ import annotations

import functools
import importlib
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _report import argument_parser, at_most, emit, interleave, medians, runs

if TYPE_CHECKING:
    from collections.abc import Callable

GOAL = 1.5
RECORDS = 10

APP = """
from portabind import App, BindingEvent

app = App()


@app.binding("orders")
def on_order(event: BindingEvent) -> None:
    pass
"""

COMPONENT = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: orders
spec:
  type: bindings.aws.sqs
  version: v1
  metadata:
    - name: queueName
      value: orders
    - name: region
      value: us-east-1
"""


def sqs_event(records: int) -> dict[str, Any]:
    """An SQS batch as Lambda delivers it, with a message attribute on every record."""
    return {
        "Records": [
            {
                "messageId": f"message-{index}",
                "receiptHandle": f"handle-{index}",
                "body": json.dumps({"id": index, "item": "book", "qty": 2}),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1700000000000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1700000000001",
                },
                "messageAttributes": {
                    "tenant": {"stringValue": "acme", "dataType": "String"},
                },
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders",
                "awsRegion": "us-east-1",
            }
            for index in range(records)
        ]
    }


def build_entry(work: Path) -> Callable[[dict[str, Any], Any], Any]:
    """The generated entry's handler for `orders`, built by the CLI into `work`."""
    project = work / "app"
    (project / "components").mkdir(parents=True)
    (project / "app.py").write_text(textwrap.dedent(APP))
    (project / "components" / "orders.yaml").write_text(textwrap.dedent(COMPONENT))
    out = work / "built"
    portabind = Path(sys.executable).with_name("portabind")
    built = subprocess.run(
        [str(portabind), "build", str(project), "--target", "aws", "--out", str(out)],
        check=False,
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        raise SystemExit(f"portabind build failed:\n{built.stderr}")
    # Nothing of portabind is imported here before: the entry loads the copy bundled beside
    # it, as on Lambda.
    sys.path.insert(0, str(out))
    entry = importlib.import_module("portabind_lambda")
    handler: Callable[[dict[str, Any], Any], Any] = entry.handle_orders
    return handler


def powertools_handler() -> Callable[[dict[str, Any], Any], Any]:
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    processor = BatchProcessor(event_type=EventType.SQS)

    def record_handler(record: Any) -> None:
        pass

    def handler(event: dict[str, Any], context: Any) -> Any:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return handler


def time_batches(
    handler: Callable[[dict[str, Any], Any], Any], event: dict[str, Any], batches: int
) -> float:
    """Seconds per batch over `batches` calls."""
    started = time.perf_counter()
    for _ in range(batches):
        handler(event, None)
    return (time.perf_counter() - started) / batches


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 31, quick 11)")
    parser.add_argument("--batches", type=int, default=200, help="batches per round (default 200)")
    options = parser.parse_args()
    rounds = runs(options.rounds, options, full=31, quick=11)
    event = sqs_event(RECORDS)
    with tempfile.TemporaryDirectory() as temporary:
        handlers = {
            "portabind": build_entry(Path(temporary)),
            "powertools": powertools_handler(),
        }
        for name, handler in handlers.items():
            reply = handler(event, None)
            if reply != {"batchItemFailures": []}:
                raise SystemExit(f"{name} did not handle the batch: {reply}")
            time_batches(handler, event, options.batches)  # warm up
        per_batch = medians(
            interleave(
                rounds,
                {
                    name: functools.partial(time_batches, handler, event, options.batches)
                    for name, handler in handlers.items()
                },
            )
        )
    ratio = per_batch["portabind"] / per_batch["powertools"]
    per_record = {name: median / RECORDS * 1e6 for name, median in per_batch.items()}
    print(
        f"{rounds} interleaved rounds of {options.batches} batches of {RECORDS} SQS records; "
        f"medians (python {sys.version.split()[0]})"
    )
    for name, median in per_batch.items():
        print(f"{name:<12}{median * 1e6:>9.1f} µs/batch{per_record[name]:>8.2f} µs/record")
    print(f"ratio portabind / powertools: {ratio:.2f} (goal ≤ {GOAL})")
    value = f"{per_record['portabind']:.2f} vs {per_record['powertools']:.2f} µs per record"
    figure = f"SQS batch of {RECORDS}, do-nothing handler: AWS entry / Powertools BatchProcessor"
    emit([at_most("batch dispatch", figure, ratio, GOAL, value)], options)


if __name__ == "__main__":
    main()
