"""The local emulator launchers: each starts, a real SDK round trip works, stop() frees the port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from portabind.adapters.local.emulators import (
    LOCALHOST,
    EmulatorUnavailable,
    free_port,
    port_accepts,
    wait_for_port,
)
from portabind.adapters.local.emulators import azure as azure_emulator
from portabind.errors import UserError
from tests.helpers import moto_client

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from portabind.adapters.local.emulators.aws import MotoEmulator
    from portabind.adapters.local.emulators.azure import AzuriteEmulator
    from portabind.adapters.local.emulators.gcp import StorageEmulator


def assert_released(port: int) -> None:
    """Nothing listens on *port* any more, and a new server could bind it."""
    assert not port_accepts(port)
    with socket.socket() as sock:
        # SO_REUSEADDR as every server sets it: TIME_WAIT leftovers of our probes don't count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOCALHOST, port))


def port_of(url: str) -> int:
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


# -- shared helpers -----------------------------------------------------------------------------


def test_wait_for_port_returns_once_listening_and_times_out_otherwise() -> None:
    with socket.socket() as listener:
        listener.bind((LOCALHOST, 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert wait_for_port(port, timeout=2) < 2
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"did not accept connections within 0\.3 s"):
        wait_for_port(free_port(), timeout=0.3)
    assert time.monotonic() - started < 2


def test_wait_for_port_gives_up_at_once_when_the_server_died() -> None:
    started = time.monotonic()
    with pytest.raises(ChildProcessError, match="exited"):
        wait_for_port(free_port(), timeout=30, still_starting=lambda: False)
    assert time.monotonic() - started < 1


def test_importing_the_launchers_imports_no_emulator_or_sdk(tmp_path: Path) -> None:
    # Compared with what the interpreter loaded before (a *-nspkg.pth may pre-load `google`).
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import portabind.adapters.local.emulators.aws\n"
        "import portabind.adapters.local.emulators.azure\n"
        "import portabind.adapters.local.emulators.gcp\n"
        "heavy = ('moto', 'boto3', 'botocore', 'gcp_storage_emulator', 'azure', 'google')\n"
        "new = set(sys.modules) - before\n"
        "print(sorted(m for m in new if m.split('.')[0] in heavy))\n"
    )
    # cwd: not the checkout root, whose ./portabind would shadow the installed package.
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.strip() == "[]"


# -- locating Azurite ---------------------------------------------------------------------------


@pytest.fixture
def no_azurite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A world without Azurite: empty PATH, empty HOME, no repo copy. Returns the fake HOME."""
    monkeypatch.delenv("PORTABIND_AZURITE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(azure_emulator, "_REPO_ROOT", tmp_path / "repo")
    return tmp_path / "home"


def test_missing_azurite_says_exactly_how_to_install_it(no_azurite: Path) -> None:
    with pytest.raises(EmulatorUnavailable) as info:
        azure_emulator.find_azurite()
    assert "npm install --prefix ~/.cache/portabind/azurite azurite@3.35.0" in str(info.value)
    # A UserError: `portabind run --emulate` prints it and exits 2, no traceback.
    assert isinstance(info.value, UserError)


def test_azurite_is_found_in_the_user_cache(no_azurite: Path) -> None:
    binary = no_azurite / ".cache/portabind/azurite/node_modules/.bin/azurite"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert azure_emulator.find_azurite() == binary
    assert azure_emulator.ensure_azurite() == binary  # already there: no npm call


def test_explicit_azurite_path_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PORTABIND_AZURITE", str(tmp_path / "nope"))
    with pytest.raises(EmulatorUnavailable, match=r"PORTABIND_AZURITE=.*nope"):
        azure_emulator.find_azurite()
    with pytest.raises(EmulatorUnavailable, match="PORTABIND_AZURITE"):
        azure_emulator.ensure_azurite()  # an explicit wrong path is reported, not reinstalled


def test_ensure_azurite_without_npm_explains_what_to_install(no_azurite: Path) -> None:
    with pytest.raises(EmulatorUnavailable, match="npm is not on PATH"):
        azure_emulator.ensure_azurite()


# -- moto ---------------------------------------------------------------------------------------


def test_moto_s3_and_sqs_round_trip(
    moto_server: MotoEmulator, unique_name: Callable[..., str]
) -> None:
    import boto3

    assert moto_server.endpoint == f"http://127.0.0.1:{moto_server.port}"
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    s3 = session.client("s3", endpoint_url=moto_server.endpoint)
    bucket = unique_name("bucket")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="orders/1.json", Body=b'{"id": 1}')
    assert s3.get_object(Bucket=bucket, Key="orders/1.json")["Body"].read() == b'{"id": 1}'

    sqs = session.client("sqs", endpoint_url=moto_server.endpoint)
    queue_url = sqs.create_queue(QueueName=unique_name("queue"))["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="hello")
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in messages] == ["hello"]


def test_moto_reset_forgets_everything(
    moto_server: MotoEmulator, unique_name: Callable[..., str]
) -> None:
    s3 = moto_client(moto_server, "s3")
    bucket = unique_name()
    s3.create_bucket(Bucket=bucket)
    moto_server.reset()
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_moto_stop_releases_the_port(moto_server: MotoEmulator) -> None:
    from portabind.adapters.local.emulators.aws import MotoEmulator

    with MotoEmulator() as fresh:
        port = fresh.port
        assert port != moto_server.port
        assert port_accepts(port)
    assert_released(port)
    fresh.stop()  # a second stop is harmless


# -- Azurite ------------------------------------------------------------------------------------


def test_azurite_connection_details(azurite: AzuriteEmulator) -> None:
    assert azurite.account_name == "devstoreaccount1"
    assert azurite.account_key.startswith("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsu")
    assert azurite.blob_endpoint.startswith("http://127.0.0.1:")
    assert azurite.blob_endpoint.endswith("/devstoreaccount1")
    assert azurite.queue_endpoint.endswith("/devstoreaccount1")
    assert azurite.connection_string == (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={azurite.account_key};BlobEndpoint={azurite.blob_endpoint};"
        f"QueueEndpoint={azurite.queue_endpoint};TableEndpoint={azurite.table_endpoint};"
    )


def test_azurite_queue_round_trip(
    azurite: AzuriteEmulator, unique_name: Callable[..., str]
) -> None:
    from azure.storage.queue import QueueClient

    queue = QueueClient.from_connection_string(azurite.connection_string, unique_name("queue"))
    queue.create_queue()
    queue.send_message("hello azure")
    received = list(queue.receive_messages())
    assert [m.content for m in received] == ["hello azure"]
    queue.delete_message(received[0])


def test_azurite_blob_round_trip(azurite: AzuriteEmulator, unique_name: Callable[..., str]) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container(unique_name("container"))
    container.upload_blob("receipts/1.json", b'{"id": 1}', metadata={"k": "v"})
    blob = container.get_blob_client("receipts/1.json")
    assert blob.download_blob().readall() == b'{"id": 1}'
    assert blob.get_blob_properties().metadata == {"k": "v"}


def test_azurite_stop_releases_its_ports(azurite: AzuriteEmulator) -> None:
    from portabind.adapters.local.emulators.azure import AzuriteEmulator

    fresh = AzuriteEmulator().start()
    ports = [port_of(fresh.blob_endpoint), port_of(fresh.queue_endpoint)]
    pid = fresh.pid
    assert all(port_accepts(p) for p in ports)
    fresh.stop()
    for port in ports:
        assert_released(port)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the process is gone (and was reaped)
    with pytest.raises(RuntimeError, match="not running"):
        _ = fresh.blob_endpoint


# -- Cloud Storage ------------------------------------------------------------------------------


def test_gcs_round_trip(
    gcs_server: StorageEmulator,
    unique_name: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    client = storage.Client(project="test", credentials=AnonymousCredentials())
    bucket = client.create_bucket(unique_name("bucket"))
    blob = bucket.blob("receipts/1.json")
    blob.metadata = {"k": "v"}
    blob.upload_from_string(b'{"id": 1}', content_type="application/json")
    fetched = bucket.get_blob("receipts/1.json")
    assert fetched is not None
    assert fetched.download_as_bytes() == b'{"id": 1}'
    assert fetched.content_type == "application/json"
    assert fetched.metadata == {"k": "v"}


def test_gcs_stop_releases_the_port(gcs_server: StorageEmulator) -> None:
    from portabind.adapters.local.emulators.gcp import StorageEmulator

    with StorageEmulator() as fresh:
        port = fresh.port
        assert fresh.endpoint == f"http://127.0.0.1:{port}"
        assert port != gcs_server.port
        assert port_accepts(port)
    assert_released(port)
