"""Start-up of the AMQP broker `portabind run --emulate` starts for Service Bus and Event Hubs.

Each run is a fresh interpreter that has imported what `portabind run` has loaded by the
time it starts emulators (portabind, `portabind.adapters.local.emulate`, and the binding
modules of the components, which it checks first), then does what
`--emulate` does for these bindings: import the broker (python-qpid-proton with it), start
it, and wait until its port accepts a connection. A second figure adds the first real client
round trip: an azure-servicebus sender (the SDK imported beforehand) connecting,
authenticating on `$cbs` and sending one message. The CPU time the start took is shown too:
on a busy machine the wall time grows with what else runs, the CPU time does not.

    .venv/bin/python benchmarks/amqp_startup.py [--runs N] [--quick] [--json]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from _report import Row, argument_parser, emit, runs

PROBE = """
import json, sys, time
from azure.servicebus import ServiceBusClient, ServiceBusMessage
import portabind.adapters.local.emulate
import portabind.bindings.azure.servicebusqueues
from portabind.adapters.local.emulators import wait_for_port

started, cpu = time.perf_counter(), time.process_time()
from portabind.adapters.local.emulators.amqp import AmqpBroker

broker = AmqpBroker().start()
wait_for_port(broker.port)
up, up_cpu = time.perf_counter() - started, time.process_time() - cpu
broker.declare_queue("probe")
with ServiceBusClient.from_connection_string(broker.connection_string()) as client:
    with client.get_queue_sender("probe") as sender:
        sender.send_messages(ServiceBusMessage(b"x"))
first = time.perf_counter() - started
broker.stop()
print(json.dumps({"up": up, "up_cpu": up_cpu, "first_message": first}))
"""


def measure(runs: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"up": [], "up_cpu": [], "first_message": []}
    for _ in range(runs):
        completed = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
        )
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        for key in found:
            found[key].append(result[key] * 1000)
    return found


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--runs", type=int, help="default 20, quick 8")
    options = parser.parse_args()
    count = runs(options.runs, options, full=20, quick=8)
    found = measure(count)
    print(f"{count} runs, milliseconds   median      p90      max")
    for key, label in (
        ("up", "broker accepting"),
        ("up_cpu", "  of which CPU time"),
        ("first_message", "+ first SDK send"),
    ):
        values = sorted(found[key])
        p90 = values[int(0.9 * (len(values) - 1))]
        print(f"{label:<30} {statistics.median(values):8.1f} {p90:8.1f} {values[-1]:8.1f}")
    up, cpu = statistics.median(found["up"]), statistics.median(found["up_cpu"])
    value = f"{up:.0f} ms median ({cpu:.0f} ms CPU)"
    figure = "AMQP broker accepting, from its import"
    emit([Row("AMQP start-up", figure, value, goal="≤ 300 ms", met=up <= 300)], options)


if __name__ == "__main__":
    main()
