"""`bindings.redis`: Redis, output only, on redis-py (Dapr's: components-contrib
`bindings/redis/redis.go`).

Operations `create` (SET, with an optional TTL), `get` (GET, or GETDEL with request metadata
`delete: "true"`), `delete` (DEL) and `increment` (INCR, with an optional TTL). Every
operation needs request metadata `key`. A single node, a cluster (`redisType: cluster`) or a
Sentinel-managed primary (`failover: true`) are supported, with TLS and ACL users.

`useEntraID` authenticates as Azure Cache for Redis expects: an Entra ID token for
`https://redis.azure.com/.default` from azure-identity (the `azure*` fields' service principal,
else the default chain: on Azure, the managed identity) is the password, and the token's
`oid` claim the user. `useOIDC` authenticates with an OAuth2 access token instead of a
password, as Dapr does: the token comes from `oidcTokenEndpoint` by the client-credentials
grant with a `private_key_jwt` client assertion (`_oidc.py`), and every new connection sends
`AUTH <redisUsername> <token>`, or `AUTH <token>` without a username. Either way a new
connection gets the current token (renewed before it expires; a connection already open
stays authenticated, where Dapr re-AUTHs its pool), and the first token is fetched when the
component starts, so bad credentials fail there.

go-redis pool tuning that redis-py has no counterpart for (`writeTimeout` apart from
`readTimeout`, `maxConnAge`, `minIdleConns`, `idleCheckFrequency`, `idleTimeout`) is
accepted so Dapr components load unchanged, and has no effect (`no_effect`; `validate` warns).
"""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from portabind.binding import Binding, OutputBinding
from portabind.bindings import _tls
from portabind.bindings._oidc import PrivateKeyJwt, TokenError, TokenSource
from portabind.bindings.azure import EntraMetadata
from portabind.errors import BindingError, UserError
from portabind.events import NO_CONTENT, BindingResponse, Metadata
from portabind.metadata import (
    Duration,
    Secret,
    Truthy,
    field_validator,
    model_validator,
    request_ttl,
    setting,
)

if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_PORT = 6379
_POOL = "redis-py's connection pool has no such setting"


class RedisMetadata(EntraMetadata):
    binding_type = "bindings.redis"
    no_effect = {
        "writeTimeout": "redis-py has one socket timeout for reads and writes: readTimeout",
        "maxConnAge": _POOL,
        "minIdleConns": _POOL,
        "idleCheckFrequency": _POOL,
        "idleTimeout": _POOL,
    }

    redis_host: str = setting("redisHost", description="host:port; a comma list for a cluster")
    redis_port: int | None = setting("redisPort", None, description="port, if not in redisHost")
    redis_password: Secret | None = setting("redisPassword", None, secret=True)
    redis_username: str = setting("redisUsername", "", description="ACL user (Redis 6+)")
    use_entra_id: Truthy = setting(
        "useEntraID",
        False,
        aliases=("useAzureAD",),
        description="AUTH with an Entra ID token: the azure* fields' service principal, or "
        "the managed identity",
    )
    enable_tls: Truthy = setting("enableTLS", False)
    insecure_skip_tls_verify: Truthy = setting("insecureSkipTLSVerify", False)
    client_cert: str | None = setting("clientCert", None, description="PEM")
    client_key: Secret | None = setting("clientKey", None, secret=True, description="PEM")
    failover: Truthy = setting("failover", False, description="redisHost names Sentinels")
    sentinel_master_name: str | None = setting("sentinelMasterName", None)
    sentinel_username: str | None = setting("sentinelUsername", None)
    sentinel_password: Secret | None = setting("sentinelPassword", None, secret=True)
    redis_type: Literal["node", "cluster"] = setting("redisType", "node")
    redis_db: int = setting("redisDB", 0, description="ignored for a cluster")
    redis_max_retries: int = setting("redisMaxRetries", 3, description="-1: no retries")
    redis_min_retry_interval: Duration = setting(
        "redisMinRetryInterval", timedelta(milliseconds=8), description="-1: no backoff"
    )
    redis_max_retry_interval: Duration = setting(
        "redisMaxRetryInterval", timedelta(milliseconds=512), description="-1: no backoff"
    )
    dial_timeout: Duration = setting("dialTimeout", timedelta(seconds=5))
    read_timeout: Duration = setting("readTimeout", timedelta(seconds=3), description="-1: none")
    write_timeout: Duration | None = setting("writeTimeout", None)
    pool_size: int | None = setting("poolSize", None, description="default 10 per CPU")
    pool_timeout: Duration | None = setting(
        "poolTimeout", None, description="wait for a free connection; default readTimeout + 1s"
    )
    max_conn_age: Duration | None = setting("maxConnAge", None)
    min_idle_conns: int = setting("minIdleConns", 0)
    idle_check_frequency: Duration = setting("idleCheckFrequency", timedelta(minutes=1))
    idle_timeout: Duration = setting("idleTimeout", timedelta(minutes=5))
    use_oidc: Truthy = setting(
        "useOIDC", False, description="AUTH with an OAuth2 token (private_key_jwt)"
    )
    oidc_token_endpoint: str | None = setting("oidcTokenEndpoint", None)
    oidc_client_id: str | None = setting("oidcClientID", None)
    oidc_client_assertion_cert: str | None = setting(
        "oidcClientAssertionCert", None, description="PEM"
    )
    oidc_client_assertion_key: Secret | None = setting(
        "oidcClientAssertionKey", None, secret=True, description="PEM, RSA"
    )
    oidc_resource: str | None = setting("oidcResource", None)
    oidc_audience: str | None = setting("oidcAudience", None)
    oidc_scopes: str = setting("oidcScopes", "openid", description="comma-separated")
    oidc_kid: str | None = setting("oidcKid", None)
    oidc_ca_cert: str | None = setting(
        "oidcCACert", None, description="PEM: the CA of the token endpoint's certificate"
    )

    @field_validator("redis_type", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _supported(self) -> RedisMetadata:
        if self.use_entra_id and (self.redis_password or self.redis_username):
            raise ValueError(
                "useEntraID takes the user and password from the Entra ID token: drop "
                "redisUsername and redisPassword"
            )
        if self.use_entra_id and self.use_oidc:
            raise ValueError("useEntraID and useOIDC cannot both be enabled")
        if self.use_oidc:
            # Dapr's checks (components-contrib `common/component/redis/redis.go`).
            if self.redis_password:
                raise ValueError("useOIDC takes the token as the password: drop redisPassword")
            missing = [
                name
                for name, value in (
                    ("oidcTokenEndpoint", self.oidc_token_endpoint),
                    ("oidcClientID", self.oidc_client_id),
                    ("oidcClientAssertionCert", self.oidc_client_assertion_cert),
                    ("oidcClientAssertionKey", self.oidc_client_assertion_key),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"useOIDC needs {', '.join(missing)}")
        if self.failover and not self.sentinel_master_name:
            raise ValueError("failover needs sentinelMasterName, the Sentinel primary's name")
        return self


def _addresses(metadata: RedisMetadata) -> list[tuple[str, int]]:
    """`redisHost` as (host, port) pairs; `redisPort` supplies a port the host omits."""
    addresses = []
    for item in metadata.redis_host.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host:  # no port in this entry
            host, port = port, ""
        addresses.append((host, int(port or metadata.redis_port or DEFAULT_PORT)))
    return addresses


def _milliseconds(ttl: timedelta) -> int:
    """A TTL as whole milliseconds, what PX and PEXPIRE take."""
    return int(ttl.total_seconds() * 1000)


def _seconds(value: timedelta | None) -> float | None:
    """A timeout for redis-py: a negative duration (Dapr's -1) means none."""
    return None if value is None or value < timedelta(0) else value.total_seconds()


#: The scope of an Entra ID token for Azure Cache for Redis (Dapr's).
ENTRA_SCOPE = "https://redis.azure.com/.default"


def _oidc_login(metadata: RedisMetadata) -> Callable[[], tuple[str | None, str]]:
    """`useOIDC`: the current private_key_jwt access token (renewed before it expires), for
    user `redisUsername` when set, else for the one-argument `AUTH token`, as Dapr does."""
    source = TokenSource(
        PrivateKeyJwt(
            token_endpoint=metadata.oidc_token_endpoint or "",
            client_id=metadata.oidc_client_id or "",
            certificate=metadata.oidc_client_assertion_cert or "",
            key=metadata.secret("oidc_client_assertion_key") or "",
            scopes=tuple(s.strip() for s in metadata.oidc_scopes.split(",") if s.strip())
            or ("openid",),
            audience=metadata.oidc_audience,
            resource=metadata.oidc_resource,
            kid=metadata.oidc_kid,
            ca_cert=metadata.oidc_ca_cert,
        )
    )
    return lambda: (metadata.redis_username or None, source.token()[0])


def _entra_login(metadata: RedisMetadata) -> Callable[[], tuple[str | None, str]]:
    """`useEntraID`: an Entra ID access token for Azure Cache for Redis from the component's
    credential (azure-identity, which keeps it until shortly before it expires), for the
    user the token names (its `oid` claim), as Dapr does."""
    credential = metadata.entra_credential()

    def login() -> tuple[str | None, str]:
        from azure.core.exceptions import ClientAuthenticationError

        try:
            token = credential.get_token(ENTRA_SCOPE).token
        except ClientAuthenticationError as error:
            raise TokenError(f"no Entra ID token: {error.message}") from None
        claims = _jwt_claims(token)
        if not isinstance(claims.get("oid"), str):
            raise TokenError("the Entra ID token names no object ID (oid claim)")
        return claims["oid"], token

    return login


def _jwt_claims(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified: the token comes from the identity provider itself."""
    import jwt

    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise TokenError("the Entra ID token is not a JWT") from None
    return claims


def _token_credentials(name: str, login: Callable[[], tuple[str | None, str]]) -> Any:
    """A redis-py credential provider that AUTHs every new connection with `login()`'s
    current (user, token), `AUTH token` when there is no user. The first login happens now:
    as in Dapr, credentials that give no token fail the component when it starts. A
    connection already open stays authenticated, where Dapr re-AUTHs its pool."""
    from redis.credentials import CredentialProvider

    try:
        login()
    except TokenError as error:
        raise UserError(
            f"redis {name}: {error}", hint=f"check the component's {name} fields"
        ) from None

    class Token(CredentialProvider):
        def get_credentials(self) -> tuple[str] | tuple[str, str]:
            user, token = login()
            return (user, token) if user else (token,)

    return Token()


def _connection_options(metadata: RedisMetadata) -> dict[str, Any]:
    """What every redis-py connection of this component is opened with."""
    from redis.backoff import ExponentialBackoff, NoBackoff
    from redis.retry import Retry

    low = metadata.redis_min_retry_interval
    high = metadata.redis_max_retry_interval
    backoff = (
        NoBackoff()
        if low < timedelta(0) or high < timedelta(0)
        else ExponentialBackoff(cap=high.total_seconds(), base=low.total_seconds())
    )
    options: dict[str, Any] = {
        "username": metadata.redis_username or None,
        "password": metadata.secret("redis_password") or None,
        "socket_connect_timeout": _seconds(metadata.dial_timeout),
        "socket_timeout": _seconds(metadata.read_timeout),
        "retry": Retry(backoff, max(metadata.redis_max_retries, 0)),
    }
    if metadata.use_oidc or metadata.use_entra_id:
        login = _oidc_login(metadata) if metadata.use_oidc else _entra_login(metadata)
        options["credential_provider"] = _token_credentials(
            "useOIDC" if metadata.use_oidc else "useEntraID", login
        )
        del options["username"], options["password"]
    if metadata.enable_tls:
        options["ssl_cert_reqs"] = "none" if metadata.insecure_skip_tls_verify else "required"
        options["ssl_check_hostname"] = not metadata.insecure_skip_tls_verify
        client_key = metadata.secret("client_key")
        if metadata.client_cert and client_key:
            options["ssl_certfile"] = _tls.pem_file(metadata.client_cert)
            options["ssl_keyfile"] = _tls.pem_file(client_key)
    return options


class _FreeConnections:
    """The free connections of a `redis.BlockingConnectionPool` (its `queue_class`), what the
    pool needs of `queue.LifoQueue`: last in, first out (a connection is opened only when none
    is free), a thread waiting up to the pool's timeout when all are taken. LifoQueue notifies
    its conditions on every get and put, waiting threads or not, which cost a Redis output call
    about 4% next to redis-py's own `set`; this notifies only when a thread waits."""

    def __init__(self, maxsize: int) -> None:
        #: The pool reads it: the free connections, None for one not opened yet.
        self.queue: list[Any] = []
        self._maxsize = maxsize
        self._changed = threading.Condition(threading.Lock())
        self._waiting = 0

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self._changed:
            if not self.queue:
                self._waiting += 1
                try:
                    if not block or not self._changed.wait_for(lambda: self.queue, timeout):
                        from queue import Empty

                        raise Empty
                finally:
                    self._waiting -= 1
            return self.queue.pop()

    def put_nowait(self, item: Any) -> None:
        with self._changed:
            if len(self.queue) >= self._maxsize:
                from queue import Full

                raise Full
            self.queue.append(item)
            if self._waiting:
                self._changed.notify()


def connect(metadata: RedisMetadata) -> Any:
    """A redis-py client for the component: node, cluster or Sentinel primary."""
    import redis
    from redis.cluster import ClusterNode, RedisCluster
    from redis.sentinel import Sentinel

    options = _connection_options(metadata)
    addresses = _addresses(metadata)
    pool_size = metadata.pool_size or 10 * (os.cpu_count() or 1)
    if metadata.redis_type == "cluster":
        return RedisCluster(
            startup_nodes=[
                ClusterNode(host, port)  # type: ignore[no-untyped-call]
                for host, port in addresses
            ],
            ssl=metadata.enable_tls,
            max_connections=pool_size,
            **options,
        )
    if metadata.failover:
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            addresses,
            sentinel_kwargs={
                "username": metadata.sentinel_username,
                "password": metadata.secret("sentinel_password"),
                "ssl": metadata.enable_tls,
            },
            ssl=metadata.enable_tls,
            **options,
        )
        return sentinel.master_for(  # type: ignore[no-untyped-call]
            metadata.sentinel_master_name, db=metadata.redis_db
        )
    # go-redis waits up to poolTimeout for a free connection; the blocking pool does the same.
    read = _seconds(metadata.read_timeout)
    wait = _seconds(metadata.pool_timeout) if metadata.pool_timeout is not None else None
    host, port = addresses[0]
    pool = redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
        connection_class=redis.SSLConnection if metadata.enable_tls else redis.Connection,
        queue_class=_FreeConnections,
        max_connections=pool_size,
        timeout=wait if wait is not None else (read + 1 if read is not None else None),
        host=host,
        port=port,
        db=metadata.redis_db,
        **options,
    )
    return redis.Redis(connection_pool=pool)


class RedisOutput(OutputBinding[RedisMetadata]):
    operations = ("create", "get", "delete", "increment")

    def __init__(self, name: str, metadata: RedisMetadata) -> None:
        import redis

        super().__init__(name, metadata)
        self._client = connect(metadata)
        #: What a failed command raises: the server's errors, and a token refused to a new
        #: connection (useOIDC, useEntraID).
        self._errors = (redis.RedisError, TokenError)

    def _key(self, operation: str, metadata: Metadata) -> str:
        """The request's `key`, which every operation needs."""
        key = metadata.get("key")
        if not key:
            raise BindingError(
                self.name, operation, "redis binding: missing key in request metadata"
            )
        return key

    def _run(self, operation: str, *command: Any) -> Any:
        """One Redis command, as Dapr sends it, its failures turned into BindingError. The
        command goes to `execute_command` itself: redis-py's typed helpers (`set`, `incr`)
        only build the same command, but check their options on every call first, which
        costs as much as the rest of portabind's output call."""
        try:
            return self._client.execute_command(*command)
        except self._errors as error:
            raise BindingError(self.name, operation, str(error)) from error

    def _expire(self, operation: str, key: str, ttl: timedelta | None) -> None:
        """Dapr's EXPIRE after the write; a TTL of 0 (a negative duration) expires at once."""
        if ttl is not None:
            self._run(operation, "PEXPIRE", key, _milliseconds(ttl))

    def create(self, data: bytes, metadata: Metadata) -> BindingResponse:
        ttl = request_ttl(metadata)
        key = self._key("create", metadata)
        if ttl:  # one SET with PX, so the key never exists without its expiry
            self._run("create", "SET", key, data, "PX", _milliseconds(ttl))
        else:
            self._run("create", "SET", key, data)
            self._expire("create", key, ttl)
        return NO_CONTENT

    def get(self, data: bytes, metadata: Metadata) -> BindingResponse:
        # Dapr deletes only on exactly "true", not on the other truthy spellings.
        command = "GETDEL" if metadata.get("delete") == "true" else "GET"
        value = self._run("get", command, self._key("get", metadata))
        # A missing key is an empty response, not an error and not "no response" (Dapr: 200).
        return BindingResponse(bytes(value) if value is not None else b"")

    def delete(self, data: bytes, metadata: Metadata) -> BindingResponse:
        self._run("delete", "DEL", self._key("delete", metadata))
        return NO_CONTENT

    def increment(self, data: bytes, metadata: Metadata) -> BindingResponse:
        ttl = request_ttl(metadata)
        key = self._key("increment", metadata)
        self._run("increment", "INCR", key)
        self._expire("increment", key, ttl)
        return NO_CONTENT

    def close(self) -> None:
        self._client.close()


binding = Binding(metadata=RedisMetadata, output=RedisOutput)
