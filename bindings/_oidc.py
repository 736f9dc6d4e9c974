"""OAuth2 client credentials with a `private_key_jwt` client assertion (RFC 7523): how Dapr's
kafka `authType: oidc_private_key_jwt` and redis `useOIDC` get their access tokens
(components-contrib `common/component/kafka/sasl_oauthbearer_private_key_jwt.go` and
`common/component/redis/oauth2_private_key_jwt.go`, one algorithm).

The assertion is an RS256 JWT whose `iss` and `sub` are the client ID, `aud` the token
endpoint (or `oidcAudience`), with a random `jti`, issued now and valid for one minute, and
the `kid` header when `oidcKid` is set. It is POSTed form-encoded with `grant_type`
`client_credentials`, `client_id`, `client_assertion_type`, `client_assertion`, and `scope`
(space-separated), `audience` and `resource` when set. The endpoint's TLS certificate is
checked against `caCert` when given. The answer's `access_token` is kept until ten seconds
before its `expires_in` runs out, as Go's oauth2 does. As in Dapr's redis component (its
kafka component skips the check), the certificate must hold the key's public half, so a
mismatched pair is reported here rather than as the identity provider's refusal.

PyJWT signs the assertion; it is imported when a token is first needed.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass

#: Lifetime of a client assertion, as Dapr's.
ASSERTION_SECONDS = 60
#: A token is renewed this long before it expires (Go oauth2's expiryDelta).
EXPIRY_MARGIN = 10.0
#: Seconds one token request may take.
REQUEST_TIMEOUT = 30.0
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class TokenError(Exception):
    """No token could be obtained; the message says why and holds no secret."""


@dataclass(frozen=True)
class PrivateKeyJwt:
    """What the token request needs; `key` is the PEM private key (a secret)."""

    token_endpoint: str
    client_id: str
    certificate: str
    key: str
    scopes: tuple[str, ...] = ("openid",)
    audience: str | None = None
    resource: str | None = None
    kid: str | None = None
    ca_cert: str | None = None
    skip_verify: bool = False


def _signing_key(grant: PrivateKeyJwt) -> object:
    """The RSA private key, once checked against the certificate's public key."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(grant.key.encode(), password=None)
    except ValueError:
        raise TokenError("oidcClientAssertionKey is not a PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TokenError("oidcClientAssertionKey must be an RSA private key")
    try:
        certificate = x509.load_pem_x509_certificate(grant.certificate.encode())
    except ValueError:
        raise TokenError("oidcClientAssertionCert is not a PEM certificate") from None
    if certificate.public_key() != key.public_key():
        raise TokenError(
            "oidcClientAssertionCert does not hold the public key of oidcClientAssertionKey"
        )
    return key


def assertion(grant: PrivateKeyJwt) -> str:
    """A fresh signed client assertion."""
    import jwt

    now = int(time.time())
    claims = {
        "iss": grant.client_id,
        "sub": grant.client_id,
        "aud": grant.audience or grant.token_endpoint,
        "iat": now,
        "nbf": now,
        "exp": now + ASSERTION_SECONDS,
        "jti": str(uuid.uuid4()),
    }
    headers = {"kid": grant.kid} if grant.kid else None
    return jwt.encode(claims, _signing_key(grant), algorithm="RS256", headers=headers)  # type: ignore[arg-type]


def _tls(grant: PrivateKeyJwt) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if grant.ca_cert:
        context.load_verify_locations(cadata=grant.ca_cert)
    if grant.skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def request_token(grant: PrivateKeyJwt) -> tuple[str, float]:
    """One token request: (access token, expiry as Unix seconds)."""
    form = {
        "grant_type": "client_credentials",
        "client_id": grant.client_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(grant),
    }
    if grant.audience:
        form["audience"] = grant.audience
    if grant.resource:
        form["resource"] = grant.resource
    if grant.scopes:
        form["scope"] = " ".join(grant.scopes)
    request = urllib.request.Request(
        grant.token_endpoint,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    where = f"token endpoint {grant.token_endpoint}"
    try:
        with urllib.request.urlopen(
            request, timeout=REQUEST_TIMEOUT, context=_tls(grant)
        ) as answer:
            body = json.load(answer)
    except urllib.error.HTTPError as error:
        raise TokenError(f"{where} returned {error.code}") from None
    except (OSError, ValueError) as error:
        raise TokenError(f"{where}: {error}") from None
    token = body.get("access_token") if isinstance(body, dict) else None
    if not token:
        raise TokenError(f"{where}: no access_token in the response")
    return str(token), time.time() + float(body.get("expires_in") or 0)


class TokenSource:
    """Hands out the current access token, requesting a new one when it is about to expire;
    safe to share between threads."""

    def __init__(self, grant: PrivateKeyJwt) -> None:
        self.grant = grant
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None

    def token(self) -> tuple[str, float]:
        """(access token, expiry as Unix seconds)."""
        with self._lock:
            if self._token is None or time.time() >= self._token[1] - EXPIRY_MARGIN:
                self._token = request_token(self.grant)
            return self._token
