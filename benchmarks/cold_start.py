"""Cold start of the generated entries (AWS, Azure, GCP) vs hand-written handlers.

Each run is a fresh interpreter that imports the handler module and handles one real event
object (one order: validate it, write its receipt to a bucket), as a cold start does:

- AWS: `portabind_lambda.py` handles an SQS event (a dict); the baseline is the same logic
  by hand with boto3, pydantic (the sample's `Order` model) and Powertools' `BatchProcessor`;
- Azure: `function_app.py`'s queue function handles a `func.QueueMessage`; the baseline is a
  `func.FunctionApp` with azure-storage-blob and pydantic;
- GCP: `main.py` handles a Pub/Sub `CloudEvent`; the baseline is a functions-framework
  function with google-cloud-storage and pydantic;
- no pydantic (AWS): an app whose handler takes the `BindingEvent` and reads its JSON, against
  a minimal handler (boto3 and a loop over the records, nothing else).

The portabind side is `samples/orders` built with `portabind build`, its components pointed
at local servers started here (moto, Azurite, the GCS emulator). Runs alternate between all
handlers, each portabind handler right beside its baseline, so drift on the machine hits them
alike; the figure is the median over the rounds of the ratio of the two processes' whole wall
times (`paired_ratio`), and the medians of each side are printed beside it.

    .venv/bin/python benchmarks/cold_start.py [--runs N] [--quick] [--json]
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from _local import aws_client
from _report import Row, argument_parser, at_most, emit, interleave, medians, paired_ratio, runs

from portabind.adapters.aws import build as aws_build
from portabind.adapters.azure import build as azure_build
from portabind.adapters.gcp import build as gcp_build
from portabind.adapters.local.emulators.aws import MotoEmulator
from portabind.adapters.local.emulators.azure import AzuriteEmulator, ensure_azurite
from portabind.adapters.local.emulators.gcp import StorageEmulator
from portabind.bindings.aws import s3
from portabind.bindings.azure import blobstorage, storagequeues
from portabind.tooling.project import load_project

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "orders"
BUCKET = "cold-start-receipts"
ORDER = {"id": 1, "item": "book", "qty": 2}

MODEL = """
class Order(BaseModel):
    id: int
    item: str = ""
    qty: int = 1


def receipt(order):
    return {"order": order.id, "item": order.item, "qty": order.qty, "status": "accepted"}
"""

# The hand-written handlers' shared parts, pasted in where these names stand alone.
S3_CLIENT = """
s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["BENCH_ENDPOINT"],
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
)
"""

HANDWRITTEN_AWS = """
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
S3_CLIENT
MODEL

def record_handler(record):
    order = Order.model_validate_json(record.body)
    s3.put_object(
        Bucket=os.environ["BENCH_BUCKET"],
        Key=f"receipts/{order.id}.json",
        Body=json.dumps(receipt(order), separators=(",", ":")).encode(),
    )


def handler(event, context):
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
"""

HANDWRITTEN_AZURE = """
import json
import os

import azure.functions as func
from azure.storage.blob import BlobServiceClient
from pydantic import BaseModel

app = func.FunctionApp()
blobs = BlobServiceClient.from_connection_string(os.environ["BENCH_AZURE_CONNECTION"])
MODEL

@app.function_name(name="orders")
@app.queue_trigger(arg_name="message", queue_name="orders", connection="AzureWebJobsStorage")
def orders(message: func.QueueMessage) -> None:
    order = Order.model_validate_json(message.get_body())
    blobs.get_blob_client("receipts", f"receipts/{order.id}.json").upload_blob(
        json.dumps(receipt(order), separators=(",", ":")).encode(), overwrite=True
    )
"""

HANDWRITTEN_GCP = """
import base64
import json

import functions_framework
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from pydantic import BaseModel

bucket = storage.Client(project="orders-demo", credentials=AnonymousCredentials()).bucket(
    "orders-receipts"
)
MODEL

@functions_framework.cloud_event
def on_orders(cloud_event):
    order = Order.model_validate_json(base64.b64decode(cloud_event.data["message"]["data"]))
    bucket.blob(f"receipts/{order.id}.json").upload_from_string(
        json.dumps(receipt(order), separators=(",", ":")), content_type="application/json"
    )
"""

# The app of `samples/orders` with its handler taking the event instead of a pydantic model.
PLAIN_APP = """
from portabind import App, BindingEvent, Output

app = App()


@app.binding("orders")
def on_order(event: BindingEvent, receipts: Output) -> None:
    order = event.json()
    receipt = {"order": order["id"], "item": order["item"], "qty": order["qty"]}
    receipt["status"] = "accepted"
    receipts.invoke("create", data=receipt, metadata={"key": f"receipts/{order['id']}.json"})
"""

MINIMAL_AWS = """
import json
import os

import boto3

S3_CLIENT


def handler(event, context):
    for record in event["Records"]:
        order = json.loads(record["body"])
        receipt = {"order": order["id"], "item": order["item"], "qty": order["qty"]}
        receipt["status"] = "accepted"
        s3.put_object(
            Bucket=os.environ["BENCH_BUCKET"],
            Key=f"receipts/{order['id']}.json",
            Body=json.dumps(receipt, separators=(",", ":")).encode(),
        )
    return {"batchItemFailures": []}
"""

SQS_EVENT = {
    "Records": [
        {
            "messageId": "bench-1",
            "receiptHandle": "bench-handle",
            "body": json.dumps(ORDER),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders",
            "awsRegion": "us-east-1",
        }
    ]
}

# How each target's host hands the entry one event: code run in the child after the import.
CALL_AWS = f"""
result = entry.HANDLER(json.loads({json.dumps(SQS_EVENT)!r}), None)
assert result == {{"batchItemFailures": []}}, result
"""
CALL_AZURE = f"""
import azure.functions as func
functions = {{f.get_function_name(): f for f in entry.app.get_functions()}}
message = func.QueueMessage(id="bench-1", body={json.dumps(ORDER).encode()!r}, pop_receipt="p")
functions["HANDLER"].get_user_function()(message)
"""
PUBSUB_ATTRIBUTES = {
    "type": "google.cloud.pubsub.topic.v1.messagePublished",
    "source": "//pubsub.googleapis.com/projects/orders-demo/topics/orders",
}
PUBSUB_DATA = {
    "message": {
        "data": base64.b64encode(json.dumps(ORDER).encode()).decode(),
        "messageId": "1",
        "publishTime": "2026-01-01T00:00:00.000Z",
    },
    "subscription": "projects/orders-demo/subscriptions/orders-worker",
}
CALL_GCP = f"""
from cloudevents.http import CloudEvent
entry.HANDLER(CloudEvent({PUBSUB_ATTRIBUTES!r}, {PUBSUB_DATA!r}))
"""

# Runs in the child: times import and first event from interpreter start-up's end.
CHILD = """
import json, sys, time
start = time.perf_counter()
sys.path.insert(0, {directory!r})
import {module} as entry
imported = time.perf_counter()
{call}
handled = time.perf_counter()
print(json.dumps({{"import": imported - start, "handle": handled - imported,
                   "pydantic": "pydantic" in sys.modules}}))
"""


@dataclass(frozen=True)
class Handler:
    directory: Path
    module: str
    code: str  # the child's program

    @classmethod
    def of(cls, directory: Path, module: str, handler: str, call: str) -> Handler:
        code = CHILD.format(
            directory=str(directory), module=module, call=call.replace("HANDLER", handler)
        )
        return cls(directory, module, code)


#: Where a handler is: (directory, module, function).
Location = tuple[Path, str, str]


@dataclass(frozen=True)
class Comparison:
    """One figure: a portabind entry against its hand-written baseline, and the goal."""

    figure: str
    portabind: Handler
    baseline: Handler
    limit: float

    @classmethod
    def of(
        cls, figure: str, call: str, portabind: Location, baseline: Location, limit: float = 1.05
    ) -> Comparison:
        """Both handlers handle the event that `call` makes and hands them."""
        return cls(figure, Handler.of(*portabind, call), Handler.of(*baseline, call), limit)


def copy_components(source: Path, out: Path, overrides: Mapping[str, Mapping[str, str]]) -> Path:
    """The component files of `source` in `out`, with metadata fields replaced per component."""
    out.mkdir(parents=True)
    for path in source.glob("*.yaml"):
        document = yaml.safe_load(path.read_text())
        fields = overrides.get(document["metadata"]["name"], {})
        spec = document["spec"]
        spec["metadata"] = [m for m in spec.get("metadata", []) if m["name"] not in fields] + [
            {"name": name, "value": value} for name, value in fields.items()
        ]
        (out / path.name).write_text(yaml.safe_dump(document))
    return out


def handwritten(work: Path, name: str, source: str) -> Path:
    directory = work / name
    directory.mkdir()
    source = textwrap.dedent(source).replace("MODEL", MODEL).replace("S3_CLIENT", S3_CLIENT)
    (directory / f"{name}.py").write_text(source)
    return directory


def built(
    work: Path,
    name: str,
    build: Callable[..., object],
    components: Path,
    app: Path = SAMPLE,
) -> Path:
    out = work / name
    build(load_project(app, components), out)
    return out


def aws(work: Path, moto: MotoEmulator) -> list[Comparison]:
    aws_client("s3", moto.endpoint).create_bucket(Bucket=BUCKET)
    assert s3.binding.emulate is not None
    receipts = {"bucket": BUCKET, **s3.binding.emulate({"moto": moto.endpoint})}
    components = copy_components(
        SAMPLE / "components" / "aws", work / "aws-components", {"receipts": receipts}
    )
    plain_app = work / "plain-app"
    plain_app.mkdir()
    (plain_app / "app.py").write_text(textwrap.dedent(PLAIN_APP))
    module, handler = aws_build.ENTRY_MODULE, "handle_orders"
    return [
        Comparison.of(
            "AWS entry / hand-written (SQS record)",
            CALL_AWS,
            (built(work, "aws", aws_build.build, components), module, handler),
            (handwritten(work, "hand_aws", HANDWRITTEN_AWS), "hand_aws", "handler"),
        ),
        Comparison.of(
            "app without pydantic / minimal handler (AWS)",
            CALL_AWS,
            (built(work, "aws-plain", aws_build.build, components, plain_app), module, handler),
            (handwritten(work, "minimal_aws", MINIMAL_AWS), "minimal_aws", "handler"),
            limit=1.10,
        ),
    ]


def azure(work: Path, azurite: AzuriteEmulator) -> list[Comparison]:
    from azure.storage.blob import BlobServiceClient

    BlobServiceClient.from_connection_string(azurite.connection_string).create_container("receipts")
    suffix = f"/{azurite.account_name}"
    endpoints = {
        "azurite.queue": azurite.queue_endpoint.removesuffix(suffix),
        "azurite.blob": azurite.blob_endpoint.removesuffix(suffix),
    }
    assert blobstorage.binding.emulate is not None and storagequeues.binding.emulate is not None
    overrides = {
        "receipts": blobstorage.binding.emulate(endpoints),
        "orders": storagequeues.binding.emulate(endpoints),
    }
    components = copy_components(
        SAMPLE / "components" / "azure", work / "azure-components", overrides
    )
    return [
        Comparison.of(
            "Azure entry / hand-written (func.QueueMessage)",
            CALL_AZURE,
            (built(work, "azure", azure_build.build, components), "function_app", "orders"),
            (handwritten(work, "hand_azure", HANDWRITTEN_AZURE), "hand_azure", "orders"),
        )
    ]


def gcp(work: Path, gcs: StorageEmulator) -> list[Comparison]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="orders-demo", credentials=AnonymousCredentials())
    client.create_bucket("orders-receipts")
    components = copy_components(SAMPLE / "components" / "gcp", work / "gcp-components", {})
    return [
        Comparison.of(
            "GCP entry / hand-written (CloudEvent)",
            CALL_GCP,
            (built(work, "gcp", gcp_build.build, components), "main", "on_orders"),
            (handwritten(work, "hand_gcp", HANDWRITTEN_GCP), "hand_gcp", "on_orders"),
        )
    ]


@contextmanager
def servers() -> Iterator[tuple[MotoEmulator, AzuriteEmulator, StorageEmulator]]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    with ExitStack() as stack:
        moto = MotoEmulator().start()
        stack.callback(moto.stop)
        azurite = AzuriteEmulator(ensure_azurite()).start()
        stack.callback(azurite.stop)
        gcs = StorageEmulator().start()
        stack.callback(gcs.stop)
        # Google's clients, here and in the children, find the emulator through this.
        os.environ["STORAGE_EMULATOR_HOST"] = gcs.endpoint
        yield moto, azurite, gcs


@dataclass
class Child:
    """Runs one handler in a fresh interpreter; a call returns the whole process's wall time
    and keeps the child's own phases (import, first event) and whether it imported pydantic."""

    handler: Handler
    env: dict[str, str]
    phases: dict[str, list[float]] = field(default_factory=lambda: {"import": [], "handle": []})
    pydantic: bool = False

    def __call__(self) -> float:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", self.handler.code],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.handler.directory,
            check=False,
        )
        total = time.perf_counter() - started
        if done.returncode != 0:
            where = f"{self.handler.directory.name}/{self.handler.module}.py"
            raise SystemExit(f"{where} failed:\n{done.stderr}")
        reported = json.loads(done.stdout.strip().splitlines()[-1])
        for phase, values in self.phases.items():
            values.append(reported[phase])
        self.pydantic = reported["pydantic"]
        return total


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--runs", type=int, help="runs per handler (default 31, quick 5)")
    options = parser.parse_args()
    rounds = runs(options.runs, options, full=31, quick=5)
    with servers() as (moto, azurite, gcs), tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        comparisons = [*aws(work, moto), *azure(work, azurite), *gcp(work, gcs)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
        env.update(
            BENCH_ENDPOINT=moto.endpoint,
            BENCH_BUCKET=BUCKET,
            BENCH_AZURE_CONNECTION=azurite.connection_string,
        )
        children = {
            (comparison.figure, side): Child(handler, env)
            for comparison in comparisons
            for side, handler in (
                ("portabind", comparison.portabind),
                ("baseline", comparison.baseline),
            )
        }
        for child in children.values():  # warm the page cache and write bytecode
            Child(child.handler, env)()
        samples = interleave(rounds, {"|".join(key): child for key, child in children.items()})
        totals = medians(samples)
    print(f"{rounds} runs each, interleaved; medians in ms (python {sys.version.split()[0]})")
    print(f"{'handler':<48}{'process':>9}{'import':>9}{'1st event':>11}  pydantic")
    rows: list[Row] = []
    for comparison in comparisons:
        print(comparison.figure)
        for side in ("portabind", "baseline"):
            child = children[comparison.figure, side]
            phase = {name: median * 1000 for name, median in medians(child.phases).items()}
            print(
                f"  {side:<46}{totals[f'{comparison.figure}|{side}'] * 1000:>9.1f}"
                f"{phase['import']:>9.1f}{phase['handle']:>11.1f}"
                f"  {'yes' if child.pydantic else 'no'}"
            )
        sides = [f"{comparison.figure}|{side}" for side in ("portabind", "baseline")]
        mine, theirs = (totals[side] for side in sides)
        ratio = paired_ratio(*(samples[side] for side in sides))
        value = f"{mine * 1000:.0f} vs {theirs * 1000:.0f} ms"
        if not children[comparison.figure, "baseline"].pydantic:  # the app uses none
            imported = children[comparison.figure, "portabind"].pydantic
            value += f"; portabind {'imports' if imported else 'does not import'} pydantic"
        print(f"  ratio {ratio:.3f} (ratio of the medians {mine / theirs:.3f})")
        rows.append(at_most("cold start", comparison.figure, ratio, comparison.limit, value))
    emit(rows, options)


if __name__ == "__main__":
    main()
