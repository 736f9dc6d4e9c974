"""Messages per second through `portabind run`: Service Bus (portabind's AMQP broker) beside
SQS (moto), measured in one run so that the ratios compare like with like.

For each queue binding the benchmark starts the local server itself, fills an `intake` queue
with `--messages` messages, then runs `portabind run` (in this process, as the CLI would,
without `--emulate`: the components point at the servers started here) on an app whose
handler forwards each message to an `outbox` queue through the output binding. Two figures:

- **in and out**: messages handled per second while the listener drains `intake`, each one
  received, handed to the handler, sent on to `outbox` and acknowledged (from the first
  handled message to the last);
- **out**: `create` calls per second on the output binding alone (`app.invoke_binding`,
  one after the other), what a handler sending messages gets.

Service Bus runs twice: with Dapr's defaults (`maxActiveMessages` 1: one message per receive)
and with `maxActiveMessages: 10`, as SQS receives 10 at a time.

    .venv/bin/python benchmarks/messaging_throughput.py [--messages 500] [--quick] [--json]
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from _local import aws_client, write_component
from _report import Row, argument_parser, emit, runs

from portabind.adapters.local.emulators import free_port
from portabind.adapters.local.emulators.amqp import AmqpBroker
from portabind.adapters.local.emulators.aws import MotoEmulator
from portabind.adapters.local.runner import RunOptions, run
from portabind.events import Metadata
from portabind.runtime import Runtime
from portabind.tooling.project import load_project

APP = """\
import time

from portabind import App, BindingEvent

app = App()
handled: list[float] = []


@app.binding("intake")
def forward(event: BindingEvent) -> None:
    app.invoke_binding("outbox", "create", data=event.data)
    handled.append(time.perf_counter())
"""


def _project(directory: Path, binding_type: str, queues: dict[str, dict[str, str]]) -> Path:
    (directory / "components").mkdir(parents=True)
    (directory / "app.py").write_text(APP)
    for name, values in queues.items():
        write_component(directory / "components", name, binding_type, values)
    return directory


def _sqs(moto: MotoEmulator, prefix: str) -> dict[str, dict[str, str]]:
    sqs = aws_client("sqs", moto.endpoint)
    for name in ("intake", "outbox"):
        sqs.create_queue(QueueName=f"{prefix}-{name}")
    common = {"region": "us-east-1", "endpoint": moto.endpoint, "accessKey": "test",
              "secretKey": "test"}  # fmt: skip
    return {
        "intake": {**common, "queueName": f"{prefix}-intake"},
        "outbox": {**common, "queueName": f"{prefix}-outbox"},
    }


def _service_bus(broker: AmqpBroker, prefix: str, **extra: str) -> dict[str, dict[str, str]]:
    for name in ("intake", "outbox"):
        broker.declare_queue(f"{prefix}-{name}")
    os.environ["PORTABIND_BENCH_SERVICEBUS"] = broker.connection_string()
    common = {"connectionString": "env:PORTABIND_BENCH_SERVICEBUS"}
    return {
        "intake": {**common, "queueName": f"{prefix}-intake", **extra},
        "outbox": {**common, "queueName": f"{prefix}-outbox"},
    }


def measure(
    directory: Path, binding_type: str, queues: dict[str, dict[str, str]], count: int
) -> tuple[float, float]:
    """(in-and-out, out) messages per second for one binding."""
    project = load_project(_project(directory, binding_type, queues))
    handled: list[float] = sys.modules["app"].handled  # the app module load_project imported
    filler = Runtime(project.components)  # `intake` filled before anything reads it
    for n in range(count):
        filler.output("intake").invoke("create", f'{{"n": {n}}}'.encode(), Metadata())
    filler.close()
    stop = threading.Event()
    options = RunOptions(
        emulate=False, sends=[], exit_after=None, dapr_port=free_port(), app_port=None
    )
    with contextlib.redirect_stdout(io.StringIO()):  # the console's line per message
        runner = threading.Thread(target=run, args=(project, options), kwargs={"stop": stop})
        runner.start()
        deadline = time.monotonic() + 600
        while len(handled) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{binding_type}: {len(handled)} of {count} handled")
            time.sleep(0.05)
        in_and_out = (count - 1) / (handled[count - 1] - handled[0])
        started = time.perf_counter()
        for n in range(count):
            project.app.invoke_binding("outbox", "create", data=f'{{"n": {n}}}')
        out = count / (time.perf_counter() - started)
        stop.set()
        runner.join(60)
    return in_and_out, out


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--messages", type=int, help="default 500, quick 150")
    options = parser.parse_args()
    messages = runs(options.messages, options, full=500, quick=150)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's line per request
    rows = []
    with MotoEmulator() as moto, AmqpBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cases = [
            ("bindings.aws.sqs (moto)", "bindings.aws.sqs", _sqs(moto, "bench")),
            (
                "bindings.azure.servicebusqueues",
                "bindings.azure.servicebusqueues",
                _service_bus(broker, "bench-a"),
            ),
            (
                "  ... maxActiveMessages: 10",
                "bindings.azure.servicebusqueues",
                _service_bus(broker, "bench-b", maxActiveMessages="10"),
            ),
        ]
        for index, (label, binding_type, queues) in enumerate(cases):
            rows.append((label, *measure(root / str(index), binding_type, queues, messages)))
    base_in, base_out = rows[0][1], rows[0][2]
    print(f"{messages} messages       in and out/s  ratio      out/s  ratio")
    for label, in_and_out, out in rows:
        print(
            f"{label:<34} {in_and_out:9.1f} {in_and_out / base_in:6.2f} "
            f"{out:10.1f} {out / base_out:6.2f}"
        )
    emit(
        [
            Row(
                "messaging throughput",
                f"{name}: {kind} / SQS on moto",
                f"{mine:.0f} vs {base:.0f} messages/s",
                ratio=mine / base,
            )
            for name, (_, in_and_out, out) in zip(
                ("Service Bus, Dapr's defaults", "Service Bus, maxActiveMessages 10"),
                rows[1:],
                strict=True,
            )
            for kind, mine, base in (("in and out", in_and_out, base_in), ("out", out, base_out))
        ],
        options,
    )


if __name__ == "__main__":
    main()
