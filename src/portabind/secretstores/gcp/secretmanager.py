"""`secretstores.gcp.secretmanager`: Google Secret Manager through google-cloud-secret-manager,
as Dapr's: GetSecret(name) is `{name: payload}` of version `latest` of
`projects/<project_id>/secrets/<name>`. Credentials: the service account the fields describe
(`private_key` and `client_email`, with the rest of the key file's fields), else Google's
default credentials.

`PORTABIND_SECRETMANAGER_EMULATOR_HOST` (host:port; a portabind variable: Google has no
Secret Manager emulator) points the client at portabind's own server
(`portabind.adapters.local.emulators.secretmanager`) over an insecure channel, without
credentials, as `PUBSUB_EMULATOR_HOST` does for Pub/Sub.

The GCP build compiles a reference into `--set-secrets
ENV=projects/<project_id>/secrets/<name>:latest` (adapters/gcp/build.py).
"""

from __future__ import annotations

from typing import Any

from portabind.errors import SecretError, UserError
from portabind.metadata import BindingMetadata, Secret, setting
from portabind.secretstores import SecretStore, StoreContext

#: host:port of portabind's Secret Manager server, when set.
EMULATOR_ENV = "PORTABIND_SECRETMANAGER_EMULATOR_HOST"
#: Seconds a read may take, retries included (the client retries UNAVAILABLE).
_TIMEOUT = 20.0


class SecretManager(BindingMetadata):
    """Dapr's fields: the service account key file's names, or Dapr's camelCase ones."""

    type: str = setting("type", "service_account")
    project_id: str = setting(
        "project_id", aliases=("projectID",), description="the secrets' project"
    )
    private_key_id: str = setting("private_key_id", "", aliases=("privateKeyID",))
    private_key: Secret | None = setting("private_key", None, aliases=("privateKey",), secret=True)
    client_email: str = setting("client_email", "", aliases=("clientEmail",))
    client_id: str = setting("client_id", "", aliases=("clientID",))
    auth_uri: str = setting("auth_uri", "", aliases=("authURI",))
    token_uri: str = setting("token_uri", "", aliases=("tokenURI",))
    auth_provider_x509_cert_url: str = setting(
        "auth_provider_x509_cert_url", "", aliases=("authProviderX509CertURL",)
    )
    client_x509_cert_url: str = setting("client_x509_cert_url", "", aliases=("clientX509CertURL",))

    def service_account(self) -> dict[str, str] | None:
        """The service account key file the fields describe, as Dapr: explicit credentials
        when `private_key_id` is set (then `type`, `private_key` and `client_email` are
        required), else None: Application Default Credentials."""
        if not self.private_key_id:
            return None
        key = self.secret("private_key")
        missing = [
            name
            for name, value in (
                ("type", self.type),
                ("private_key", key),
                ("client_email", self.client_email),
            )
            if not value
        ]
        if missing:
            raise UserError(
                f"private_key_id is set, so the store needs {', '.join(missing)} too",
                hint="give the service account key file's fields, or drop private_key_id to "
                "use Application Default Credentials",
            )
        info = {
            "type": self.type,
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "private_key": (key or "").replace("\\n", "\n"),
            "client_email": self.client_email,
            "client_id": self.client_id,
            "auth_uri": self.auth_uri,
            "token_uri": self.token_uri or "https://oauth2.googleapis.com/token",
            "auth_provider_x509_cert_url": self.auth_provider_x509_cert_url,
            "client_x509_cert_url": self.client_x509_cert_url,
        }
        return {k: v for k, v in info.items() if v}


def read(settings: SecretManager, context: StoreContext, name: str) -> dict[str, str]:
    try:  # the SDK loads only when a secret is read
        from google.api_core import exceptions
        from google.cloud import secretmanager_v1
    except ImportError:
        raise UserError(
            "secretstores.gcp.secretmanager needs the google-cloud-secret-manager package",
            hint="pip install 'portabind[gcp]'",
        ) from None
    from google.auth import exceptions as auth_exceptions

    version = f"projects/{settings.project_id}/secrets/{name}/versions/latest"
    try:
        client = _client(settings, context, secretmanager_v1)
    except auth_exceptions.DefaultCredentialsError:
        raise _platform_only(context, name, "there are no Google credentials here") from None
    try:
        response = client.access_secret_version(name=version, timeout=_TIMEOUT)
    except exceptions.NotFound:
        return {}
    except (exceptions.ServiceUnavailable, exceptions.RetryError, exceptions.DeadlineExceeded):
        raise _platform_only(context, name, "Secret Manager cannot be reached") from None
    except (exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError) as error:
        # The service's messages name the secret and the status, never a value.
        raise _failed(context, f"{type(error).__name__}: {error}") from None
    finally:
        client.transport.close()
    return {name: bytes(response.payload.data).decode("utf-8", errors="replace")}


def _client(settings: SecretManager, context: StoreContext, secretmanager_v1: Any) -> Any:
    emulator = context.environ.get(EMULATOR_ENV, "")
    if emulator:
        import grpc

        transport = secretmanager_v1.services.secret_manager_service.transports
        channel = grpc.insecure_channel(emulator)
        return secretmanager_v1.SecretManagerServiceClient(
            transport=transport.SecretManagerServiceGrpcTransport(channel=channel)
        )
    try:
        info = settings.service_account()
    except UserError as error:  # names the missing fields, never a value
        component = context.component
        raise SecretError(
            error.message, file=component.source, component=component.name, hint=error.hint
        ) from None
    if info is None:
        return secretmanager_v1.SecretManagerServiceClient()
    from google.oauth2 import service_account

    try:
        credentials = service_account.Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call]
    except (ValueError, KeyError):
        # The parser's message could quote the key: say which fields, not what is in them.
        raise _failed(
            context, "private_key and client_email do not make a valid service account key"
        ) from None
    return secretmanager_v1.SecretManagerServiceClient(credentials=credentials)


def _platform_only(context: StoreContext, name: str, why: str) -> SecretError:
    """Credentials or the service are out of reach here: the reference resolves where the
    app runs on Google Cloud (validate warns, run refuses)."""
    from portabind.secrets import PlatformOnly

    component = context.component
    return PlatformOnly(
        f"secret {name!r} is in Secret Manager, and {why}: it resolves on Google Cloud",
        file=component.source,
        component=component.name,
        hint="gcloud auth application-default login, give the store's service account fields, "
        f"or run portabind's Secret Manager server and set {EMULATOR_ENV}",
    )


def _failed(context: StoreContext, reason: str) -> SecretError:
    component = context.component
    return SecretError(
        f"Secret Manager failed: {reason}", file=component.source, component=component.name
    )


store = SecretStore(
    SecretManager,
    read,
    platform="Google Cloud (a Secret Manager reference)",
    hint=lambda settings, name: (
        f"add a version to the secret {name!r} in project {settings.project_id!r}"
    ),
)
