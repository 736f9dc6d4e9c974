"""Latency `portabind run`'s Dapr APIs add to an output binding call.

One Redis output (`get` of a small key on the machine's Redis, 127.0.0.1:6379) called three
ways from this process, interleaved in rounds so drift on the machine hits all three alike:

- in-process: the binding's client, as a handler's `app.invoke_binding` reaches it;
- HTTP: `POST /v1.0/bindings/cache` to a `portabind run` (a process of its own, as a sidecar
  is) on one keep-alive connection, what an SDK's connection pool does;
- gRPC: `Dapr.InvokeBinding` to the same run through the stub generated from Dapr's protos
  (what `DaprClient.invoke_binding` sends, without the SDK's own wrapping).

Added latency is each API's percentile minus the in-process one, from the same run; the
figures printed last are medians over the runs. One more mode, measured alongside, has no
goal: the same gRPC call to a server that does no work (`_grpc_floor.py`, a process that
answers at once with the prepared reply), the floor the client and loopback set under any
server's figure.

    .venv/bin/python benchmarks/dapr_api_latency.py [--calls 5000] [--runs 5] [--quick] [--json]
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import redis
from _report import Row, argument_parser, emit, runs
from dapr.proto.runtime.v1.binding_pb2 import InvokeBindingRequest
from dapr.proto.runtime.v1.dapr_pb2_grpc import DaprStub

from portabind.adapters.local.emulators import free_port, wait_for_port
from portabind.events import Metadata
from portabind.runtime import Runtime
from portabind.tooling.project import load_components

if TYPE_CHECKING:
    from collections.abc import Callable

KEY = "portabind-bench-latency"
COMPONENT = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: cache
spec:
  type: bindings.redis
  version: v1
  metadata:
    - name: redisHost
      value: 127.0.0.1:6379
"""
ROUND = 250  # calls per mode before switching to the next


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def one_run(calls: int, modes: dict[str, Callable[[], bytes]]) -> dict[str, dict[str, float]]:
    """p50 and p90 in ms per mode, `calls` calls each, interleaved by rounds of ROUND."""
    samples: dict[str, list[float]] = {name: [] for name in modes}
    for call in modes.values():  # warm up connections and clients
        for _ in range(100):
            call()
    done = 0
    while done < calls:
        size = min(ROUND, calls - done)
        for name, call in modes.items():
            timings = samples[name]
            for _ in range(size):
                started = time.perf_counter()
                call()
                timings.append((time.perf_counter() - started) * 1000)
        done += size
    return {
        name: {"p50": percentile(values, 0.5), "p90": percentile(values, 0.9)}
        for name, values in samples.items()
    }


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--calls", type=int, help="calls per mode and run (5000, quick 2000)")
    parser.add_argument("--runs", type=int, help="default 5, quick 3")
    args = parser.parse_args()
    args.calls = runs(args.calls, args, full=5000, quick=2000)
    args.runs = runs(args.runs, args, full=5, quick=3)

    redis.Redis(host="127.0.0.1", port=6379).set(KEY, b'{"order": 1, "item": "tea"}')
    project = Path(tempfile.mkdtemp(prefix="pb-bench-"))
    (project / "components").mkdir()
    (project / "components" / "cache.yaml").write_text(COMPONENT)
    (project / "app.py").write_text("from portabind import App\n\napp = App()\n")
    runtime = Runtime(load_components(project / "components"))
    http_port, grpc_port = free_port(), free_port()
    sidecar = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("portabind")), "run", str(project),
            "--dapr-http-port", str(http_port), "--dapr-grpc-port", str(grpc_port),
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    floor = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_grpc_floor.py")), "floor"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert floor.stdout is not None
    floor_channel = grpc.insecure_channel(f"127.0.0.1:{int(floor.stdout.readline())}")
    floor_stub = DaprStub(floor_channel)
    wait_for_port(http_port)
    wait_for_port(grpc_port)
    connection = http.client.HTTPConnection("127.0.0.1", http_port)
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    stub = DaprStub(channel)
    client = runtime.output("cache")
    body = json.dumps({"operation": "get", "metadata": {"key": KEY}}).encode()
    headers = {"Content-Type": "application/json"}
    request = InvokeBindingRequest(name="cache", operation="get", metadata={"key": KEY})

    def in_process() -> bytes:
        return client.invoke("get", b"", Metadata({"key": KEY})).data or b""

    def over_http() -> bytes:
        connection.request("POST", "/v1.0/bindings/cache", body, headers)
        response = connection.getresponse()
        data = response.read()
        assert response.status == 200, data
        return data

    def over_grpc() -> bytes:
        return bytes(stub.InvokeBinding(request).data)

    def grpc_floor() -> bytes:
        return bytes(floor_stub.InvokeBinding(request).data)

    assert in_process() == over_http() == over_grpc()
    assert grpc_floor() == b"floor"
    modes = {"in-process": in_process, "http": over_http, "grpc": over_grpc, "floor": grpc_floor}
    floors: dict[str, list[float]] = {"p50": [], "p90": []}
    added: dict[str, dict[str, list[float]]] = {
        api: {"p50": [], "p90": []} for api in ("http", "grpc")
    }
    try:
        print(f"{args.calls} calls per mode and run, Redis get on 127.0.0.1:6379")
        print(
            "run  in-process p50/p90 ms  http added p50/p90 ms  grpc added p50/p90 ms"
            "  grpc floor p50/p90 ms"
        )
        for number in range(1, args.runs + 1):
            result = one_run(args.calls, modes)
            base = result["in-process"]
            line = f"{number:>3}  {base['p50']:.3f} / {base['p90']:.3f}"
            for api in ("http", "grpc"):
                for cut in ("p50", "p90"):
                    added[api][cut].append(result[api][cut] - base[cut])
                line += f"          {added[api]['p50'][-1]:.3f} / {added[api]['p90'][-1]:.3f}"
            for cut in ("p50", "p90"):
                floors[cut].append(result["floor"][cut])
            print(f"{line}          {floors['p50'][-1]:.3f} / {floors['p90'][-1]:.3f}")
        print("median over runs, added ms:")
        rows = []
        for api, label in (("http", "HTTP"), ("grpc", "gRPC")):
            p50, p90 = (statistics.median(added[api][cut]) for cut in ("p50", "p90"))
            print(f"  {api:<5} p50 {p50:.3f}  p90 {p90:.3f}")
            value = f"p50 {p50:.3f} / p90 {p90:.3f} ms added"
            figure = f"{label} API over an in-process Redis get"
            rows.append(
                Row("Dapr API latency", figure, value, goal="≤ 0.5 ms at p90", met=p90 <= 0.5)
            )
        p50, p90 = (statistics.median(floors[cut]) for cut in ("p50", "p90"))
        print(f"  gRPC client alone (a server that does no work): p50 {p50:.3f}  p90 {p90:.3f}")
        figure = "gRPC client alone, against a server that does no work"
        rows.append(Row("Dapr API latency", figure, f"p50 {p50:.3f} / p90 {p90:.3f} ms"))
        emit(rows, args)
    finally:
        connection.close()
        channel.close()
        floor_channel.close()
        floor.kill()
        sidecar.terminate()
        sidecar.wait(30)
        runtime.close()


if __name__ == "__main__":
    main()
