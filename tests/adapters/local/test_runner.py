"""`portabind run --emulate` end to end: real SQS and S3 bindings on the runner's own moto.

moto keeps its state per process, so the session's `moto_server` sees the queues and buckets
of the runner's emulator: the tests prepare queues and read results through it.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from portabind.adapters.local.emulators import free_port, wait_for_port
from portabind.adapters.local.invoke import invoke
from portabind.adapters.local.runner import RunOptions, run
from portabind.errors import SecretError
from portabind.tooling.project import load_project
from tests.helpers import moto_client

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from portabind.adapters.local.emulators.aws import MotoEmulator

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "orders"
#: Fails the first delivery of every order, then succeeds; counts both.
FLAKY_APP = """\
from collections import Counter

from portabind import App, BindingEvent

app = App()
attempts: Counter[int] = Counter()
successes: Counter[int] = Counter()


@app.binding("orders")
def on_order(event: BindingEvent) -> None:
    order = event.json()["id"]
    attempts[order] += 1
    if attempts[order] == 1:
        raise ValueError(f"first delivery of order {order} fails")
    successes[order] += 1
"""


def options(**changes: Any) -> RunOptions:
    defaults: dict[str, Any] = {
        "emulate": True,
        "sends": [],
        "exit_after": None,
        "dapr_port": free_port(),
        "app_port": None,
    }
    return RunOptions(**{**defaults, **changes})


def quick_retry_queue(moto: MotoEmulator, name: str) -> None:
    """Create the queue before the run with a 1 s visibility timeout, so that a message
    left for redelivery comes back within the test (provisioning keeps an existing queue)."""
    moto_client(moto, "sqs").create_queue(QueueName=name, Attributes={"VisibilityTimeout": "1"})


def queue_is_empty(moto: MotoEmulator, name: str) -> bool:
    sqs = moto_client(moto, "sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    counts = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return set(counts.values()) == {"0"}


@pytest.fixture
def orders_sample(tmp_path: Path, unique_name: Callable[..., str]) -> tuple[Path, str, str]:
    """samples/orders with its aws profile, the queue and bucket renamed to be unique."""
    queue, bucket = unique_name("orders"), unique_name("receipts")
    components = tmp_path / "aws"
    shutil.copytree(SAMPLE / "components" / "aws", components)
    for path in components.iterdir():
        text = path.read_text().replace("value: orders-receipts", f"value: {bucket}")
        path.write_text(text.replace("value: orders\n", f"value: {queue}\n"))
    return components, queue, bucket


def test_orders_sample_writes_one_receipt_per_order(
    orders_sample: tuple[Path, str, str],
    moto_server: MotoEmulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    components, queue, bucket = orders_sample
    project = load_project(SAMPLE, components)
    sends = [("orders", json.dumps({"id": n, "item": "tea"}).encode()) for n in (1, 2, 3)]

    assert run(project, options(sends=sends, exit_after=3)) == 0

    listed = moto_client(moto_server, "s3").list_objects_v2(Bucket=bucket)
    assert sorted(o["Key"] for o in listed["Contents"]) == [
        "receipts/1.json",
        "receipts/2.json",
        "receipts/3.json",
    ]
    receipt = moto_client(moto_server, "s3").get_object(Bucket=bucket, Key="receipts/2.json")
    assert json.loads(receipt["Body"].read()) == {
        "order": 2,
        "item": "tea",
        "qty": 1,
        "status": "accepted",
    }
    assert queue_is_empty(moto_server, queue)
    out = capsys.readouterr().out
    assert "listening   orders (bindings.aws.sqs) → on_order" in out
    assert out.count("✓ on_order") == 3
    assert "→ receipts.create  key=receipts/1.json" in out


def test_failed_delivery_is_redelivered_and_nothing_is_lost(
    tmp_path: Path,
    moto_server: MotoEmulator,
    unique_name: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
    write_component: Callable[..., Path],
) -> None:
    queue = unique_name("orders")
    quick_retry_queue(moto_server, queue)
    (tmp_path / "app.py").write_text(FLAKY_APP)
    write_component(tmp_path / "components", "orders", "bindings.aws.sqs", queueName=queue)
    project = load_project(tmp_path)
    sends = [("orders", json.dumps({"id": n}).encode()) for n in (1, 2, 3)]

    # --exit-after counts deliveries: each order fails once, then succeeds.
    assert run(project, options(sends=sends, exit_after=6)) == 0

    module = project.app.handlers["orders"].function.__globals__
    assert module["successes"] == {1: 1, 2: 1, 3: 1}
    assert module["attempts"] == {1: 2, 2: 2, 3: 2}
    assert queue_is_empty(moto_server, queue)
    out, err = capsys.readouterr()
    failure = "✗ on_order  ValueError: first delivery of order 1 fails at "
    assert f"{failure}{tmp_path / 'app.py'}:" in out
    assert "(left for redelivery)" in out
    # each failure is one console line: neither the listener's log nor moto's lands beside it
    assert out.count("first delivery of order 1") == 1
    assert err == ""


def orders_sample_runs_unchanged(profile: str) -> None:
    """samples/orders runs with the components of `profile` on their emulators: the receipt
    of a sent order can be read back through the running app's Dapr API."""
    project = load_project(SAMPLE, SAMPLE / "components" / profile)
    order = uuid.uuid4().int % 10**9
    settings = options(sends=[("orders", json.dumps({"id": order}).encode())])
    stop = threading.Event()
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(run(project, settings, stop=stop)))
    runner.start()
    try:
        wait_for_port(settings.dapr_port, timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{settings.dapr_port}") as dapr:
            deadline = time.monotonic() + 30
            while True:
                answer = dapr.post(
                    "/v1.0/bindings/receipts",
                    json={"operation": "get", "metadata": {"key": f"receipts/{order}.json"}},
                )
                if answer.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
    finally:
        stop.set()
        runner.join(60)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"order": order, "item": "", "qty": 1, "status": "accepted"}
    assert result == [0]


@pytest.mark.usefixtures("azurite")  # skips where Azurite is not installed
def test_orders_sample_runs_unchanged_on_azure() -> None:
    orders_sample_runs_unchanged("azure")


@pytest.mark.usefixtures("gcs_server", "pubsub_server")  # skip where one is not installed
def test_orders_sample_runs_unchanged_on_gcp() -> None:
    orders_sample_runs_unchanged("gcp")


def test_invoke_reaches_the_emulated_queue_of_a_running_app(
    orders_sample: tuple[Path, str, str], moto_server: MotoEmulator
) -> None:
    components, _, bucket = orders_sample
    project = load_project(SAMPLE, components)
    settings = options(exit_after=1)
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(run(project, settings)))
    runner.start()
    try:
        wait_for_port(settings.dapr_port, timeout=30)
        invoke(
            "orders",
            "create",
            data=b'{"id": 41}',
            metadata={},
            dapr_port=settings.dapr_port,
            directory=SAMPLE,
            components=components,
        )
    finally:
        runner.join(60)
    assert result == [0]
    receipt = moto_client(moto_server, "s3").get_object(Bucket=bucket, Key="receipts/41.json")
    assert json.loads(receipt["Body"].read())["order"] == 41


@pytest.mark.usefixtures("moto_server")  # skips where moto is not installed
def test_emulated_credentials_replace_unresolvable_secrets(
    tmp_path: Path,
    unique_name: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    write_component: Callable[..., Path],
) -> None:
    monkeypatch.delenv("PB_RUNNER_KEY", raising=False)
    queue = unique_name("orders")
    path = write_component(tmp_path / "components", "orders", "bindings.aws.sqs", queueName=queue)
    path.write_text(
        path.read_text()
        + "    - name: accessKey\n      secretKeyRef:\n        name: PB_RUNNER_KEY\n"
        + "auth:\n  secretStore: env\n---\n"
        + "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: env\n"
        + "spec:\n  type: secretstores.local.env\n  version: v1\n"
    )
    (tmp_path / "app.py").write_text(FLAKY_APP)
    project = load_project(tmp_path)

    with pytest.raises(SecretError, match="PB_RUNNER_KEY"):
        run(project, options(emulate=False))
    sends = [("orders", b'{"id": 1}'), ("orders", b'{"id": 1}')]
    assert run(project, options(sends=sends, exit_after=1)) == 0


class _App(BaseHTTPRequestHandler):
    """An app speaking Dapr's HTTP app protocol: refuses the first POST of each body."""

    server: _AppServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_OPTIONS(self) -> None:
        self._answer(200 if self.path == "/orders" else 404)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.posts.append((self.path, body, dict(self.headers)))
            first = sum(1 for _, seen, _ in self.server.posts if seen == body) == 1
        self._answer(500 if first else 200)


class _AppServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _App)
        self.lock = threading.Lock()
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []


@pytest.fixture
def http_app() -> Iterator[_AppServer]:
    server = _AppServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_app_port_delivery_acks_on_2xx_and_redelivers_on_500(
    tmp_path: Path,
    moto_server: MotoEmulator,
    unique_name: Callable[..., str],
    http_app: _AppServer,
    write_component: Callable[..., Path],
) -> None:
    queue = unique_name("orders")
    quick_retry_queue(moto_server, queue)
    (tmp_path / "app.py").write_text("from portabind import App\n\napp = App()\n")
    write_component(tmp_path / "components", "orders", "bindings.aws.sqs", queueName=queue)
    project = load_project(tmp_path)
    sends = [("orders", b'{"id": 1}'), ("orders", b'{"id": 2}')]

    # Four deliveries: the app answers 500 to each order's first.
    settings = options(sends=sends, exit_after=4, app_port=http_app.server_address[1])
    assert run(project, settings) == 0

    bodies = [body for _, body, _ in http_app.posts]
    assert sorted(bodies) == [b'{"id": 1}', b'{"id": 1}', b'{"id": 2}', b'{"id": 2}']
    path, _, headers = http_app.posts[0]
    assert path == "/orders"
    assert headers["Content-Type"] == "application/json"
    assert "Messageid" in headers  # Dapr's canonical header form of `messageId`
    assert queue_is_empty(moto_server, queue)


#: Ends its thread with SystemExit, which no listener treats as a handler failure.
EXITING_APP = """\
import sys

from portabind import App, BindingEvent

app = App()


@app.binding("orders")
def on_order(event: BindingEvent) -> None:
    sys.exit(3)
"""


@pytest.mark.usefixtures("moto_server")  # skips where moto is not installed
def test_a_crashed_listener_is_reported_and_fails_the_run(
    tmp_path: Path,
    unique_name: Callable[..., str],
    write_component: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = unique_name("orders")
    (tmp_path / "app.py").write_text(EXITING_APP)
    write_component(tmp_path / "components", "orders", "bindings.aws.sqs", queueName=queue)
    project = load_project(tmp_path)

    assert run(project, options(sends=[("orders", b"{}")], exit_after=1)) == 1

    out = capsys.readouterr().out
    assert "✗ listener orders crashed: SystemExit: 3" in out
    assert "stopped: listener(s) crashed: orders" in out


def test_without_emulate_the_components_own_endpoints_are_used(
    tmp_path: Path,
    moto_server: MotoEmulator,
    unique_name: Callable[..., str],
    write_component: Callable[..., Path],
) -> None:
    queue = unique_name("orders")
    quick_retry_queue(moto_server, queue)  # without --emulate nothing is provisioned
    (tmp_path / "app.py").write_text(FLAKY_APP)
    write_component(
        tmp_path / "components",
        "orders",
        "bindings.aws.sqs",
        queueName=queue,
        endpoint=moto_server.endpoint,
        accessKey="test",
        secretKey="test",
    )
    project = load_project(tmp_path)
    sends = [("orders", b'{"id": 7}')]

    # Two deliveries: the first fails.
    assert run(project, options(emulate=False, sends=sends, exit_after=2)) == 0

    assert project.app.handlers["orders"].function.__globals__["successes"] == {7: 1}
