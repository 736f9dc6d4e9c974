"""An output binding's `invoke` against the direct SDK call on the same local server.

Two outputs, each called from this process the way a handler calls them:

- S3 on a moto server started here: `app.invoke_binding("receipts", "create", data=...,
  metadata={"key": ...})` against boto3's `put_object` with the same body and key;
- Redis on 127.0.0.1:6379: `app.invoke_binding("cache", "create", ...)` against redis-py's
  `set` of the same key and value.

The portabind side goes through the app as in a handler (the data a dict, made JSON by the
output); the SDK side makes the same JSON itself. One output at a time, each round times a
block of calls on one side, then the same block on the other; the figure is the ratio of the
medians of the time per call over the rounds.

    .venv/bin/python benchmarks/output_invoke.py [--rounds N] [--calls N] [--quick] [--json]
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import redis
from _local import aws_client, write_component
from _report import Row, argument_parser, at_most, emit, interleave, medians, runs

from portabind import App
from portabind.adapters.local.emulators.aws import MotoEmulator
from portabind.bindings.aws import s3
from portabind.runtime import Runtime
from portabind.tooling.project import load_components

if TYPE_CHECKING:
    from collections.abc import Callable

BUCKET = "bench-receipts"
REDIS = ("127.0.0.1", 6379)
RECEIPT = {"order": 1, "item": "book", "qty": 2, "status": "accepted"}


def per_call(call: Callable[[int], object], calls: int) -> Callable[[], float]:
    """A measure for `interleave`: seconds per call over a block of `calls` calls."""

    def measure() -> float:
        started = time.perf_counter()
        for n in range(calls):
            call(n)
        return (time.perf_counter() - started) / calls

    return measure


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--rounds", type=int, help="rounds per side (default 30, quick 10)")
    parser.add_argument("--calls", type=int, default=50, help="calls per block (default 50)")
    options = parser.parse_args()
    rounds = runs(options.rounds, options, full=30, quick=10)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    with MotoEmulator() as moto, tempfile.TemporaryDirectory() as temporary:
        client = aws_client("s3", moto.endpoint)
        client.create_bucket(Bucket=BUCKET)
        cache = redis.Redis(*REDIS)
        components = Path(temporary)
        assert s3.binding.emulate is not None
        receipts = {"bucket": BUCKET, **s3.binding.emulate({"moto": moto.endpoint})}
        write_component(components, "receipts", "bindings.aws.s3", receipts)
        write_component(
            components, "cache", "bindings.redis", {"redisHost": ":".join(map(str, REDIS))}
        )
        app = App()
        app.attach(Runtime(load_components(components)))

        def portabind_s3(n: int) -> object:
            key = f"bench/portabind/{n}.json"
            return app.invoke_binding("receipts", "create", data=RECEIPT, metadata={"key": key})

        def boto3_s3(n: int) -> object:
            body = json.dumps(RECEIPT).encode()
            return client.put_object(Bucket=BUCKET, Key=f"bench/boto3/{n}.json", Body=body)

        def portabind_redis(n: int) -> object:
            key = f"portabind-bench-invoke-{n}"
            return app.invoke_binding("cache", "create", data=RECEIPT, metadata={"key": key})

        def redis_py(n: int) -> object:
            return cache.set(f"portabind-bench-sdk-{n}", json.dumps(RECEIPT).encode())

        pairs = {
            "S3 on moto (create / put_object)": (portabind_s3, boto3_s3),
            "Redis (create / SET)": (portabind_redis, redis_py),
        }
        found: dict[str, dict[str, float]] = {}
        for figure, calls in pairs.items():
            # One pair at a time, so each side's block follows the other side's block of the
            # same output. Interleaved with the other pair, portabind's Redis block always ran
            # right after boto3's (moto's server threads in this process, the caches cold) and
            # paid for it: swapping the two sides turned the Redis ratio from 1.1-2.1 to 0.8-1.0.
            sides = {
                side: per_call(call, options.calls)
                for side, call in zip(("portabind", "sdk"), calls, strict=True)
            }
            for measure in sides.values():  # connections, clients and the code paths warm
                measure()
            found[figure] = medians(interleave(rounds, sides))
        cache.delete(
            *(
                f"portabind-bench-{side}-{n}"
                for side in ("invoke", "sdk")
                for n in range(options.calls)
            )
        )
    print(f"{rounds} rounds of {options.calls} calls per side, interleaved; median ms per call")
    rows: list[Row] = []
    for figure in pairs:
        mine, theirs = found[figure]["portabind"], found[figure]["sdk"]
        print(f"{figure:<36} portabind {mine * 1000:7.3f}  SDK {theirs * 1000:7.3f}  "
              f"ratio {mine / theirs:.3f}")  # fmt: skip
        value = f"{mine * 1000:.2f} vs {theirs * 1000:.2f} ms per call"
        rows.append(at_most("output invoke", f"{figure}: invoke / SDK", mine / theirs, 1.05, value))
    emit(rows, options)


if __name__ == "__main__":
    main()
