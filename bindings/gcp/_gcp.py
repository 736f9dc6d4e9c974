"""What the GCP bindings share: the service-account metadata set and the one place that turns
it into credentials.

Dapr writes these fields into a credentials JSON; when `private_key_id` is empty it uses
Application Default Credentials. Dapr's gcp.pubsub names them in snake_case and gcp.bucket
in camelCase, each accepting the other as an alias; here snake_case (the credentials JSON's
own spelling) is canonical and both spellings work for both bindings.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from portabind.metadata import BindingMetadata, Secret, setting

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

#: The environment variables the Google SDKs read to talk to a local emulator; the local
#: runner sets them, and tests set them for the emulators they start.
STORAGE_EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
PUBSUB_EMULATOR_ENV = "PUBSUB_EMULATOR_HOST"


class GcpMetadata(BindingMetadata):
    """The GCP service-account fields every GCP binding accepts."""

    type: str | None = setting("type", None, description="credentials type: service_account")
    project_id: str = setting("project_id", aliases=("projectID",))
    private_key_id: Secret | None = setting(
        "private_key_id",
        None,
        aliases=("privateKeyID",),
        secret=True,
        description="empty: use Application Default Credentials",
    )
    private_key: Secret | None = setting("private_key", None, aliases=("privateKey",), secret=True)
    client_email: str | None = setting("client_email", None, aliases=("clientEmail",))
    client_id: str | None = setting("client_id", None, aliases=("clientID",))
    auth_uri: str | None = setting("auth_uri", None, aliases=("authURI",))
    token_uri: str | None = setting("token_uri", None, aliases=("tokenURI",))
    auth_provider_x509_cert_url: str | None = setting(
        "auth_provider_x509_cert_url", None, aliases=("authProviderX509CertURL",)
    )
    client_x509_cert_url: str | None = setting(
        "client_x509_cert_url", None, aliases=("clientX509CertURL",)
    )

    def service_account_info(self) -> dict[str, str] | None:
        """The credentials JSON Dapr builds from the fields, or None when `private_key_id`
        is empty (Dapr then uses Application Default Credentials)."""
        if not self.secret("private_key_id"):
            return None
        # A key kept in an environment variable or a one-line secret often carries its line
        # breaks as the two characters `\n`; a PEM never contains a backslash.
        private_key = (self.secret("private_key") or "").replace("\\n", "\n")
        info = {
            "type": self.type or "service_account",
            "project_id": self.project_id,
            "private_key_id": self.secret("private_key_id") or "",
            "private_key": private_key,
            "client_email": self.client_email or "",
            "client_id": self.client_id or "",
            "auth_uri": self.auth_uri or "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri or "https://oauth2.googleapis.com/token",
            "auth_provider_x509_cert_url": self.auth_provider_x509_cert_url or "",
            "client_x509_cert_url": self.client_x509_cert_url or "",
        }
        return info


def service_account_credentials(metadata: GcpMetadata) -> Credentials | None:
    """Credentials from the component's own key, or None when it names none."""
    info = metadata.service_account_info()
    if info is None:
        return None
    from google.oauth2 import service_account

    credentials: Credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        info
    )
    return credentials


def credentials(metadata: GcpMetadata, emulator_env: str) -> Credentials:
    """The credentials a client uses to call the service.

    Against an emulator (`emulator_env` set) they are anonymous: the emulator checks none,
    and a service-account key would make the SDK fetch a token from Google first. Otherwise
    the component's service-account key, or else Application Default Credentials.
    """
    if os.environ.get(emulator_env):
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    own = service_account_credentials(metadata)
    if own is not None:
        return own
    import google.auth

    found: Any = google.auth.default()
    default: Credentials = found[0]
    return default


def emulate_credentials(endpoints: Any) -> dict[str, str]:
    """Metadata overrides for `portabind run --emulate`: the emulators take no credentials,
    so the key fields are cleared and any secret references behind them need not resolve.
    The endpoints themselves reach the SDKs through STORAGE_EMULATOR_HOST and
    PUBSUB_EMULATOR_HOST, which the local runner sets."""
    del endpoints  # the endpoints travel in the environment, see above
    return {"private_key_id": "", "private_key": ""}
