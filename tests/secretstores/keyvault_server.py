"""portabind's local Key Vault test server: not Azure's, and not an emulator of it.

It answers the requests the real azure-keyvault-secrets and azure-identity make to read one
secret, over real TLS, with verification on:

- an HTTPS server with a certificate for `*.vault.azure.net`, issued by a CA made here
  (`ca_file`: trust it through `REQUESTS_CA_BUNDLE`, which the SDK's requests transport reads);
- an HTTP proxy (`proxy_url`, for `HTTPS_PROXY`) that tunnels a CONNECT to
  `<vault>.vault.azure.net:443` to that server and refuses every other host, so the vault URL
  is the one Dapr builds (`https://<vaultName>.vault.azure.net`) and the challenge resource
  is Key Vault's own `https://vault.azure.net`, which the SDK checks against the vault's host;
- on the same plain HTTP port, an App Service managed identity endpoint (`identity_endpoint`,
  for `IDENTITY_ENDPOINT` with `IDENTITY_HEADER`) issuing tokens for `https://vault.azure.net`.

The vault answers a request without a bearer token with Key Vault's 401 challenge
(`WWW-Authenticate: Bearer authorization=..., resource=...`), a wrong token with 401, a known
secret with Key Vault's JSON and an unknown one with its `SecretNotFound` error.
"""

from __future__ import annotations

import datetime
import json
import secrets
import select
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

RESOURCE = "https://vault.azure.net"
VAULT_SUFFIX = ".vault.azure.net"
TENANT = "72f988bf-0000-0000-0000-00000000000b"
IDENTITY_HEADER = "identity-header-of-the-test"


@dataclass
class Request:
    """One request the vault saw (never a token's value)."""

    method: str
    path: str
    query: dict[str, list[str]]
    host: str
    authorized: bool | None  # None: no Authorization header


@dataclass
class VaultState:
    secrets: dict[tuple[str, str], str] = field(default_factory=dict)  # (vault, name) -> value
    tokens: set[str] = field(default_factory=set)
    requests: list[Request] = field(default_factory=list)
    refuse_tokens: bool = False  # answer every token with 401, as a vault without access
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) files for `*.vault.azure.net`."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portabind test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "*" + VAULT_SUFFIX)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("*" + VAULT_SUFFIX)]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = directory / "vault-ca.pem", directory / "vault.pem", directory / "vault-key.pem"
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


class _Vault(BaseHTTPRequestHandler):
    server: _VaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        host = self.headers.get("Host", "").split(":")[0]
        header = self.headers.get("Authorization")
        token = header.removeprefix("Bearer ") if header and header.startswith("Bearer ") else ""
        with state.lock:
            authorized = None if header is None else token in state.tokens
            authorized = False if authorized and state.refuse_tokens else authorized
            state.requests.append(Request("GET", url.path, parse_qs(url.query), host, authorized))
        if not authorized:
            challenge = (
                f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
                f'resource="{RESOURCE}"'
            )
            self._json(
                401,
                {
                    "error": {
                        "code": "Unauthorized",
                        "message": "AKV10000: Request is missing a Bearer or PoP token.",
                    }
                },
                {"WWW-Authenticate": challenge},
            )
            return
        if not parse_qs(url.query).get("api-version"):
            self._json(400, {"error": {"code": "BadParameter", "message": "api-version"}})
            return
        parts = url.path.strip("/").split("/")
        if len(parts) not in (2, 3) or parts[0] != "secrets":
            self._json(404, {"error": {"code": "NotFound", "message": url.path}})
            return
        vault, name = host.removesuffix(VAULT_SUFFIX), parts[1]
        with state.lock:
            value = state.secrets.get((vault, name))
        if value is None:
            self._json(
                404,
                {
                    "error": {
                        "code": "SecretNotFound",
                        "message": f"A secret with (name/id) {name} was not found in this key "
                        "vault.",
                    }
                },
            )
            return
        version = uuid.uuid5(uuid.NAMESPACE_URL, f"{vault}/{name}/{value}").hex
        stamp = int(time.time())
        self._json(
            200,
            {
                "value": value,
                "id": f"https://{host}/secrets/{name}/{version}",
                "attributes": {
                    "enabled": True,
                    "created": stamp,
                    "updated": stamp,
                    "recoveryLevel": "Recoverable+Purgeable",
                    "recoverableDays": 90,
                },
                "tags": {},
            },
        )


class _VaultServer(ThreadingHTTPServer):
    daemon_threads = True
    state: VaultState


class _Front(BaseHTTPRequestHandler):
    """The plain HTTP port: the CONNECT proxy to the vault, and the identity endpoint."""

    server: _FrontServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        if not host.endswith(VAULT_SUFFIX) or port != "443":
            self._reply(403, b"this proxy reaches only *.vault.azure.net:443")
            return
        upstream = socket.create_connection(("127.0.0.1", self.server.vault_port))
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        client = self.connection
        try:
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 30)
                if not readable:
                    return
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)
        finally:
            upstream.close()
            self.close_connection = True

    def do_GET(self) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path != "/msi/token":
            self._reply(404, b"not found")
            return
        with state.lock:
            state.token_requests.append(query)
        if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
            self._reply(403, b"wrong X-IDENTITY-HEADER")
            return
        if query.get("resource") != [RESOURCE]:
            self._reply(400, b"this identity endpoint issues tokens for Key Vault only")
            return
        token = secrets.token_urlsafe(24)
        with state.lock:
            state.tokens.add(token)
        body = {
            "access_token": token,
            "expires_on": str(int(time.time()) + 3600),
            "resource": RESOURCE,
            "token_type": "Bearer",
        }
        self._reply(200, json.dumps(body).encode(), "application/json")


class _FrontServer(ThreadingHTTPServer):
    daemon_threads = True
    state: VaultState
    vault_port: int


class KeyVaultServer:
    """The vault, the proxy and the identity endpoint, each on a free 127.0.0.1 port."""

    def __init__(self, directory: Path) -> None:
        self.state = VaultState()
        self.ca_file, certificate, key = _certificates(directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        self._vault = _VaultServer(("127.0.0.1", 0), _Vault)
        self._vault.state = self.state
        self._vault.socket = context.wrap_socket(self._vault.socket, server_side=True)
        self._front = _FrontServer(("127.0.0.1", 0), _Front)
        self._front.state = self.state
        self._front.vault_port = self._vault.server_address[1]
        self._threads: list[threading.Thread] = []

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self._front.server_address[1]}"

    @property
    def identity_endpoint(self) -> str:
        return f"{self.proxy_url}/msi/token"

    def add(self, vault: str, name: str, value: str) -> None:
        with self.state.lock:
            self.state.secrets[(vault, name)] = value

    def start(self) -> KeyVaultServer:
        for server in (self._vault, self._front):
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in (self._vault, self._front):
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> KeyVaultServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
