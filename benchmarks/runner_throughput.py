"""Messages per second through `portabind run` (moto SQS → handler → S3) against a
hand-written boto3 loop doing the same on the same server.

Each round fills an SQS queue on a moto server started here with `--messages` orders, then
drains it one way:

- portabind: `portabind run` (in this process, as the CLI would, without `--emulate`: the
  components point at the moto server) on an app whose handler writes each order to S3
  through its output binding;
- hand-written: a loop that receives up to 10 messages (long polling), puts each order's
  object with boto3 and deletes the batch, as a worker written without portabind would.

The queue has no redrive policy, so the listener deletes the handled messages of each receive
together, as the loop does; with `--redrive` it has one (to a dead-letter queue), and the
listener deletes each message right after its handler (bindings/aws/sqs.py says why).

The rate is taken from the first handled message to the last, so the runner's start-up is
not counted. Rounds alternate between the two; the figure is the ratio of the median rates.

    .venv/bin/python benchmarks/runner_throughput.py [--messages N] [--rounds N] [--redrive]
        [--quick] [--json]
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from _local import aws_client, sqs_queue, write_component
from _report import argument_parser, at_least, emit, interleave, medians, runs

from portabind.adapters.local.emulators import free_port
from portabind.adapters.local.emulators.aws import MotoEmulator
from portabind.adapters.local.runner import RunOptions, run
from portabind.bindings.aws import s3
from portabind.tooling.project import load_project

if TYPE_CHECKING:
    from portabind.tooling.project import Project

QUEUE = "bench-intake"
BUCKET = "bench-receipts"
APP = """\
import time

from portabind import App, BindingEvent, Output

app = App()
handled: list[float] = []


@app.binding("intake")
def on_order(event: BindingEvent, receipts: Output) -> None:
    order = event.json()
    receipts.invoke("create", data=event.data, metadata={"key": f"receipts/{order['n']}.json"})
    handled.append(time.perf_counter())
"""
#: Seconds a round may take before the benchmark gives up on it.
ROUND_TIMEOUT = 300.0


def write_project(directory: Path, endpoint: str) -> Path:
    (directory / "app.py").write_text(APP)
    (directory / "components").mkdir()
    assert s3.binding.emulate is not None
    # moto's key pair through the environment: no secret, but written inline it would draw
    # portabind's warning on every run.
    os.environ["PORTABIND_BENCH_AWS_KEY"] = "test"
    keys = {"accessKey": "env:PORTABIND_BENCH_AWS_KEY", "secretKey": "env:PORTABIND_BENCH_AWS_KEY"}
    common = {**s3.binding.emulate({"moto": endpoint}), **keys}
    for name, type_, fields in (
        ("intake", "bindings.aws.sqs", {**common, "queueName": QUEUE}),
        ("receipts", "bindings.aws.s3", {**common, "bucket": BUCKET}),
    ):
        write_component(directory / "components", name, type_, fields)
    return directory


def rate(handled: list[float]) -> float:
    return (len(handled) - 1) / (handled[-1] - handled[0])


class Round:
    """Fills the queue, then drains it one way; each call returns messages per second."""

    def __init__(self, endpoint: str, project: Project, messages: int, *, redrive: bool) -> None:
        self.sqs, self.s3 = aws_client("sqs", endpoint), aws_client("s3", endpoint)
        self.queue_url = sqs_queue(endpoint, QUEUE, redrive=redrive)
        self.s3.create_bucket(Bucket=BUCKET)
        self.project = project
        self.messages = messages
        # The app module's list, which its handler appends to.
        self.handled: list[float] = project.app.handlers["intake"].function.__globals__["handled"]

    def fill(self) -> None:
        for start in range(0, self.messages, 10):
            entries = [
                {"Id": str(n), "MessageBody": json.dumps({"n": n})}
                for n in range(start, min(start + 10, self.messages))
            ]
            self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)

    def drained(self) -> bool:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return all(value == "0" for value in attributes.values())

    def through_portabind(self) -> float:
        self.fill()
        self.handled.clear()
        stop = threading.Event()
        options = RunOptions(
            emulate=False, sends=[], exit_after=None, dapr_port=free_port(), app_port=None
        )
        with contextlib.redirect_stdout(io.StringIO()):  # the console's line per message
            runner = threading.Thread(
                target=run, args=(self.project, options), kwargs={"stop": stop}
            )
            runner.start()
            try:
                deadline = time.monotonic() + ROUND_TIMEOUT
                # Handled and deleted: the next round must start from an empty queue.
                while len(self.handled) < self.messages or not self.drained():
                    if time.monotonic() > deadline or not runner.is_alive():
                        raise SystemExit(f"portabind run: {len(self.handled)} handled")
                    time.sleep(0.05)
            finally:
                stop.set()
                runner.join(60)
        return rate(self.handled)

    def handwritten(self) -> float:
        self.fill()
        handled: list[float] = []
        deadline = time.monotonic() + ROUND_TIMEOUT
        while len(handled) < self.messages:
            if time.monotonic() > deadline:
                raise SystemExit(f"hand-written loop: {len(handled)} handled")
            received = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            for message in received:
                order = json.loads(message["Body"])
                self.s3.put_object(
                    Bucket=BUCKET, Key=f"receipts/{order['n']}.json", Body=message["Body"]
                )
                handled.append(time.perf_counter())
            if received:
                self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(received)
                    ],
                )
        return rate(handled)


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--messages", type=int, help="per round (default 300, quick 150)")
    parser.add_argument("--rounds", type=int, help="rounds per side (default 5, quick 3)")
    parser.add_argument(
        "--redrive", action="store_true", help="a queue with a redrive policy (deletes each)"
    )
    options = parser.parse_args()
    messages = runs(options.messages, options, full=300, quick=150)
    rounds = runs(options.rounds, options, full=5, quick=3)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    with MotoEmulator() as moto, tempfile.TemporaryDirectory() as temporary:
        project = load_project(write_project(Path(temporary), moto.endpoint))
        bench = Round(moto.endpoint, project, messages, redrive=options.redrive)
        found = medians(
            interleave(
                rounds, {"portabind": bench.through_portabind, "hand-written": bench.handwritten}
            )
        )
    mine, theirs = found["portabind"], found["hand-written"]
    queue = "with" if options.redrive else "without"
    print(
        f"{rounds} rounds of {messages} messages each, interleaved, a queue {queue} a redrive "
        "policy; median messages/s"
    )
    print(
        f"portabind run {mine:8.1f}   hand-written boto3 loop {theirs:8.1f}   "
        f"ratio {mine / theirs:.3f}"
    )
    value = f"{mine:.0f} vs {theirs:.0f} messages/s"
    figure = "portabind run / hand-written boto3 loop (moto SQS → S3)"
    if options.redrive:
        figure += ", queue with a redrive policy"
    emit([at_least("runner throughput", figure, mine / theirs, 0.9, value)], options)


if __name__ == "__main__":
    main()
