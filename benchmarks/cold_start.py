"""Cold start of the generated AWS Lambda entry vs a hand-written handler.

Each run is a fresh interpreter that imports the handler module and handles one SQS event
(one order: validate it, write its receipt to S3), as a Lambda cold start does. The
portabind side is `samples/orders` built with `portabind build --target aws`; the baseline
is the same logic written by hand with boto3, pydantic (the sample's `Order` model) and
Powertools' `BatchProcessor`. Both write to one moto server started here. Runs alternate
between the two so drift on the machine hits both alike.

    .venv/bin/python benchmarks/cold_start_aws.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

from portabind.adapters.aws import build
from portabind.adapters.local.emulators.aws import MotoEmulator
from portabind.tooling.project import load_project

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "orders"
BUCKET = "cold-start-receipts"

HANDWRITTEN = """
import json
import os

import boto3
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from pydantic import BaseModel

processor = BatchProcessor(event_type=EventType.SQS)
s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["BENCH_ENDPOINT"],
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
)


class Order(BaseModel):
    id: int
    item: str = ""
    qty: int = 1


def record_handler(record):
    order = Order.model_validate_json(record.body)
    receipt = {"order": order.id, "item": order.item, "qty": order.qty, "status": "accepted"}
    s3.put_object(
        Bucket=os.environ["BENCH_BUCKET"],
        Key=f"receipts/{order.id}.json",
        Body=json.dumps(receipt, separators=(",", ":")).encode(),
    )


def handler(event, context):
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
"""

EVENT = {
    "Records": [
        {
            "messageId": "bench-1",
            "receiptHandle": "bench-handle",
            "body": json.dumps({"id": 1, "item": "book", "qty": 2}),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders",
            "awsRegion": "us-east-1",
        }
    ]
}

# Runs in the child: times import and first event from interpreter start-up's end.
CHILD = """
import json, sys, time
start = time.perf_counter()
sys.path.insert(0, {directory!r})
import {module} as entry
imported = time.perf_counter()
result = entry.{handler}(json.loads({event!r}), None)
handled = time.perf_counter()
assert result == {{"batchItemFailures": []}}, result
print(json.dumps({{"import": imported - start, "handle": handled - imported}}))
"""


def prepare(work: Path, endpoint: str) -> dict[str, tuple[Path, str, str]]:
    """Build both handlers into `work`; name → (directory, module, handler)."""
    components = work / "components"
    components.mkdir()
    for source in (SAMPLE / "components" / "aws").glob("*.yaml"):
        document = yaml.safe_load(source.read_text())
        if document["metadata"]["name"] == "receipts":
            extra = {"endpoint": endpoint, "accessKey": "test", "secretKey": "test"}
            document["spec"]["metadata"] = (
                [m for m in document["spec"]["metadata"] if m["name"] != "bucket"]
                + [{"name": "bucket", "value": BUCKET}]
                + [{"name": k, "value": v} for k, v in extra.items()]
            )
        (components / source.name).write_text(yaml.safe_dump(document))
    built = work / "portabind-aws"
    build.build(load_project(SAMPLE, components), built)
    handwritten = work / "handwritten"
    handwritten.mkdir()
    (handwritten / "handwritten.py").write_text(textwrap.dedent(HANDWRITTEN))
    return {
        "portabind": (built, build.ENTRY_MODULE, "handle_orders"),
        "hand-written": (handwritten, "handwritten", "handler"),
    }


def run_once(directory: Path, module: str, handler: str, env: dict[str, str]) -> dict[str, float]:
    code = CHILD.format(
        directory=str(directory), module=module, handler=handler, event=json.dumps(EVENT)
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=directory,
        check=False,
    )
    total = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{module} failed:\n{done.stderr}")
    phases: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return {"total": total, **phases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per handler (default 15)")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    with MotoEmulator() as moto, tempfile.TemporaryDirectory() as temporary:
        import boto3

        boto3.client(
            "s3",
            endpoint_url=moto.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        ).create_bucket(Bucket=BUCKET)
        handlers = prepare(Path(temporary), moto.endpoint)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
        env.update(BENCH_ENDPOINT=moto.endpoint, BENCH_BUCKET=BUCKET)
        for target in handlers.values():  # warm the page cache and write bytecode
            run_once(*target, env)
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in handlers}
        for _ in range(args.runs):
            for name, target in handlers.items():
                samples[name].append(run_once(*target, env))
    print(f"{args.runs} runs each, interleaved; medians in ms (python {sys.version.split()[0]})")
    print(f"{'handler':<14}{'process':>10}{'import':>10}{'1st event':>11}")
    medians = {}
    for name, runs in samples.items():
        medians[name] = {k: statistics.median(r[k] for r in runs) * 1000 for k in runs[0]}
        m = medians[name]
        print(f"{name:<14}{m['total']:>10.1f}{m['import']:>10.1f}{m['handle']:>11.1f}")
    ratio = medians["portabind"]["total"] / medians["hand-written"]["total"]
    print(f"ratio portabind / hand-written (whole process): {ratio:.3f}")


if __name__ == "__main__":
    main()
