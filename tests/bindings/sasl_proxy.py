"""A SASL/OAUTHBEARER front door for the Tansu broker, for the kafka `awsiam` and
`oidc_private_key_jwt` tests.

No local broker checks an OAUTHBEARER token (Tansu offers the mechanism but refuses every
token), so this proxy plays the broker's part of the Kafka protocol that authentication is:
it answers the client's `SaslHandshake` (OAUTHBEARER) and `SaslAuthenticate` requests itself,
hands the token from the client's RFC 7628 message to `check`, and on success (only then)
pipes the connection through to Tansu, whose `--advertised-listener-url` is the proxy's, so
every connection the client opens comes through here. Before authentication it forwards only
`ApiVersions`, as a broker does. The client is the real librdkafka, unchanged.
"""

from __future__ import annotations

import socket
import struct
import threading
from contextlib import suppress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

API_VERSIONS = 18
SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36
SASL_AUTHENTICATION_FAILED = 58
UNSUPPORTED_SASL_MECHANISM = 33


def _read_exactly(connection: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _read_frame(connection: socket.socket) -> bytes:
    """One size-prefixed Kafka frame, without its size."""
    (size,) = struct.unpack(">i", _read_exactly(connection, 4))
    return _read_exactly(connection, size)


def _send_frame(connection: socket.socket, body: bytes) -> None:
    connection.sendall(struct.pack(">i", len(body)) + body)


def _string(text: str | None) -> bytes:
    if text is None:
        return struct.pack(">h", -1)
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def _request(frame: bytes) -> tuple[int, int, int, bytes]:
    """(api key, api version, correlation id, body) of a request with a v1 header, as
    SaslHandshake v0-1 and SaslAuthenticate v0-1 requests have."""
    key, version, correlation, client_length = struct.unpack(">hhih", frame[:10])
    return key, version, correlation, frame[10 + max(client_length, 0) :]


def bearer_token(message: bytes) -> str | None:
    """The token of an OAUTHBEARER client message (`n,,\\x01auth=Bearer <token>\\x01...`)."""
    for part in message.split(b"\x01"):
        if part.startswith(b"auth=Bearer "):
            return part[len(b"auth=Bearer ") :].decode()
    return None


class SaslProxy:
    """Listens on 127.0.0.1:`port` in front of the broker at `upstream`. `check(token)` says
    whether a token is accepted; `tokens` lists every token presented, in order."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.port = port
        self.upstream = upstream
        self.check: Callable[[str], bool] = lambda token: False
        self.tokens: list[str] = []
        self._server = socket.create_server(("127.0.0.1", port))
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="sasl-proxy").start()

    def close(self) -> None:
        self._closed.set()
        self._server.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream) as broker:
            try:
                if self._authenticated(client, broker):
                    threading.Thread(target=_pipe, args=(broker, client), daemon=True).start()
                    _pipe(client, broker)
            except (ConnectionError, OSError, struct.error):
                return

    def _authenticated(self, client: socket.socket, broker: socket.socket) -> bool:
        """Serve the connection's requests up to the end of authentication; True when the
        client authenticated."""
        while True:
            frame = _read_frame(client)
            key, version, correlation, body = _request(frame)
            if key == API_VERSIONS:
                _send_frame(broker, frame)
                _send_frame(client, _read_frame(broker))
            elif key == SASL_HANDSHAKE:
                (length,) = struct.unpack(">h", body[:2])
                mechanism = body[2 : 2 + length].decode()
                error = 0 if mechanism == "OAUTHBEARER" else UNSUPPORTED_SASL_MECHANISM
                answer = struct.pack(">ihi", correlation, error, 1) + _string("OAUTHBEARER")
                _send_frame(client, answer)
            elif key == SASL_AUTHENTICATE:
                (length,) = struct.unpack(">i", body[:4])
                token = bearer_token(body[4 : 4 + length])
                if token is not None:
                    self.tokens.append(token)
                accepted = token is not None and self.check(token)
                answer = struct.pack(
                    ">ih", correlation, 0 if accepted else SASL_AUTHENTICATION_FAILED
                )
                answer += _string(None if accepted else "invalid token")
                answer += struct.pack(">i", 0)  # no server message
                if version >= 1:
                    answer += struct.pack(">q", 0)  # session lifetime: unlimited
                _send_frame(client, answer)
                return accepted
            else:
                return False  # anything else before authentication: a broker would refuse it


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with suppress(OSError):
        while chunk := source.recv(65536):
            target.sendall(chunk)
    with suppress(OSError):
        target.shutdown(socket.SHUT_WR)
