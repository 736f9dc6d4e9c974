"""`bindings.azure.signalr`: Azure SignalR Service, output only (Dapr's: components-contrib
`bindings/azure/signalr/signalr.go`).

There is no Python server SDK: the binding calls the service's REST API (api-version
2022-11-01) with httpx, authorized by an HS256 token signed with the access key (PyJWT),
whose audience is the URL called, as the service's SDKs make it. Without an access key
(`AuthType=aad` in the connection string, or no key at all) an Entra ID token for
`https://signalr.azure.com/.default` is used instead.

- `create`: POSTs the data as given (e.g. `{"target": "newOrder", "arguments": [...]}`) to
  the hub's `/:send`, or to a group's (request metadata `group`) or a user's (`user`).
- `clientNegotiate`: the data a SignalR client connects with, `{"url", "accessToken"}`: the
  client URL of the hub and a token valid 60 minutes, for user `user` when given.

The hub is request metadata `hub`, else the component's `hub`, lower-cased as the service's
SDKs do.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from portabind.binding import Binding, OutputBinding
from portabind.bindings.azure._storage import EntraMetadata
from portabind.components import REFERENCE
from portabind.errors import BindingError
from portabind.events import BindingResponse, Metadata
from portabind.metadata import Secret, field_validator, model_validator, setting

if TYPE_CHECKING:
    import httpx

API_VERSION = "2022-11-01"
SEND_TOKEN_MINUTES = 15
CLIENT_TOKEN_MINUTES = 60
ENTRA_SCOPE = "https://signalr.azure.com/.default"
#: Connection-string keys that set the Entra ID fields (Dapr passes them on as `azure<Key>`).
_ENTRA_KEYS = {
    "ClientId": "azure_client_id",
    "ClientSecret": "azure_client_secret",
    "TenantId": "azure_tenant_id",
}


def parse_connection_string(text: str) -> dict[str, str]:
    """`Endpoint=...;AccessKey=...;Version=1.0;` (or `AuthType=aad`, with `ClientId`,
    `ClientSecret`, `TenantId`) as Dapr reads it. Raises ValueError, never quoting the text
    (it holds the key)."""
    values: dict[str, str] = {}
    for part in text.strip().split(";"):
        key, equals, value = part.partition("=")
        if equals and value:
            values[key] = value
        elif part:
            raise ValueError("the connection string is invalid or malformed")
    if values.get("AuthType", "aad") != "aad":
        raise ValueError("AuthType in the connection string can only be 'aad'")
    if values.get("Version", "1.0") != "1.0":
        raise ValueError("Version in the connection string can only be '1.0'")
    if not values.get("AccessKey") and "AuthType" not in values:
        raise ValueError("the connection string has no AccessKey (nor AuthType=aad)")
    return values


class SignalRMetadata(EntraMetadata):
    binding_type = "bindings.azure.signalr"

    connection_string: Secret | None = setting(
        "connectionString",
        None,
        secret=True,
        description="Endpoint=https://<name>.service.signalr.net;AccessKey=...;Version=1.0;",
    )
    endpoint: str | None = setting(
        "endpoint", None, description="the service URL (overrides the connection string's)"
    )
    access_key: Secret | None = setting(
        "accessKey",
        None,
        secret=True,
        description="the access key (overrides the connection string's)",
    )
    hub: str | None = setting("hub", None, description="the default hub (request metadata `hub`)")

    @field_validator("connection_string")
    @classmethod
    def _well_formed(cls, value: Secret | None) -> Secret | None:
        if value is not None and value.get_secret_value() not in ("", REFERENCE):
            parse_connection_string(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _has_endpoint(self) -> SignalRMetadata:
        if not self.service_endpoint() and self.secret("connection_string") != REFERENCE:
            raise ValueError("missing endpoint in the metadata or connection string")
        return self

    def _connection(self) -> dict[str, str]:
        text = self.secret("connection_string")
        return parse_connection_string(text) if text and text != REFERENCE else {}

    def service_endpoint(self) -> str:
        """The service URL: `endpoint`, else the connection string's, without a final `/`."""
        return (self.endpoint or self._connection().get("Endpoint") or "").rstrip("/")

    def key(self) -> str | None:
        """The access key signing the tokens: `accessKey`, else the connection string's."""
        return self.secret("access_key") or self._connection().get("AccessKey") or None

    def entra(self) -> EntraMetadata:
        """The Entra ID settings, with those the connection string names."""
        given: dict[str, Any] = {
            _ENTRA_KEYS[k]: v for k, v in self._connection().items() if k in _ENTRA_KEYS
        }
        if "azure_client_secret" in given:
            given["azure_client_secret"] = Secret(given["azure_client_secret"])
        return self.model_copy(update=given)


def sign(key: str, audience: str, minutes: int, user: str = "") -> str:
    """An HS256 token for `audience` valid `minutes`, for `user` (its subject) when given."""
    import jwt

    claims: dict[str, Any] = {"aud": audience, "exp": int(time.time()) + minutes * 60}
    if user:
        claims["sub"] = user
    return jwt.encode(claims, key, algorithm="HS256")


class SignalROutput(OutputBinding[SignalRMetadata]):
    operations = ("create", "clientNegotiate")

    def __init__(self, name: str, metadata: SignalRMetadata) -> None:
        super().__init__(name, metadata)
        import httpx

        self._endpoint = metadata.service_endpoint()
        self._key = metadata.key()
        self._credential: Any = None if self._key else metadata.entra().entra_credential()
        self._client = httpx.Client(timeout=30.0, headers={"User-Agent": "portabind"})

    def _hub(self, metadata: Metadata, operation: str) -> str:
        hub = metadata.get("hub") or self.metadata.hub
        if not hub:
            raise BindingError(self.name, operation, "missing hub")
        return hub.lower()

    def _entra_token(self) -> str:
        token: str = self._credential.get_token(ENTRA_SCOPE).token
        return token

    def _post(self, operation: str, url: str, token: str, data: bytes) -> httpx.Response:
        import httpx

        try:
            response = self._client.post(
                url,
                content=data,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json; charset=utf-8",
                },
            )
        except httpx.HTTPError as error:
            raise BindingError(
                self.name, operation, f"request to azure signalr api failed: {error}"
            ) from error
        if response.status_code not in (200, 202):
            raise BindingError(
                self.name,
                operation,
                f"azure signalr failed with code {response.status_code}, content is "
                f"{response.text!r}",
            )
        return response

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        hub = self._hub(metadata, "create")
        target = f"{self._endpoint}/api/hubs/{quote(hub, safe='')}"
        if metadata.get("group"):
            target += f"/groups/{quote(metadata['group'], safe='')}"
        elif metadata.get("user"):
            target += f"/users/{quote(metadata['user'], safe='')}"
        url = f"{target}/:send?api-version={API_VERSION}"
        token = sign(self._key, url, SEND_TOKEN_MINUTES) if self._key else self._entra_token()
        self._post("create", url, token, data)
        return BindingResponse()

    def client_negotiate(self, data: bytes, metadata: Metadata) -> BindingResponse:
        hub = self._hub(metadata, "clientNegotiate")
        user = metadata.get("user", "")
        client_url = f"{self._endpoint}/client/?hub={hub}"
        if self._key:
            token = sign(self._key, client_url, CLIENT_TOKEN_MINUTES, user)
        else:
            url = f"{self._endpoint}/api/hubs/{quote(hub, safe='')}/:generateToken"
            url += f"?api-version={API_VERSION}"
            if user:
                url += f"&userId={quote(user, safe='')}"
            reply = self._post("clientNegotiate", url, self._entra_token(), b"")
            token = str(reply.json().get("token") or "")
            if not token:
                raise BindingError(
                    self.name, "clientNegotiate", "token is empty in response from Azure SignalR"
                )
        return BindingResponse.of_json({"url": client_url, "accessToken": token})

    def close(self) -> None:
        self._client.close()


binding = Binding(
    metadata=SignalRMetadata, output=SignalROutput, requires=("PyJWT", "httpx", "azure-identity")
)
