"""`secretstores.gcp.secretmanager`: Google Secret Manager. GetSecret(name) is `{name:
payload}` of version `latest`. The GCP build compiles a reference into `--set-secrets
ENV=projects/<project_id>/secrets/<name>:latest`; locally it resolves only on the platform
for now (no local Secret Manager server is wired here)."""

from __future__ import annotations

from portabind.metadata import BindingMetadata, Secret, setting
from portabind.secretstores import SecretStore


class SecretManager(BindingMetadata):
    type: str = setting("type", "service_account")
    project_id: str = setting("project_id", description="the secrets' project")
    private_key_id: str = setting("private_key_id", "")
    private_key: Secret | None = setting("private_key", None, secret=True)
    client_email: str = setting("client_email", "")
    client_id: str = setting("client_id", "")
    auth_uri: str = setting("auth_uri", "")
    token_uri: str = setting("token_uri", "")
    auth_provider_x509_cert_url: str = setting("auth_provider_x509_cert_url", "")
    client_x509_cert_url: str = setting("client_x509_cert_url", "")


store = SecretStore(SecretManager, None, platform="Google Cloud (a Secret Manager reference)")
