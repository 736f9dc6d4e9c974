"""`secretstores.azure.keyvault` resolves through the real azure-keyvault-secrets and
azure-identity against portabind's Key Vault test server: the unauthenticated request and
its bearer challenge, the managed identity token, then the secret, over verified TLS."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import yaml

from portabind.errors import SecretError
from portabind.secrets import PlatformOnly, SecretResolver
from portabind.secretstores import store_for
from portabind.tooling.project import load_components
from tests.secretstores.stores import store_and_references

if TYPE_CHECKING:
    from pathlib import Path

    from portabind.components import ComponentSet
    from tests.secretstores.keyvault_server import KeyVaultServer


def components(
    directory: Path, vault_name: str, *refs: tuple[str, str], **store: str
) -> ComponentSet:
    metadata = {"vaultName": vault_name, **store}
    return store_and_references(directory, "vault", "secretstores.azure.keyvault", metadata, *refs)


def test_key_vault_resolves_through_the_sdk_challenge_and_managed_identity(
    tmp_path: Path, keyvault: KeyVaultServer
) -> None:
    keyvault.add("orders-kv", "redis-password", "kv-s3cr3t")
    keyvault.add("orders-kv", "other", "kv-other")
    loaded = components(tmp_path, "orders-kv", ("a", "redis-password"), ("b", "other"))
    before = len(keyvault.state.requests)
    resolver = SecretResolver(loaded, environ={})
    assert resolver.values(loaded.get("a"))["redisPassword"] == "kv-s3cr3t"
    assert resolver.values(loaded.get("b"))["redisPassword"] == "kv-other"
    seen = keyvault.state.requests[before:]
    # The SDK's first request carries no token and gets the challenge; the retry carries the
    # managed identity's token for the challenge's resource.
    assert seen[0].authorized is None and seen[0].path.rstrip("/") == "/secrets/redis-password"
    assert any(r.authorized and r.path.rstrip("/") == "/secrets/redis-password" for r in seen)
    assert all(r.host == "orders-kv.vault.azure.net" for r in seen)
    assert all(r.query.get("api-version") for r in seen if r.authorized)
    assert keyvault.state.token_requests[-1]["resource"] == ["https://vault.azure.net"]


def test_key_vault_takes_the_vault_s_dns_name(tmp_path: Path, keyvault: KeyVaultServer) -> None:
    keyvault.add("dns-kv", "pw", "by-dns-name")
    loaded = components(tmp_path, "https://dns-kv.vault.azure.net/", ("a", "pw"))
    assert SecretResolver(loaded, environ={}).values(loaded.get("a"))["redisPassword"] == (
        "by-dns-name"
    )


def test_a_missing_key_vault_secret_names_the_vault_not_a_value(
    tmp_path: Path, keyvault: KeyVaultServer
) -> None:
    keyvault.add("orders-kv", "present", "never-shown")
    loaded = components(tmp_path, "orders-kv", ("a", "absent"))
    with pytest.raises(SecretError, match=r"'absent'.*not found") as raised:
        SecretResolver(loaded, environ={}).values(loaded.get("a"))
    assert "orders-kv" in str(raised.value.hint) and "never-shown" not in str(raised.value)


def test_no_token_here_means_it_resolves_on_azure(
    tmp_path: Path, keyvault: KeyVaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-header")  # the identity endpoint says 403
    keyvault.add("orders-kv", "pw", "unreachable")
    loaded = components(tmp_path, "orders-kv", ("a", "pw"))
    with pytest.raises(PlatformOnly, match="no Azure credential here gave a token") as raised:
        SecretResolver(loaded, environ={}).values(loaded.get("a"))
    assert (raised.value.component, raised.value.field) == ("a", "redisPassword")


def test_a_vault_refusing_the_token_is_an_error(
    tmp_path: Path, keyvault: KeyVaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyvault.add("refusing-kv", "pw", "unreachable")
    monkeypatch.setattr(keyvault.state, "refuse_tokens", True)
    loaded = components(tmp_path, "refusing-kv", ("a", "pw"))
    with pytest.raises(
        SecretError, match=r"Key Vault https://refusing-kv\.vault\.azure\.net failed"
    ):
        SecretResolver(loaded, environ={}).values(loaded.get("a"))


@pytest.mark.parametrize(
    ("vault_name", "environment", "url"),
    [
        ("kv", "AzurePublicCloud", "https://kv.vault.azure.net"),
        ("kv", "AzureChinaCloud", "https://kv.vault.azure.cn"),
        ("kv", "AzureUSGovernmentCloud", "https://kv.vault.usgovcloudapi.net"),
        # Dapr's older form: the vault's DNS name picks the cloud, whatever azureEnvironment says
        ("https://kv.vault.azure.cn", "AzurePublicCloud", "https://kv.vault.azure.cn"),
    ],
)
def test_the_vault_url_is_dapr_s(
    tmp_path: Path, vault_name: str, environment: str, url: str
) -> None:
    document = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "vault"},
        "spec": {
            "type": "secretstores.azure.keyvault",
            "version": "v1",
            "metadata": [
                {"name": "vaultName", "value": vault_name},
                {"name": "azureEnvironment", "value": environment},
            ],
        },
    }
    (tmp_path / "components.yaml").write_text(yaml.safe_dump(document))
    store = load_components(tmp_path).get("vault")
    assert store_for(store).settings(store).vault_url == url


def test_an_unreadable_certificate_is_named_not_quoted(tmp_path: Path) -> None:
    loaded = components(
        tmp_path,
        "orders-kv",
        ("a", "pw"),
        azureTenantId="t",
        azureClientId="c",
        azureCertificate="not-a-certificate-zz9",
    )
    with pytest.raises(SecretError, match="do not make a readable certificate") as raised:
        SecretResolver(loaded, environ={}).values(loaded.get("a"))
    assert "zz9" not in str(raised.value)
