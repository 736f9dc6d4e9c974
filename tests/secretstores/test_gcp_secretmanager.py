"""`secretstores.gcp.secretmanager` resolves through the real google-cloud-secret-manager
client against portabind's own Secret Manager server
(`portabind.adapters.local.emulators.secretmanager`), which the same client fills."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import google_crc32c
import grpc
import pytest
from google.api_core import exceptions
from google.cloud import secretmanager_v1
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

from portabind.errors import SecretError
from portabind.secrets import PlatformOnly, SecretResolver
from portabind.secretstores.gcp.secretmanager import EMULATOR_ENV
from tests.secretstores.stores import store_and_references

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from portabind.adapters.local.emulators.secretmanager import SecretManagerEmulator
    from portabind.components import ComponentSet

PROJECT = "demo-project"


@pytest.fixture
def client(secretmanager_server: SecretManagerEmulator) -> Iterator[Any]:
    """The real client on the server: an insecure channel to its address."""
    channel = grpc.insecure_channel(secretmanager_server.address)
    yield secretmanager_v1.SecretManagerServiceClient(
        transport=SecretManagerServiceGrpcTransport(channel=channel)
    )
    channel.close()


def create(client: Any, secret_id: str, *values: bytes) -> str:
    parent = client.secret_path(PROJECT, secret_id)
    client.create_secret(
        parent=f"projects/{PROJECT}",
        secret_id=secret_id,
        secret={"replication": {"automatic": {}}},
    )
    for value in values:
        client.add_secret_version(parent=parent, payload={"data": value})
    return parent


def components(directory: Path, *refs: tuple[str, str], **store: str) -> ComponentSet:
    return store_and_references(directory, "gsm", "secretstores.gcp.secretmanager", store, *refs)


def test_the_server_answers_the_client_s_versions_and_checksums(
    client: Any, unique_name: Callable[..., str]
) -> None:
    secret_id = unique_name("versions")
    parent = create(client, secret_id, b"first", b"second")
    latest = client.access_secret_version(name=f"{parent}/versions/latest")
    assert latest.name == f"{parent}/versions/2" and latest.payload.data == b"second"
    assert latest.payload.data_crc32c == google_crc32c.value(b"second")
    assert client.access_secret_version(name=f"{parent}/versions/1").payload.data == b"first"
    client.disable_secret_version(name=f"{parent}/versions/2")
    assert client.access_secret_version(name=f"{parent}/versions/latest").payload.data == (b"first")
    with pytest.raises(exceptions.FailedPrecondition):
        client.access_secret_version(name=f"{parent}/versions/2")
    with pytest.raises(exceptions.InvalidArgument, match="Checksum"):
        client.add_secret_version(parent=parent, payload={"data": b"x", "data_crc32c": 1})
    with pytest.raises(exceptions.NotFound):
        client.access_secret_version(name=f"{parent}/versions/9")
    with pytest.raises(exceptions.AlreadyExists):
        create(client, secret_id)
    assert "automatic" in client.get_secret(name=parent).replication


def test_secret_manager_resolves_through_the_client(
    tmp_path: Path,
    client: Any,
    secretmanager_server: SecretManagerEmulator,
    unique_name: Callable[..., str],
) -> None:
    present, rotated = unique_name("present"), unique_name("rotated")
    create(client, present, b"gsm-s3cr3t")
    create(client, rotated, b"old", b"new")
    loaded = components(tmp_path, ("a", present), ("b", rotated), project_id=PROJECT)
    resolver = SecretResolver(loaded, environ={EMULATOR_ENV: secretmanager_server.address})
    assert resolver.values(loaded.get("a"))["redisPassword"] == "gsm-s3cr3t"
    assert resolver.values(loaded.get("b"))["redisPassword"] == "new"  # Dapr reads `latest`


def test_a_missing_secret_names_the_project_not_a_value(
    tmp_path: Path,
    client: Any,
    secretmanager_server: SecretManagerEmulator,
    unique_name: Callable[..., str],
) -> None:
    loaded = components(tmp_path, ("a", unique_name("absent")), project_id=PROJECT)
    resolver = SecretResolver(loaded, environ={EMULATOR_ENV: secretmanager_server.address})
    with pytest.raises(SecretError, match="not found") as raised:
        resolver.values(loaded.get("a"))
    assert PROJECT in str(raised.value.hint)


def test_a_bad_service_account_key_is_named_not_quoted(tmp_path: Path) -> None:
    loaded = components(
        tmp_path,
        ("a", "any"),
        project_id=PROJECT,
        private_key_id="k1",
        private_key="-----BEGIN PRIVATE KEY-----\nnot-a-key-zz9\n-----END PRIVATE KEY-----\n",
        client_email="fn@demo-project.iam.gserviceaccount.com",
    )
    with pytest.raises(SecretError, match="do not make a valid service account key") as raised:
        SecretResolver(loaded, environ={}).values(loaded.get("a"))
    assert "zz9" not in str(raised.value)


def test_a_private_key_id_needs_the_key_file_s_other_fields_as_in_dapr(tmp_path: Path) -> None:
    loaded = components(tmp_path, ("a", "any"), project_id=PROJECT, private_key_id="k1")
    with pytest.raises(SecretError, match="needs private_key, client_email too") as raised:
        SecretResolver(loaded, environ={}).values(loaded.get("a"))
    assert raised.value.component == "gsm"


def test_dapr_s_camel_case_names_work(
    tmp_path: Path,
    client: Any,
    secretmanager_server: SecretManagerEmulator,
    unique_name: Callable[..., str],
) -> None:
    secret_id = unique_name("camel")
    create(client, secret_id, b"camel-value")
    loaded = components(tmp_path, ("a", secret_id), projectID=PROJECT)
    resolver = SecretResolver(loaded, environ={EMULATOR_ENV: secretmanager_server.address})
    assert resolver.values(loaded.get("a"))["redisPassword"] == "camel-value"


def test_no_google_credentials_here_means_it_resolves_on_google_cloud(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    loaded = components(tmp_path, ("a", "pw"), project_id=PROJECT)
    with pytest.raises(PlatformOnly, match="no Google credentials here") as raised:
        SecretResolver(loaded, environ={}).values(loaded.get("a"))
    assert (raised.value.component, raised.value.field) == ("a", "redisPassword")
