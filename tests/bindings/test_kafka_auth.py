"""bindings.kafka's token authentications, `awsiam` (Amazon MSK IAM) and
`oidc_private_key_jwt`, through librdkafka's OAUTHBEARER token callback: records go out and
come back through a Tansu broker behind a SASL proxy (tests/bindings/sasl_proxy.py) that
admits a connection only when its token checks out. For `awsiam` the check is AWS's: the
token's presigned URL carries a SigV4 signature, recomputed here with botocore's signer from
the test keys (or the keys moto's STS issued for an assumed role)."""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from portabind.bindings.kafka import KafkaInput, KafkaMetadata, KafkaOutput
from portabind.errors import UserError
from portabind.events import Metadata
from tests.bindings.kafka_helpers import kafka_metadata
from tests.bindings.token_endpoint import rsa_client

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Listener  # tests/bindings/conftest.py

    from portabind.adapters.local.emulators.aws import MotoEmulator
    from tests.bindings.sasl_proxy import SaslProxy
    from tests.bindings.token_endpoint import TokenEndpoint

REGION = "eu-west-1"
ACCESS_KEY = "AKIAPORTABINDTEST01"
SECRET_KEY = "test-secret-key/for+signing"
SESSION_TOKEN = "test-session-token"


def _signed_url(token: str) -> str:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def msk_credential(token: str) -> str:
    """The access key ID a token was signed with."""
    query = dict(parse_qsl(urlsplit(_signed_url(token)).query))
    return query["X-Amz-Credential"].split("/")[0]


def msk_token_valid(token: str, secrets: dict[str, tuple[str, str | None]]) -> bool:
    """Whether `token` is an MSK IAM token for REGION, fresh, whose SigV4 signature is the one
    botocore computes with the secret key (and session token) of its access key ID."""
    parts = urlsplit(_signed_url(token))
    query = dict(parse_qsl(parts.query))
    access_key, day, region, service, _ = query["X-Amz-Credential"].split("/")
    if (parts.netloc, region, service) != (
        f"kafka.{REGION}.amazonaws.com",
        REGION,
        "kafka-cluster",
    ):
        return False
    if query.get("Action") != "kafka-cluster:Connect" or access_key not in secrets:
        return False
    signed_at = time.mktime(time.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ")) - time.timezone
    if abs(time.time() - signed_at) > 300 or int(query["X-Amz-Expires"]) != 900:
        return False
    secret, session_token = secrets[access_key]
    if query.get("X-Amz-Security-Token") != session_token:
        return False
    signature = query.pop("X-Amz-Signature")
    query.pop("User-Agent", None)  # added after signing
    request = AWSRequest(method="GET", url=f"https://{parts.netloc}/?{urlencode(query)}")
    request.context["timestamp"] = query["X-Amz-Date"]
    signer = SigV4QueryAuth(Credentials(access_key, secret, session_token), service, region)
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    return bool(expected == signature and day == query["X-Amz-Date"][:8])


@pytest.fixture
def settings(
    kafka_sasl: SaslProxy, unique_name: Callable[..., str]
) -> Callable[..., KafkaMetadata]:
    topic = unique_name()
    brokers = f"127.0.0.1:{kafka_sasl.port}"  # the proxy speaks SASL over plain TCP
    return lambda **values: kafka_metadata(brokers, topic, disableTls="true", **values)


def _round_trip(metadata: KafkaMetadata, closing: Any, listen: Callable[..., Listener]) -> None:
    """Produce one record and read it back with the same component."""
    closing(KafkaOutput("events", metadata)).invoke("create", b"through IAM", Metadata({"k": "v"}))
    (event,) = listen(KafkaInput("events", metadata)).wait_for(1, timeout=40)
    assert (event.data, event.metadata["k"]) == (b"through IAM", "v")


def test_awsiam_signs_with_the_component_keys_and_reaches_the_broker(
    kafka_sasl: SaslProxy, settings: Any, closing: Any, listen: Callable[..., Listener]
) -> None:
    kafka_sasl.check = lambda token: msk_token_valid(token, {ACCESS_KEY: (SECRET_KEY, None)})
    kafka_sasl.tokens.clear()
    metadata = settings(
        authType="awsiam", region=REGION, accessKey=ACCESS_KEY, secretKey=SECRET_KEY
    )
    _round_trip(metadata, closing, listen)
    assert kafka_sasl.tokens, "the client presented no token"
    assert all(msk_token_valid(t, {ACCESS_KEY: (SECRET_KEY, None)}) for t in kafka_sasl.tokens)
    # The check is not vacuous: the same tokens fail against another secret key.
    assert not msk_token_valid(kafka_sasl.tokens[0], {ACCESS_KEY: ("another-secret", None)})


def test_awsiam_takes_daprs_older_names_and_the_newer_name_wins(
    kafka_sasl: SaslProxy, settings: Any, closing: Any, listen: Callable[..., Listener]
) -> None:
    keys = {ACCESS_KEY: (SECRET_KEY, SESSION_TOKEN)}
    kafka_sasl.check = lambda token: msk_token_valid(token, keys)
    kafka_sasl.tokens.clear()
    metadata = settings(
        authType="awsiam",
        awsRegion=REGION,
        awsAccessKey="AKIAOLDERNAMEIGNORED",  # accessKey is set too, and wins (Dapr's rule)
        accessKey=ACCESS_KEY,
        awsSecretKey=SECRET_KEY,
        awsSessionToken=SESSION_TOKEN,
    )
    _round_trip(metadata, closing, listen)
    assert {msk_credential(t) for t in kafka_sasl.tokens} == {ACCESS_KEY}


def test_awsiam_assumes_awsIamRoleArn_through_sts(
    kafka_sasl: SaslProxy,
    settings: Any,
    closing: Any,
    listen: Callable[..., Listener],
    moto_server: MotoEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without keys, the default chain (here: environment variables) calls STS AssumeRole on
    moto; the token is signed with the role's temporary keys."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sts.models import sts_backends

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIABASECHAIN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "base-chain-secret")
    roles = sts_backends[DEFAULT_ACCOUNT_ID]["global"]

    def issued() -> dict[str, tuple[str, str | None]]:
        return {
            role.access_key_id: (role.secret_access_key, role.session_token)
            for role in roles.assumed_roles
        }

    kafka_sasl.check = lambda token: msk_token_valid(token, issued())
    kafka_sasl.tokens.clear()
    metadata = settings(
        authType="awsiam",
        region=REGION,
        awsIamRoleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/msk-reader",
        awsStsSessionName="portabind-test",
        endpoint=moto_server.endpoint,  # STS is asked here
    )
    _round_trip(metadata, closing, listen)
    sessions = {
        r.session_name
        for r in roles.assumed_roles
        if r.access_key_id in {msk_credential(t) for t in kafka_sasl.tokens}
    }
    assert sessions == {"portabind-test"}


def test_awsiam_without_credentials_fails_when_the_component_starts(
    settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(UserError, match="no MSK IAM token") as raised:
        KafkaOutput("events", settings(authType="awsiam", region=REGION))
    assert "awsiam" in (raised.value.hint or "")


def test_oidc_private_key_jwt_gets_a_token_with_a_signed_assertion_and_reaches_the_broker(
    kafka_sasl: SaslProxy,
    settings: Any,
    closing: Any,
    listen: Callable[..., Listener],
    token_endpoint: TokenEndpoint,
    certificates: Any,
) -> None:
    kafka_sasl.check = lambda token: token in token_endpoint.issued
    kafka_sasl.tokens.clear()
    token_endpoint.audience = "https://idp.example/realms/kafka"
    metadata = settings(
        authType="oidc_private_key_jwt",
        oidcTokenEndpoint=token_endpoint.url,
        oidcClientID=token_endpoint.client_id,
        oidcClientAssertionCert=token_endpoint.certificate,
        oidcClientAssertionKey=token_endpoint.key,
        oidcScopes="openid, kafka",
        oidcAudience="https://idp.example/realms/kafka",
        oidcResource="api://kafka",
        oidcKid="key-1",
        caCert=certificates.pem("ca.pem"),  # vouches for the token endpoint, as in Dapr
    )
    _round_trip(metadata, closing, listen)
    assert kafka_sasl.tokens and set(kafka_sasl.tokens) <= set(token_endpoint.issued)
    form = token_endpoint.requests[0]
    assert (form["scope"], form["resource"], form["audience"]) == (
        "openid kafka",
        "api://kafka",
        "https://idp.example/realms/kafka",
    )
    header, claims = token_endpoint.assertions[0]
    assert (header["alg"], header["kid"]) == ("RS256", "key-1")
    assert claims["exp"] - claims["iat"] == 60


def test_oidc_private_key_jwt_refused_by_the_identity_provider_fails_at_start(
    settings: Any, token_endpoint: TokenEndpoint, certificates: Any
) -> None:
    other_certificate, other_key = rsa_client("someone-else")
    metadata = settings(
        authType="oidc_private_key_jwt",
        oidcTokenEndpoint=token_endpoint.url,
        oidcClientID=token_endpoint.client_id,
        oidcClientAssertionCert=other_certificate,
        oidcClientAssertionKey=other_key,
        caCert=certificates.pem("ca.pem"),
    )
    with pytest.raises(UserError, match="returned 401") as raised:
        KafkaOutput("events", metadata)
    assert other_key.splitlines()[1] not in str(raised.value)


def test_token_authentications_name_what_they_miss(settings: Any) -> None:
    with pytest.raises(ValueError, match="region"):
        settings(authType="awsiam")
    with pytest.raises(ValueError, match="oidcClientAssertionCert"):
        settings(authType="oidc_private_key_jwt", oidcTokenEndpoint="https://i/t", oidcClientID="c")
