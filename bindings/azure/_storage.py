"""What the Azure bindings share: the Entra ID credential fields every one of them accepts
(`EntraMetadata`), and for the Storage bindings (blobstorage, storagequeues) the account
metadata Dapr reads for both (its keys and aliases: components-contrib
`common/authentication/azure/metadata-properties.go`), building SDK clients from it, mapping
SDK errors, and pointing the bindings at Azurite.

The SDKs (azure-storage-*, azure-identity) are imported inside the functions that need them,
so loading a component, validating or building never imports them.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from portabind.bindings.azure import ACCOUNT_KEY, ACCOUNT_NAME
from portabind.errors import BindingError, NotFound, UserError
from portabind.metadata import BindingMetadata, Secret, setting

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from azure.core.exceptions import AzureError, ResourceNotFoundError

Service = Literal["queue", "blob"]
C = TypeVar("C")
R = TypeVar("R")

ACCOUNT_NAME_ALIASES = ("storageAccount", "storageAccountName")
ENDPOINT_ALIASES = ("storageEndpoint", "storageAccountEndpoint", "queueEndpointUrl")

#: Storage DNS suffix and Entra ID authority per `azureEnvironment`.
_CLOUDS = {
    "azurepubliccloud": ("core.windows.net", "login.microsoftonline.com"),
    "azurechinacloud": ("core.chinacloudapi.cn", "login.chinacloudapi.cn"),
    "azureusgovernmentcloud": ("core.usgovcloudapi.net", "login.microsoftonline.us"),
}


class EntraMetadata(BindingMetadata):
    """The Entra ID (Azure AD) credential fields every Azure binding accepts (Dapr's
    `azauth.MetadataKeys`), and the credential they make."""

    azure_tenant_id: str | None = setting(
        "azureTenantId", None, aliases=("spnTenantId", "tenantId")
    )
    azure_client_id: str | None = setting(
        "azureClientId", None, aliases=("spnClientId", "clientId")
    )
    azure_client_secret: Secret | None = setting(
        "azureClientSecret", None, aliases=("spnClientSecret", "clientSecret"), secret=True
    )
    azure_certificate: Secret | None = setting(
        "azureCertificate", None, aliases=("spnCertificate",), secret=True
    )
    azure_certificate_file: str | None = setting(
        "azureCertificateFile", None, aliases=("spnCertificateFile",)
    )
    azure_certificate_password: Secret | None = setting(
        "azureCertificatePassword", None, aliases=("spnCertificatePassword",), secret=True
    )
    azure_environment: str = setting(
        "azureEnvironment",
        "AzurePublicCloud",
        aliases=("azureCloud",),
        description="AzurePublicCloud, AzureChinaCloud or AzureUSGovernmentCloud",
    )

    def _cloud(self) -> tuple[str, str]:
        try:
            return _CLOUDS[self.azure_environment.lower()]
        except KeyError:
            raise UserError(
                f"azureEnvironment {self.azure_environment!r} is not known",
                hint="use AzurePublicCloud, AzureChinaCloud or AzureUSGovernmentCloud",
            ) from None

    def entra_credential(self) -> Any:
        """An Entra ID credential from azure-identity: a service principal (secret or
        certificate) when its fields are set, else DefaultAzureCredential (managed identity,
        environment, CLI login)."""
        try:
            import azure.identity as identity
        except ImportError:
            raise UserError(
                f"{self.binding_type or 'this binding'} has no key, so it needs Entra ID "
                "credentials, and the azure-identity package is not installed",
                hint="pip install azure-identity, or set the binding's key (secretKeyRef) in "
                "the component",
            ) from None
        authority = self._cloud()[1]
        tenant, client = self.azure_tenant_id, self.azure_client_id
        secret = self.secret("azure_client_secret")
        if tenant and client and secret:
            return identity.ClientSecretCredential(tenant, client, secret, authority=authority)
        certificate = self.secret("azure_certificate")
        if tenant and client and (certificate or self.azure_certificate_file):
            return identity.CertificateCredential(
                tenant,
                client,
                certificate_path=self.azure_certificate_file,
                certificate_data=certificate.encode() if certificate else None,
                password=self.secret("azure_certificate_password"),
                authority=authority,
            )
        return identity.DefaultAzureCredential(
            authority=authority, managed_identity_client_id=client
        )


class StorageMetadata(EntraMetadata):
    """The storage account, and the Entra ID fields for when it has no key."""

    account_name: str | None = setting("accountName", None, aliases=ACCOUNT_NAME_ALIASES)
    account_key: Secret | None = setting(
        "accountKey",
        None,
        aliases=("accessKey", "storageAccessKey", "storageAccountKey"),
        secret=True,
        description="omit to authenticate with Entra ID (azure-identity)",
    )
    endpoint: str | None = setting("endpoint", None, aliases=ENDPOINT_ALIASES)

    def account_url(self, service: Service) -> str:
        """Dapr's service URL: `<endpoint>/<account>` with a custom endpoint (Azurite's
        path-style addressing), else `https://<account>.<service>.<cloud suffix>`."""
        if self.endpoint:
            return f"{self.endpoint.rstrip('/')}/{self.account_name}"
        return f"https://{self.account_name}.{service}.{self._cloud()[0]}"

    def credential(self) -> Any:
        """The account key when given, else an Entra ID credential (`entra_credential`)."""
        key = self.secret("account_key")
        if key:
            return {"account_name": self.account_name, "account_key": key}
        return self.entra_credential()


def service_client(
    cls: type[C],
    metadata: StorageMetadata,
    service: Service,
    *,
    connection_string: str | None = None,
    **options: Any,
) -> C:
    """An SDK service client (`QueueServiceClient`, `BlobServiceClient`) for the account:
    from the connection string when one is given, else the account URL and credential."""
    if connection_string:
        client: C = cls.from_connection_string(connection_string, **options)  # type: ignore[attr-defined]
        return client
    if not metadata.account_name:
        raise UserError(
            f"{metadata.binding_type}: accountName is required (or a connectionString)",
        )
    return cls(metadata.account_url(service), credential=metadata.credential(), **options)  # type: ignore[call-arg]


def _detail(error: AzureError) -> str:
    # The SDK's message carries the whole HTTP exchange; the first line says what went wrong.
    return (str(getattr(error, "message", None) or error).strip().splitlines() or ["error"])[0]


def is_missing(error: ResourceNotFoundError, resource: str) -> bool:
    """Whether `error` says the container or queue itself is missing (`resource`: Azure's
    error code, ContainerNotFound or QueueNotFound), not an item in it."""
    # The storage SDKs set `error_code` on the errors they raise (a `StorageErrorCode`, which
    # is a str); azure-core's own errors have none.
    return bool(getattr(error, "error_code", None) == resource)


def create_if_missing(resource: str, create: Callable[[], None] | None, call: Callable[[], R]) -> R:
    """`call`, and when it fails because `resource` (ContainerNotFound, QueueNotFound) is
    missing, `create` it (None: entity management is off) and `call` once more.

    Dapr creates the container or queue at Init. A sidecar starts once; a function starts on
    every cold start, and would pay that round trip each time for a resource that is almost
    always there. So it is created when a write first finds it missing: the same resource,
    made with the same settings, before anything is written to it."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return call()
    except ResourceNotFoundError as error:
        if create is None or not is_missing(error, resource):
            raise
    create()
    return call()


@contextmanager
def azure_errors(binding: str, operation: str, not_found: str | None = None) -> Iterator[None]:
    """Turn SDK errors into `BindingError`; a missing resource into `NotFound(not_found)`
    when the operation names one."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    try:
        yield
    except ResourceNotFoundError as error:
        if not_found is None:
            raise BindingError(binding, operation, _detail(error)) from error
        raise NotFound(binding, operation, not_found) from error
    except AzureError as error:
        raise BindingError(binding, operation, _detail(error)) from error


def emulator(
    service: Service, endpoint_field: str, *, cleared: tuple[str, ...] = ()
) -> Callable[[Mapping[str, str]], dict[str, str]]:
    """The `Binding.emulate` function of a storage binding: Azurite's development account,
    and its service endpoint (`endpoints["azurite.<service>"]`, without the account path:
    the binding appends the account as Dapr does). Fields in `cleared` (a connection string,
    which would win over the endpoint) are emptied."""

    def emulate(endpoints: Mapping[str, str]) -> dict[str, str]:
        return {
            "accountName": ACCOUNT_NAME,
            "accountKey": ACCOUNT_KEY,
            endpoint_field: endpoints[f"azurite.{service}"],
            **dict.fromkeys(cleared, ""),
        }

    return emulate
