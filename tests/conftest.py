"""Shared fixtures: real local servers (session-scoped) and unique resource names.

Rule for every server fixture (see `tests.helpers.require_server`): a server that cannot start
because it is not installed SKIPS the tests that need it, with the exact command that fixes
that, so a developer can run the rest of the suite anywhere; under ``CI=true`` the same
situation FAILS, because `.ci/run` installs everything and a skip there would hide a broken
setup. A server that is installed but crashes on start is an error everywhere.

Every fixture declared with `tests.helpers.server_fixture` marks the tests that use it
``server`` (see `pytest_collection_modifyitems`), so ``pytest -m "not server"`` is the fast tier.
"""

from __future__ import annotations

import re
import sys
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers import SERVER_FIXTURES, machine_service, require_server, server_fixture, tansu

# pytest keeps the assertion-rewritten test modules only where bytecode may be written. Where
# PYTHONDONTWRITEBYTECODE is set (on the development and CI machines), every session, and
# every xdist worker, would rewrite and compile every test module again: about 5 s of CPU
# each. The test process writes bytecode (into __pycache__, which git ignores) whatever the
# environment says; the processes the tests start keep the environment's setting.
sys.dont_write_bytecode = False

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from portabind.adapters.local.emulators.amqp import AmqpBroker
    from portabind.adapters.local.emulators.aws import MotoEmulator
    from portabind.adapters.local.emulators.azure import AzuriteEmulator
    from portabind.adapters.local.emulators.gcp import StorageEmulator

_FIX_VENV = "make venv  (or: .venv/bin/pip install -e '.[dev]')"
_FIX_AZURITE = (
    "make tools  (or: npm ci --prefix tools; or: "
    "npm install --prefix ~/.cache/portabind/azurite azurite@3.35.0)"
)
_FIX_COSMOS = (
    "make tools  (or: npm ci --prefix tools; or: npm install --prefix "
    "~/.cache/portabind/cosmosdb-server @vercel/cosmosdb-server@1.0.1)"
)


# First, so that the marks exist when pytest's own hook deselects by ``-m``.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``server(name=...)`` every test whose fixtures, direct or indirect, include a
    server fixture."""
    for item in items:
        for fixture in sorted(SERVER_FIXTURES.keys() & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.server(name=SERVER_FIXTURES[fixture]))


def _start(name: str, how_to_fix: str, factory: Callable[[], Any]) -> Any:
    """Build and start a server; route "not installed" through `require_server`."""
    try:
        from portabind.adapters.local.emulators import EmulatorUnavailable
    except ImportError as exc:
        require_server(name, f"portabind is not importable ({exc})", _FIX_VENV)
    try:
        server = factory()
        server.start()
    except ImportError as exc:
        require_server(name, f"import failed ({exc})", how_to_fix)
    except EmulatorUnavailable as exc:
        require_server(name, str(exc), how_to_fix)
    return server


@server_fixture("moto", scope="session")
def moto_server() -> Iterator[MotoEmulator]:
    """moto (S3, SQS, SNS, DynamoDB, Kinesis, ...) on 127.0.0.1; state shared by the session."""

    def factory() -> MotoEmulator:
        from portabind.adapters.local.emulators.aws import MotoEmulator

        return MotoEmulator()

    server = _start("moto", _FIX_VENV, factory)
    try:
        yield server
    finally:
        server.stop()


@server_fixture("azurite", scope="session")
def azurite() -> Iterator[AzuriteEmulator]:
    """Azurite (Blob, Queue, Table) on 127.0.0.1; state shared by the session."""

    def factory() -> AzuriteEmulator:
        from portabind.adapters.local.emulators.azure import AzuriteEmulator

        return AzuriteEmulator()

    server = _start("Azurite", _FIX_AZURITE, factory)
    try:
        yield server
    finally:
        server.stop()


@server_fixture("gcs", scope="session")
def gcs_server() -> Iterator[StorageEmulator]:
    """The Cloud Storage emulator on 127.0.0.1; point clients at it with STORAGE_EMULATOR_HOST."""

    def factory() -> StorageEmulator:
        from portabind.adapters.local.emulators.gcp import StorageEmulator

        return StorageEmulator()

    server = _start("GCS emulator", _FIX_VENV, factory)
    try:
        yield server
    finally:
        server.stop()


@server_fixture("cosmos", scope="session")
def cosmos_server() -> Iterator[Any]:
    """The Cosmos DB server (@vercel/cosmosdb-server) on 127.0.0.1, HTTPS; its URL is in
    PORTABIND_COSMOS_EMULATOR for the session, so the bindings accept its certificate."""

    def factory() -> Any:
        from portabind.adapters.local.emulators.cosmos import CosmosEmulator

        return CosmosEmulator()

    server = _start("Cosmos DB server", _FIX_COSMOS, factory)
    from portabind.bindings.azure.cosmosdb import EMULATOR_ENV

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(EMULATOR_ENV, server.endpoint)
        try:
            yield server
        finally:
            server.stop()


@server_fixture("pubsub", scope="session")
def pubsub_server() -> Iterator[Any]:
    """portabind's Pub/Sub emulator on 127.0.0.1 (gRPC); use with PUBSUB_EMULATOR_HOST."""

    def factory() -> Any:
        from portabind.adapters.local.emulators.pubsub import PubSubEmulator

        return PubSubEmulator()

    server = _start("Pub/Sub emulator", _FIX_VENV, factory)
    try:
        yield server
    finally:
        server.stop()


@server_fixture("amqp", scope="session")
def amqp_broker() -> Iterator[AmqpBroker]:
    """portabind's AMQP broker (Service Bus queues, Event Hubs) on 127.0.0.1; state shared
    by the session, so each test declares entities of its own (`unique_name`)."""

    def factory() -> AmqpBroker:
        from portabind.adapters.local.emulators.amqp import AmqpBroker

        return AmqpBroker()

    server = _start("AMQP broker", _FIX_VENV, factory)
    try:
        yield server
    finally:
        server.stop()


@server_fixture("rabbitmq", scope="session")
def rabbitmq_url() -> str:
    """AMQP URL of the machine's RabbitMQ (guest/guest)."""
    return f"amqp://guest:guest@{machine_service('RabbitMQ', 5672)}/"


@server_fixture("kafka", scope="session")
def kafka_brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`brokers` of a Tansu broker for this session."""
    with tansu(tmp_path_factory) as port:
        yield f"127.0.0.1:{port}"


_NOT_NAME_CHARS = re.compile(r"[^a-z0-9]+")


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[..., str]:
    """Factory of unique, short resource names valid everywhere we create resources.

    ``unique_name()`` -> ``pb-<test name>-<10 hex>``; ``unique_name("orders")`` ->
    ``pb-orders-<10 hex>``. Lowercase letters, digits and single hyphens, starting with a
    letter and ending with a digit or letter, at most 39 characters: valid as an S3 or GCS
    bucket, an SQS queue, an Azure queue or blob container (3-63 chars, no "--").
    """

    def make(label: str = "") -> str:
        slug = _NOT_NAME_CHARS.sub("-", (label or request.node.name).lower())
        slug = slug.strip("-")[:24].strip("-")
        parts = ["pb", slug, uuid.uuid4().hex[:10]] if slug else ["pb", uuid.uuid4().hex[:10]]
        return "-".join(parts)

    return make
