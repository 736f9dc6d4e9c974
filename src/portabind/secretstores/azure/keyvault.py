"""`secretstores.azure.keyvault`: Azure Key Vault through azure-keyvault-secrets, as Dapr's:
GetSecret(name) is `{name: value}` of the secret's current version. The vault is Dapr's
`https://<vaultName>.<the cloud's Key Vault suffix>`; the credential is Dapr's too: the
`azure*` fields' service principal (client secret or certificate), else azure-identity's
default chain (managed identity on Azure, the environment, a CLI login).

The Azure build compiles a reference into a Key Vault reference app setting
(`@Microsoft.KeyVault(VaultName=<vaultName>;SecretName=<name>)`, adapters/azure/build.py).
"""

from __future__ import annotations

from typing import Any

from portabind.errors import SecretError, UserError
from portabind.metadata import BindingMetadata, Secret, setting
from portabind.secretstores import SecretStore, StoreContext

#: Key Vault DNS suffixes Dapr accepts on `vaultName` (it strips them).
SUFFIXES = (".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net")

#: Key Vault DNS suffix and Entra ID authority per `azureEnvironment`.
CLOUDS = {
    "azurepubliccloud": ("vault.azure.net", "login.microsoftonline.com"),
    "azurechinacloud": ("vault.azure.cn", "login.chinacloudapi.cn"),
    "azureusgovernmentcloud": ("vault.usgovcloudapi.net", "login.microsoftonline.us"),
}


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

    def cloud(self) -> tuple[str, str]:
        """(Key Vault DNS suffix, Entra ID authority) of `azureEnvironment`, or, as in Dapr,
        of the cloud whose suffix `vaultName` ends with."""
        name = self.vault_name.rstrip("/")
        for suffix, cloud in zip(SUFFIXES, CLOUDS.values(), strict=True):
            if name.endswith(suffix):
                return cloud
        try:
            return CLOUDS[self.azure_environment.lower()]
        except KeyError:
            raise UserError(
                f"azureEnvironment {self.azure_environment!r} is not known",
                hint="use AzurePublicCloud, AzureChinaCloud or AzureUSGovernmentCloud",
            ) from None

    @property
    def vault_url(self) -> str:
        """Dapr's vault URL: `https://<vault>.<the cloud's suffix>`."""
        return f"https://{self.vault}.{self.cloud()[0]}"

    def credential(self) -> Any:
        """Dapr's credential order: the service principal's client secret, its certificate,
        else the default chain (managed identity, `azureClientId` naming a user-assigned one)."""
        import azure.identity as identity

        authority = self.cloud()[1]
        tenant, client = self.azure_tenant_id, self.azure_client_id
        secret = self.secret("azure_client_secret")
        if tenant and client and secret:
            return identity.ClientSecretCredential(tenant, client, secret, authority=authority)
        certificate = self.secret("azure_certificate")
        if tenant and client and (certificate or self.azure_certificate_file):
            return identity.CertificateCredential(
                tenant,
                client,
                certificate_path=self.azure_certificate_file or None,
                certificate_data=certificate.encode() if certificate else None,
                password=self.secret("azure_certificate_password"),
                authority=authority,
            )
        return identity.DefaultAzureCredential(
            authority=authority, managed_identity_client_id=client or None
        )


def read(settings: KeyVault, context: StoreContext, name: str) -> dict[str, str]:
    try:  # the SDKs load only when a secret is read
        from azure.core.exceptions import (
            AzureError,
            ClientAuthenticationError,
            ResourceNotFoundError,
            ServiceRequestError,
        )
        from azure.keyvault.secrets import SecretClient
    except ImportError:
        raise UserError(
            "secretstores.azure.keyvault needs the azure-keyvault-secrets and azure-identity "
            "packages",
            hint="pip install 'portabind[azure]'",
        ) from None
    from portabind.secrets import PlatformOnly

    component = context.component
    try:
        credential = settings.credential()
    except (ValueError, OSError):
        # Its message could quote the certificate: name the fields, not what is in them.
        raise SecretError(
            "azureCertificate / azureCertificateFile (with azureCertificatePassword) do not "
            "make a readable certificate",
            file=component.source,
            component=component.name,
        ) from None
    explicit = bool(
        settings.azure_tenant_id
        and settings.azure_client_id
        and (
            settings.secret("azure_client_secret")
            or settings.secret("azure_certificate")
            or settings.azure_certificate_file
        )
    )
    try:
        # One connection retry: an unreachable vault (offline, no such vault) is said at once.
        with SecretClient(settings.vault_url, credential, retry_connect=1) as client:
            value = client.get_secret(name).value
    except ResourceNotFoundError:
        return {}
    except (ClientAuthenticationError, ServiceRequestError) as error:
        if isinstance(error, ClientAuthenticationError) and (
            error.response is not None or explicit
        ):
            # The vault refused the token, or Entra ID the store's own service principal.
            raise _failed(settings, context, error) from None
        # No credential here gave a token, or the vault is out of reach: it resolves where
        # the app runs on Azure (validate warns, run refuses).
        what = (
            "no Azure credential here gave a token"
            if isinstance(error, ClientAuthenticationError)
            else "the vault cannot be reached from here"
        )
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise PlatformOnly(
            f"secret {name!r} is in Key Vault {settings.vault_url}, and {what} "
            f"({type(error).__name__}: {first_line}): it resolves on Azure",
            file=component.source,
            component=component.name,
            hint="sign in (az login), give the store's azure* fields, or set "
            "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET",
        ) from None
    except (AzureError, ValueError) as error:
        raise _failed(settings, context, error) from None
    finally:
        credential.close()
    return {name: value} if value is not None else {}


def _failed(settings: KeyVault, context: StoreContext, error: Exception) -> SecretError:
    # The SDK's messages name the vault, the secret and the status, never a value.
    component = context.component
    return SecretError(
        f"Key Vault {settings.vault_url} failed: {type(error).__name__}: {error}",
        file=component.source,
        component=component.name,
    )


store = SecretStore(
    KeyVault,
    read,
    platform="Azure (a Key Vault reference)",
    hint=lambda settings, name: f"create the secret {name!r} in the Key Vault {settings.vault!r}",
)
