"""A local OAuth2 token endpoint for the `private_key_jwt` flows (kafka
`oidc_private_key_jwt`, redis `useOIDC`): an HTTPS pytest-httpserver that checks the client's
real token request as an identity provider would (form fields, the RS256 client assertion
verified against the client's certificate, its claims) and answers with a fresh access token.
"""

from __future__ import annotations

import datetime
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from werkzeug import Response

if TYPE_CHECKING:
    from pytest_httpserver import HTTPServer
    from werkzeug import Request

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def rsa_client(name: str = "kafka-client") -> tuple[str, str]:
    """(certificate PEM, private key PEM) of a self-signed RSA client identity."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


@dataclass
class TokenEndpoint:
    """Issues tokens to `client_id` holding `certificate`'s key (`key`, for the component
    under test). `issued` lists the access tokens handed out; `requests` the form of each
    token request; `assertions` each client assertion's header and claims; `lifetime` is the
    `expires_in` answered."""

    server: HTTPServer
    client_id: str
    certificate: str
    key: str
    audience: str | None = None
    lifetime: int = 3600
    issued: list[str] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    assertions: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return str(self.server.url_for("/oauth2/token"))

    def install(self) -> None:
        self.server.expect_request("/oauth2/token", method="POST").respond_with_handler(self._token)

    def _refuse(self, reason: str) -> Response:
        return Response(json.dumps({"error": "invalid_client", "reason": reason}), 401)

    def _token(self, request: Request) -> Response:
        form = dict(request.form)
        self.requests.append(form)
        if request.content_type != "application/x-www-form-urlencoded":
            return self._refuse("not a form")
        if form.get("grant_type") != "client_credentials":
            return self._refuse("grant_type")
        if form.get("client_id") != self.client_id:
            return self._refuse("client_id")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return self._refuse("client_assertion_type")
        public = x509.load_pem_x509_certificate(self.certificate.encode()).public_key()
        try:
            claims = jwt.decode(
                form.get("client_assertion", ""),
                public,  # type: ignore[arg-type]
                algorithms=["RS256"],
                audience=self.audience or self.url,
                issuer=self.client_id,
                options={"require": ["exp", "iat", "nbf", "jti", "sub"]},
            )
        except jwt.InvalidTokenError as error:
            return self._refuse(f"client_assertion: {error}")
        if claims["sub"] != self.client_id or claims["exp"] - claims["iat"] > 300:
            return self._refuse("client_assertion claims")
        self.assertions.append((jwt.get_unverified_header(form["client_assertion"]), claims))
        token = f"at-{secrets.token_hex(8)}-{int(time.time())}"
        self.issued.append(token)
        body = {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}
        return Response(json.dumps(body), 200, content_type="application/json")
