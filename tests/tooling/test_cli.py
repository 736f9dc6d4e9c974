"""The `portabind` command as a user runs it: mistakes give one clear message and exit 2.

The commands run in this process (`tests.helpers.portabind`), but for what only a process of
its own shows (its exit status with no traceback, a reader that goes away, a signal) and a
`run` that gets as far as serving the APIs: its gRPC server stays out of the test process,
as in the runner's own tests."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from portabind.adapters.local.emulators import free_port
from tests.helpers import PORTABIND, portabind, portabind_process

if TYPE_CHECKING:
    from collections.abc import Mapping

ROOT = Path(__file__).resolve().parents[2]
APP = "from portabind import App, BindingEvent\n\napp = App()\n"
QUEUE = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: orders
spec:
  type: {type}
  version: v1
  metadata:
{metadata}
"""


def project(tmp_path: Path, files: Mapping[str, str], app: str = APP) -> Path:
    (tmp_path / "app.py").write_text(app)
    (tmp_path / "components").mkdir()
    for name, text in files.items():
        (tmp_path / "components" / name).write_text(text)
    return tmp_path


def queue(type_: str = "bindings.aws.sqs", **metadata: str) -> str:
    items = metadata or {"queueName": "orders", "region": "us-east-1"}
    lines = "\n".join(f"    - name: {k}\n      value: {v}" for k, v in items.items())
    return QUEUE.format(type=type_, metadata=lines)


SECRET_PROJECT = {
    "orders.yaml": queue()
    + "    - name: accessKey\n      secretKeyRef:\n        name: PB_TEST_ACCESS_KEY\n"
    + "auth:\n  secretStore: env\n",
    "secrets.yaml": "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: env\n"
    + "spec:\n  type: secretstores.local.env\n  version: v1\n",
}


def user_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in result.stderr


def test_malformed_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    root = project(tmp_path, {"orders.yaml": "kind: Component\nmetadata: [name: orders\n"})
    result = portabind_process("validate", root, cwd=tmp_path)  # the exit status of a process
    user_error(result, "orders.yaml", "malformed YAML", "line 3")


def test_unknown_type_suggests_the_nearest(tmp_path: Path) -> None:
    app = APP + '\n\n@app.binding("orders")\ndef on_order(event: BindingEvent) -> None:\n    pass\n'
    root = project(tmp_path, {"orders.yaml": queue("bindings.aws.sqz")}, app=app)
    result = portabind("validate", root, cwd=tmp_path)
    user_error(
        result, "orders.yaml", "'orders'", "'spec.type'", "bindings.aws.sqz", "'bindings.aws.sqs'"
    )


def test_missing_required_field(tmp_path: Path) -> None:
    root = project(tmp_path, {"orders.yaml": queue(region="us-east-1")})
    result = portabind("validate", root, cwd=tmp_path)
    user_error(result, "orders.yaml", "'orders'", "'queueName'", "required")


def test_unknown_metadata_field_suggests_the_nearest(tmp_path: Path) -> None:
    root = project(tmp_path, {"orders.yaml": queue(queuName="orders", region="us-east-1")})
    result = portabind("validate", root, cwd=tmp_path)
    user_error(result, "orders.yaml", "'orders'", "'queuName'", "did you mean 'queueName'")


def test_run_refuses_a_broken_component_before_starting(tmp_path: Path) -> None:
    root = project(tmp_path, {"orders.yaml": queue(queuName="orders", region="us-east-1")})
    result = portabind("run", root, "--emulate", "--dapr-port", free_port(), cwd=tmp_path)
    user_error(result, "orders.yaml", "'queuName'")


def test_invoke_unknown_operation_lists_the_supported_ones(tmp_path: Path) -> None:
    root = project(tmp_path, {"orders.yaml": queue()})
    result = portabind(
        "invoke", "orders", "frob", "--dir", root, "--components", root / "components",
        "--dapr-port", free_port(), cwd=tmp_path,
    )  # fmt: skip
    user_error(result, "orders", "'frob'", "supported operations: create")


def test_invoke_with_no_runner_and_no_profile_says_so(tmp_path: Path) -> None:
    root = project(tmp_path, {"orders.yaml": queue()})
    port = free_port()
    result = portabind(
        "invoke", "orders", "create", "--dir", root, "--dapr-port", port, cwd=tmp_path
    )
    user_error(result, f"nothing answers on 127.0.0.1:{port}", "--emulate", "--components")


def test_handler_for_a_missing_component(tmp_path: Path) -> None:
    app = APP + '\n\n@app.binding("ordres")\ndef on_order(event: BindingEvent) -> None:\n    pass\n'
    root = project(tmp_path, {"orders.yaml": queue()}, app=app)
    result = portabind("validate", root, cwd=tmp_path)
    user_error(result, "app.py", "on_order", "'ordres'", "components there: orders")


def test_unresolvable_secret_says_which_variable_to_set(tmp_path: Path) -> None:
    root = project(tmp_path, SECRET_PROJECT)
    environ = {k: v for k, v in os.environ.items() if k != "PB_TEST_ACCESS_KEY"}
    result = portabind("validate", root, cwd=tmp_path, environ=environ)
    user_error(result, "orders.yaml", "'orders'", "'accessKey'", "set the environment variable ")
    assert "PB_TEST_ACCESS_KEY" in result.stderr


def test_secret_set_in_the_environment_validates(tmp_path: Path) -> None:
    root = project(tmp_path, SECRET_PROJECT)
    environ = {**os.environ, "PB_TEST_ACCESS_KEY": "s3cr3t-value"}
    result = portabind("validate", root, cwd=tmp_path, environ=environ)
    assert result.returncode == 0, result.stderr
    assert "s3cr3t-value" not in result.stdout + result.stderr


def test_bindings_lists_the_types(tmp_path: Path) -> None:
    result = portabind("bindings", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "bindings.aws.sqs" in result.stdout
    assert "bindings.aws.s3" in result.stdout


def test_validate_the_orders_sample(tmp_path: Path) -> None:
    sample = ROOT / "samples" / "orders"
    result = portabind(
        "validate", sample, "--components", sample / "components" / "aws", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "orders (bindings.aws.sqs)" in result.stdout


@pytest.mark.server(name="moto")  # `run --emulate` starts moto in the subprocess
def test_run_the_orders_sample_until_exit_after(tmp_path: Path) -> None:
    sample = ROOT / "samples" / "orders"
    result = portabind_process(
        "run", sample, "--components", sample / "components" / "aws", "--emulate",
        "--send", 'orders={"id": 5}', "--exit-after", "1", "--dapr-port", free_port(),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "→ receipts.create  key=receipts/5.json" in result.stdout
    assert "✓ on_order" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.server(name="moto")  # `run --emulate` starts moto in the subprocess
def test_run_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    sample = ROOT / "samples" / "orders"
    process = subprocess.Popen(
        [
            str(PORTABIND), "run", str(sample), "--components", str(sample / "components" / "aws"),
            "--emulate", "--dapr-port", str(free_port()),
        ],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "Dapr API" in line:
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopped" in out
    assert "Traceback" not in err


def test_a_reader_that_goes_away_is_not_an_error() -> None:
    # `portabind bindings | head -1`, with the reader already gone: every write fails.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [str(PORTABIND), "bindings"], stdout=write_end, stderr=subprocess.PIPE, text=True
        )
    finally:
        os.close(write_end)
    assert result.returncode == 0
    assert "Traceback" not in result.stderr


# -- `run` with Dapr's flags ------------------------------------------------------------


def components_only(tmp_path: Path) -> Path:
    """A Dapr user's project: components and no app.py (the app is another process)."""
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "orders.yaml").write_text(queue())
    return tmp_path


def test_run_with_an_app_port_and_no_app_says_so(tmp_path: Path) -> None:
    root = components_only(tmp_path)
    result = portabind_process(
        "run", root, "--app-port", free_port(), "--app-wait-seconds", "0.3",
        "--dapr-http-port", free_port(), "--dapr-grpc-port", free_port(), cwd=tmp_path,
    )  # fmt: skip
    user_error(result, "no app listens on 127.0.0.1:", "--app-port", "after 0.3 s")


def test_run_refuses_a_negative_app_wait(tmp_path: Path) -> None:
    root = components_only(tmp_path)
    result = portabind("run", root, "--app-port", free_port(), "--app-wait-seconds", "-1")
    user_error(result, "--app-wait-seconds must be 0 or more")


def test_run_against_an_http_app_with_app_protocol_grpc_says_so(tmp_path: Path) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    root = components_only(tmp_path)
    app = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    thread = threading.Thread(target=app.serve_forever, daemon=True)
    thread.start()
    try:
        result = portabind_process(
            "run", root, "--app-port", app.server_address[1], "--app-protocol", "grpc",
            "--dapr-http-port", free_port(), "--dapr-grpc-port", free_port(), cwd=tmp_path,
        )  # fmt: skip
    finally:
        app.shutdown()
        app.server_close()
    user_error(result, "does not answer Dapr's grpc app protocol", "--app-protocol http")


def test_run_against_a_grpc_app_with_app_protocol_http_says_so(tmp_path: Path) -> None:
    from dapr.ext.grpc import App

    root = components_only(tmp_path)
    app, port = App(), free_port()
    thread = threading.Thread(target=app.run, args=(port,), daemon=True)
    thread.start()
    try:
        result = portabind_process(
            "run", root, "--app-port", port, "--dapr-http-port", free_port(),
            "--dapr-grpc-port", free_port(), cwd=tmp_path,
        )  # fmt: skip
    finally:
        app.stop()
    user_error(result, "does not answer Dapr's http app protocol", "--app-protocol grpc")


def test_run_refuses_a_port_variable_that_is_not_a_port(tmp_path: Path) -> None:
    root = components_only(tmp_path)
    result = portabind("run", root, cwd=tmp_path, environ={**os.environ, "DAPR_HTTP_PORT": "http"})
    user_error(result, "DAPR_HTTP_PORT='http' is not a port")


@pytest.mark.server(name="moto")  # `run --emulate` starts moto in the subprocess
def test_run_takes_its_ports_from_daprs_variables_and_resources_path(tmp_path: Path) -> None:
    sample = ROOT / "samples" / "orders"
    http_port, grpc_port = free_port(), free_port()
    environ = {**os.environ, "DAPR_HTTP_PORT": str(http_port), "DAPR_GRPC_PORT": str(grpc_port)}
    result = portabind_process(
        "run", sample, "--resources-path", sample / "components" / "aws", "--emulate",
        "--send", 'orders={"id": 6}', "--exit-after", "1", cwd=tmp_path, environ=environ,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"Dapr API    http://127.0.0.1:{http_port}/v1.0/bindings/<name>" in result.stdout
    assert f"Dapr gRPC   127.0.0.1:{grpc_port}" in result.stdout
