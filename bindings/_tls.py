"""TLS from Dapr's PEM metadata (`caCert`, `clientCert`, `clientKey`).

Dapr components take certificates as PEM text, while Python's `ssl` and some clients read
them from files only; these helpers bridge the two for the bindings that need it.
"""

from __future__ import annotations

import atexit
import os
import ssl
import tempfile
from pathlib import Path

_KEPT: list[Path] = []


def _remove_kept() -> None:
    for path in _KEPT:
        path.unlink(missing_ok=True)


atexit.register(_remove_kept)


def pem_file(pem: str) -> str:
    """Write PEM text to a private file (mode 0600) that lives until the process exits, for
    clients that open the file again on every new connection."""
    handle, name = tempfile.mkstemp(prefix="portabind-", suffix=".pem")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(pem)
    _KEPT.append(Path(name))
    return name


def ssl_context(
    *,
    ca_cert: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    skip_verify: bool = False,
) -> ssl.SSLContext:
    """A client context: trust `ca_cert` (else the system store), present the client
    certificate when both halves are given, skip server verification only when asked."""
    context = ssl.create_default_context(cadata=ca_cert or None)
    if skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client_cert and client_key:
        # load_cert_chain reads files; the context keeps the loaded key, so they go at once.
        with tempfile.TemporaryDirectory(prefix="portabind-") as directory:
            cert = Path(directory, "cert.pem")
            key = Path(directory, "key.pem")
            cert.write_text(client_cert, encoding="utf-8")
            key.write_text(client_key, encoding="utf-8")
            key.chmod(0o600)
            context.load_cert_chain(cert, key)
    return context
