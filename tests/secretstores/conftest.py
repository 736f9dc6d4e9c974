"""The secret stores' local servers: portabind's own Key Vault test server
(tests/secretstores/keyvault_server.py) and Secret Manager emulator
(`portabind.adapters.local.emulators.secretmanager`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers import server_fixture

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.secretstores.keyvault_server import KeyVaultServer


@server_fixture("keyvault", scope="session")
def keyvault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyVaultServer]:
    """The Key Vault test server, its proxy and its managed identity endpoint."""
    from tests.secretstores.keyvault_server import KeyVaultServer

    with KeyVaultServer(tmp_path_factory.mktemp("keyvault")) as server:
        yield server


@pytest.fixture
def keyvault(keyvault_server: KeyVaultServer, monkeypatch: pytest.MonkeyPatch) -> KeyVaultServer:
    """The environment a function on Azure has, pointed at the test server: the managed
    identity endpoint, the proxy reaching `*.vault.azure.net`, and the test CA trusted by the
    SDK's requests transport (REQUESTS_CA_BUNDLE; verification stays on)."""
    from tests.secretstores.keyvault_server import IDENTITY_HEADER

    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "MSI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", keyvault_server.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, keyvault_server.proxy_url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(keyvault_server.ca_file))
    return keyvault_server


@server_fixture("secretmanager", scope="session")
def secretmanager_server() -> Iterator[Any]:
    """portabind's Secret Manager emulator on 127.0.0.1 (gRPC)."""
    from portabind.adapters.local.emulators.secretmanager import SecretManagerEmulator

    with SecretManagerEmulator() as server:
        yield server
