"""`secretstores.local.env`: secrets from environment variables (`prefix` prepended), as
Dapr's: GetSecret(name) is `{name: $prefix+name}`; names starting `DAPR_` and
`APP_API_TOKEN` are refused."""

from __future__ import annotations

from portabind.metadata import BindingMetadata, setting
from portabind.secretstores import SecretStore, StoreContext

REFUSED = ("DAPR_", "APP_API_TOKEN")


class EnvStore(BindingMetadata):
    prefix: str = setting("prefix", "", description="prepended to each secret's name")


def read(settings: EnvStore, context: StoreContext, name: str) -> dict[str, str]:
    variable = settings.prefix + name
    if variable.startswith(REFUSED):
        return {}
    value = context.environ.get(variable)
    return {name: value} if value is not None else {}


store = SecretStore(
    EnvStore,
    read,
    hint=lambda settings, name: f"set the environment variable {settings.prefix}{name}",
)
