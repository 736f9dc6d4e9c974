"""bindings.redis against the machine's Redis (127.0.0.1:6379)."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

import jwt
import pytest
import redis as redis_py

from portabind.bindings.redis import RedisMetadata, RedisOutput, binding
from portabind.errors import BindingError, UnsupportedOperation, UserError
from portabind.events import Metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import Certificates  # tests/bindings/conftest.py
    from pytest_httpserver import HTTPServer

    from tests.bindings.token_endpoint import TokenEndpoint


@pytest.fixture
def make(redis_address: str, closing: Any) -> Callable[..., RedisOutput]:
    def build(**values: Any) -> RedisOutput:
        metadata = RedisMetadata.model_validate({"redisHost": redis_address, **values})
        return closing(RedisOutput("cache", metadata))

    return build


@pytest.fixture
def raw(redis_address: str) -> Iterator[redis_py.Redis]:
    host, port = redis_address.split(":")
    client = redis_py.Redis(host=host, port=int(port))
    yield client
    client.close()


@pytest.fixture
def key(unique_name: Callable[..., str]) -> str:
    return unique_name()


def test_create_then_get_returns_the_bytes_as_sent(make: Any, key: str) -> None:
    cache = make()
    created = cache.invoke("create", b'{"id": 7}\x00\xff', Metadata({"key": key}))
    assert created.data is None  # Dapr answers 204: no response
    got = cache.invoke("get", b"", Metadata({"key": key}))
    assert got.data == b'{"id": 7}\x00\xff'
    assert dict(got.metadata) == {}


def test_get_of_a_missing_key_is_an_empty_response_not_none(make: Any, key: str) -> None:
    assert make().invoke("get", b"", Metadata({"key": key})).data == b""


def test_get_with_delete_true_takes_the_value(make: Any, key: str, raw: Any) -> None:
    cache = make()
    cache.invoke("create", b"once", Metadata({"key": key}))
    # Dapr deletes only on exactly "true"; other truthy spellings read without deleting.
    assert cache.invoke("get", b"", Metadata({"key": key, "delete": "yes"})).data == b"once"
    assert raw.exists(key) == 1
    assert cache.invoke("get", b"", Metadata({"key": key, "delete": "true"})).data == b"once"
    assert raw.exists(key) == 0


def test_delete_removes_the_key_and_tolerates_a_missing_one(make: Any, key: str, raw: Any) -> None:
    cache = make()
    cache.invoke("create", b"x", Metadata({"key": key}))
    assert cache.invoke("delete", b"", Metadata({"key": key})).data is None
    assert raw.exists(key) == 0
    cache.invoke("delete", b"", Metadata({"key": key}))


def test_increment_counts_from_zero(make: Any, key: str) -> None:
    cache = make()
    for _ in range(3):
        assert cache.invoke("increment", b"", Metadata({"key": key})).data is None
    assert cache.invoke("get", b"", Metadata({"key": key})).data == b"3"


def test_create_ttl_in_seconds_sets_the_expiry(make: Any, key: str, raw: Any) -> None:
    make().invoke("create", b"v", Metadata({"key": key, "ttlInSeconds": "100"}))
    assert 99_000 < raw.pttl(key) <= 100_000


def test_increment_ttl_takes_a_go_duration(make: Any, key: str, raw: Any) -> None:
    make().invoke("increment", b"", Metadata({"key": key, "TTL": "2m"}))
    assert 119_000 < raw.pttl(key) <= 120_000
    assert raw.get(key) == b"1"


def test_create_without_ttl_keeps_the_key(make: Any, key: str, raw: Any) -> None:
    make().invoke("create", b"v", Metadata({"key": key}))
    assert raw.pttl(key) == -1


def test_a_negative_go_duration_expires_at_once(make: Any, key: str, raw: Any) -> None:
    make().invoke("create", b"v", Metadata({"key": key, "ttl": "-5s"}))
    assert raw.exists(key) == 0


def test_a_non_positive_integer_ttl_is_refused(make: Any, key: str, raw: Any) -> None:
    with pytest.raises(UserError, match="greater than 0"):
        make().invoke("create", b"v", Metadata({"key": key, "ttlInSeconds": "-1"}))
    assert raw.exists(key) == 0


@pytest.mark.parametrize("operation", ["create", "get", "delete", "increment"])
def test_every_operation_needs_a_key(make: Any, operation: str) -> None:
    with pytest.raises(BindingError, match="missing key in request metadata"):
        make().invoke(operation, b"v", Metadata({}))


def test_an_operation_redis_lacks_is_refused(make: Any) -> None:
    with pytest.raises(UnsupportedOperation, match="create, get, delete, increment"):
        make().invoke("list", b"", Metadata({"key": "k"}))


def test_redis_db_selects_the_database(make: Any, key: str, redis_address: str) -> None:
    make(redisDB="3").invoke("create", b"in three", Metadata({"key": key}))
    host, port = redis_address.split(":")
    db3 = redis_py.Redis(host=host, port=int(port), db=3)
    try:
        assert db3.get(key) == b"in three"
    finally:
        db3.delete(key)
        db3.close()


def test_redis_port_completes_a_host_without_one(make: Any, key: str, redis_address: str) -> None:
    host, port = redis_address.split(":")
    cache = make(redisHost=host, redisPort=port)
    cache.invoke("create", b"v", Metadata({"key": key}))
    assert cache.invoke("get", b"", Metadata({"key": key})).data == b"v"


def test_the_acl_user_and_password_are_sent(make: Any, key: str) -> None:
    # The test server has no such ACL user: its refusal proves both are sent.
    cache = make(redisUsername="nobody", redisPassword="not-the-password")
    with pytest.raises(BindingError, match="username-password"):
        cache.invoke("create", b"v", Metadata({"key": key}))


def test_an_unreachable_server_is_a_binding_error(make: Any, key: str) -> None:
    cache = make(redisHost="127.0.0.1:1", redisMaxRetries="-1", dialTimeout="1s")
    with pytest.raises(BindingError, match="create"):
        cache.invoke("create", b"v", Metadata({"key": key}))


def test_a_call_waits_for_a_free_connection_up_to_the_pool_timeout(
    make: Any, key: str, raw: Any
) -> None:
    # go-redis' pool: with all poolSize connections taken, a call waits for one to come free
    # (threads calling the output), and fails once poolTimeout has passed.
    cache = make(poolSize="1", poolTimeout="500ms")
    pool = cache._client.connection_pool
    taken = pool.get_connection()
    started = time.monotonic()
    with pytest.raises(BindingError, match="No connection available"):
        cache.invoke("create", b"late", Metadata({"key": key}))
    assert time.monotonic() - started >= 0.5
    waiter = threading.Thread(
        target=cache.invoke, args=("create", b"waited", Metadata({"key": key}))
    )
    waiter.start()
    time.sleep(0.1)
    assert waiter.is_alive()  # still waiting for the one connection
    pool.release(taken)
    waiter.join(timeout=5)
    assert raw.get(key) == b"waited"


def test_metadata_follows_dapr_names_and_rejects_what_cannot_work() -> None:
    model = binding.metadata
    parsed = model.model_validate(
        {"redishost": "h:1", "redisType": "Cluster", "readTimeout": "-1", "useAzureAD": "false"}
    )
    assert parsed.redis_type == "cluster"
    assert parsed.redis_max_retries == 3
    assert model.model_validate({"redisHost": "h:1", "useAzureAD": "true"}).use_entra_id
    with pytest.raises(ValueError, match="sentinelMasterName"):
        model.model_validate({"redisHost": "h:1", "failover": "true"})
    assert binding.directions == frozenset({"output"})


def test_failover_finds_the_primary_through_sentinel(
    make: Any, key: str, raw: Any, redis_sentinel: str
) -> None:
    cache = make(redisHost=redis_sentinel, failover="true", sentinelMasterName="primary")
    cache.invoke("create", b"via sentinel", Metadata({"key": key, "ttl": "30s"}))
    assert raw.get(key) == b"via sentinel"  # written to the primary the Sentinel names
    assert cache.invoke("get", b"", Metadata({"key": key, "delete": "true"})).data == (
        b"via sentinel"
    )


def test_failover_with_an_unknown_primary_name_is_a_binding_error(
    make: Any, key: str, redis_sentinel: str
) -> None:
    cache = make(redisHost=redis_sentinel, failover="true", sentinelMasterName="nobody")
    with pytest.raises(BindingError, match="nobody"):
        cache.invoke("create", b"v", Metadata({"key": key}))


def test_cluster_spreads_keys_over_the_nodes(make: Any, redis_cluster: str) -> None:
    cache = make(redisHost=redis_cluster, redisType="cluster")
    keys = [f"pb-cluster-{index}" for index in range(20)]  # hash to several slots
    for index, key in enumerate(keys):
        cache.invoke("create", str(index).encode(), Metadata({"key": key}))
        cache.invoke("increment", b"", Metadata({"key": f"{key}-n", "ttlInSeconds": "60"}))
    assert [cache.invoke("get", b"", Metadata({"key": k})).data for k in keys] == [
        str(i).encode() for i in range(20)
    ]
    sizes = []
    for address in redis_cluster.split(","):
        host, port = address.split(":")
        node = redis_py.Redis(host=host, port=int(port))
        sizes.append(node.dbsize())
        node.close()
    assert sum(sizes) == 40
    assert sum(1 for size in sizes if size) > 1  # a real cluster: the keys are spread


def test_tls_with_a_client_certificate(
    make: Any, key: str, redis_tls_address: str, certificates: Certificates
) -> None:
    secure = {
        "redisHost": redis_tls_address,
        "enableTLS": "true",
        "clientCert": certificates.pem("client.pem"),
        "clientKey": certificates.pem("client.key"),
    }
    # redis has no caCert field: the test CA is unknown, so only skipping verification works.
    cache = make(**secure, insecureSkipTLSVerify="true")
    cache.invoke("create", b"over tls", Metadata({"key": key}))
    assert cache.invoke("get", b"", Metadata({"key": key})).data == b"over tls"
    with pytest.raises(BindingError, match=r"(?i)certificate"):
        make(**secure, redisMaxRetries="-1").invoke("get", b"", Metadata({"key": key}))
    without_certificate = make(
        redisHost=redis_tls_address,
        enableTLS="true",
        insecureSkipTLSVerify="true",
        redisMaxRetries="-1",
    )
    with pytest.raises(BindingError):
        without_certificate.invoke("get", b"", Metadata({"key": key}))


@pytest.fixture
def acl(redis_acl_address: str) -> Iterator[redis_py.Redis]:
    """The private redis-server's admin connection; `svc` and `default` are off again after."""
    host, port = redis_acl_address.split(":")
    admin = redis_py.Redis(host=host, port=int(port), username="admin", password="admin-pass")
    yield admin
    admin.execute_command("ACL", "SETUSER", "svc", "off", "resetpass")
    admin.execute_command("ACL", "SETUSER", "default", "off", "resetpass")
    admin.close()


def _oidc(address: str, endpoint: TokenEndpoint, ca: str, **values: str) -> RedisMetadata:
    return RedisMetadata.model_validate(
        {
            "redisHost": address,
            "useOIDC": "true",
            "oidcTokenEndpoint": endpoint.url,
            "oidcClientID": endpoint.client_id,
            "oidcClientAssertionCert": endpoint.certificate,
            "oidcClientAssertionKey": endpoint.key,
            "oidcScopes": "openid,redis",
            "oidcCACert": ca,
            **values,
        }
    )


@pytest.mark.parametrize(
    ("username", "acl_user"),
    [("svc", "svc"), (None, "default")],  # AUTH user token, or the one-argument AUTH token
)
def test_use_oidc_auths_with_the_identity_providers_token(
    redis_acl_address: str,
    acl: redis_py.Redis,
    token_endpoint: TokenEndpoint,
    certificates: Certificates,
    closing: Any,
    key: str,
    username: str | None,
    acl_user: str,
) -> None:
    user = {"redisUsername": username} if username else {}
    metadata = _oidc(redis_acl_address, token_endpoint, certificates.pem("ca.pem"), **user)
    cache = closing(RedisOutput("cache", metadata))
    (token,) = token_endpoint.issued  # fetched when the component starts, as in Dapr
    assert token_endpoint.requests[0]["scope"] == "openid redis"
    # The server trusts the identity provider's token.
    acl.execute_command("ACL", "SETUSER", acl_user, "on", f">{token}", "~*", "+@all")
    cache.invoke("create", b"v", Metadata({"key": key}))
    assert acl.get(key) == b"v"
    assert f"user={acl_user}".encode() in acl.execute_command("CLIENT", "LIST")


def test_use_oidc_with_a_token_the_server_does_not_know_fails_the_call(
    redis_acl_address: str,
    token_endpoint: TokenEndpoint,
    certificates: Certificates,
    closing: Any,
    key: str,
) -> None:
    metadata = _oidc(
        redis_acl_address, token_endpoint, certificates.pem("ca.pem"), redisUsername="svc"
    )
    cache = closing(RedisOutput("cache", metadata))
    with pytest.raises(BindingError) as raised:
        cache.invoke("get", b"", Metadata({"key": key}))
    assert token_endpoint.issued[0] not in str(raised.value)


def test_use_oidc_refused_by_the_identity_provider_fails_at_start(
    redis_acl_address: str, token_endpoint: TokenEndpoint, certificates: Certificates
) -> None:
    metadata = _oidc(redis_acl_address, token_endpoint, certificates.pem("ca.pem"))
    metadata = metadata.model_copy(update={"oidc_client_id": "someone-else"})
    with pytest.raises(UserError, match="returned 401"):
        RedisOutput("cache", metadata)


def test_use_oidc_names_what_it_misses_and_refuses_a_password() -> None:
    with pytest.raises(ValueError, match="oidcTokenEndpoint, oidcClientID"):
        RedisMetadata.model_validate({"redisHost": "h", "useOIDC": "true"})
    with pytest.raises(ValueError, match="redisPassword"):
        RedisMetadata.model_validate({"redisHost": "h", "useOIDC": "true", "redisPassword": "p"})


@pytest.fixture
def managed_identity(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """An App Service managed identity endpoint (IDENTITY_ENDPOINT, IDENTITY_HEADER), the
    one azure-identity's default chain asks on Azure Functions: it checks the header and the
    resource and issues an Entra-shaped JWT for object ID `oid-svc`. Yields the tokens issued."""
    issued: list[str] = []

    def token(request: Any) -> Any:
        from werkzeug import Response

        if request.headers.get("X-IDENTITY-HEADER") != "identity-header-secret":
            return Response("forbidden", 403)
        if request.args.get("resource") != "https://redis.azure.com":
            return Response("wrong resource", 400)
        claims = {"oid": "oid-svc", "aud": "https://redis.azure.com", "n": len(issued)}
        issued.append(jwt.encode(claims, "issuer-signing-key-of-32-bytes!!", algorithm="HS256"))
        body = {"access_token": issued[-1], "expires_on": str(int(time.time()) + 3600)}
        return Response(json.dumps({**body, "token_type": "Bearer"}), 200)

    httpserver.expect_request("/msi/token").respond_with_handler(token)
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "MSI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", httpserver.url_for("/msi/token"))
    monkeypatch.setenv("IDENTITY_HEADER", "identity-header-secret")
    return issued


def test_use_entra_id_auths_as_the_tokens_object_id_with_the_token(
    redis_acl_address: str, acl: redis_py.Redis, managed_identity: list[str], closing: Any, key: str
) -> None:
    metadata = RedisMetadata.model_validate({"redisHost": redis_acl_address, "useEntraID": "true"})
    cache = closing(RedisOutput("cache", metadata))
    (token,) = managed_identity  # fetched when the component starts, as in Dapr
    acl.execute_command("ACL", "SETUSER", "oid-svc", "on", f">{token}", "~*", "+@all")
    try:
        cache.invoke("create", b"entra", Metadata({"key": key}))
        assert acl.get(key) == b"entra"
        assert b"user=oid-svc" in acl.execute_command("CLIENT", "LIST")
    finally:
        acl.execute_command("ACL", "DELUSER", "oid-svc")


def test_use_entra_id_takes_no_username_or_password_nor_oidc() -> None:
    for extra in ({"redisPassword": "p"}, {"redisUsername": "u"}):
        with pytest.raises(ValueError, match="drop redisUsername and redisPassword"):
            RedisMetadata.model_validate({"redisHost": "h", "useEntraID": "true", **extra})
    with pytest.raises(ValueError, match="both"):
        RedisMetadata.model_validate({"redisHost": "h", "useAzureAD": "true", "useOIDC": "true"})
