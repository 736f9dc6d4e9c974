"""`secretstores.azure.keyvault`: Azure Key Vault. GetSecret(name) is `{name: value}`. The
Azure build compiles a reference into a Key Vault reference app setting
(`@Microsoft.KeyVault(VaultName=<vaultName>;SecretName=<name>)`); locally it resolves only
on the platform for now (no local Key Vault server is wired here)."""

from __future__ import annotations

from portabind.metadata import BindingMetadata, Secret, setting
from portabind.secretstores import SecretStore

#: Key Vault DNS suffixes Dapr accepts on `vaultName` (it strips them).
SUFFIXES = (".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net")


class KeyVault(BindingMetadata):
    vault_name: str = setting("vaultName", description="the vault's name")
    azure_environment: str = setting("azureEnvironment", "AzurePublicCloud")
    azure_tenant_id: str = setting("azureTenantId", "")
    azure_client_id: str = setting("azureClientId", "")
    azure_client_secret: Secret | None = setting("azureClientSecret", None, secret=True)
    azure_certificate: Secret | None = setting("azureCertificate", None, secret=True)
    azure_certificate_file: str = setting("azureCertificateFile", "")
    azure_certificate_password: Secret | None = setting(
        "azureCertificatePassword", None, secret=True
    )

    @property
    def vault(self) -> str:
        """The bare vault name (Dapr strips `https://` and the cloud's DNS suffix)."""
        name = self.vault_name.removeprefix("https://").rstrip("/")
        for suffix in SUFFIXES:
            name = name.removesuffix(suffix)
        return name


store = SecretStore(KeyVault, None, platform="Azure (a Key Vault reference)")
