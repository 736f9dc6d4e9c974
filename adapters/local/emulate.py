"""`portabind run --emulate`: start the emulators a project's components need and point the
components at them.

Each binding names its emulators (`Binding.emulator`) and turns the emulators' endpoints into
metadata overrides (`Binding.emulate`); this module starts each needed emulator once, hands
out the endpoints, sets the environment variables Google's clients read, creates the
components' queues, buckets and topics (`Binding.provision`, or the AMQP broker itself for
Service Bus queues and event hubs), and stops everything again.

When `portabind emulators up` (`background`) runs the emulators as a process of their own,
its state file records their endpoints; `Emulators` given that directory uses the ones it
names instead of starting its own, and leaves them running when it stops.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from portabind import registry
from portabind.adapters.local.emulators import port_accepts
from portabind.annotations import binding_annotations
from portabind.errors import PortabindError, UserError, ValidationFailed

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from portabind.adapters.local.console import Console
    from portabind.binding import Binding
    from portabind.components import Component, ComponentSet
    from portabind.metadata import BindingMetadata
    from portabind.runtime import Runtime


class _Server(Protocol):
    def stop(self) -> None: ...


# Each starter returns the running server, its endpoints (keys as `Binding.emulate` reads
# them) and the environment variables that point Google's clients at it.
_Started = tuple[_Server, dict[str, str], dict[str, str]]


def _moto() -> _Started:
    from portabind.adapters.local.emulators.aws import MotoEmulator

    # moto serves through werkzeug, which logs every request; the console reports the
    # binding calls that matter, so the request log would only bury them.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = MotoEmulator().start()
    return server, {"moto": server.endpoint}, {}


def _azurite() -> _Started:
    from portabind.adapters.local.emulators.azure import (
        ACCOUNT_NAME,
        AzuriteEmulator,
        ensure_azurite,
    )

    server = AzuriteEmulator(ensure_azurite()).start()
    # Bindings add the account path themselves (as Dapr's `endpoint` expects a bare host).
    suffix = f"/{ACCOUNT_NAME}"
    endpoints = {
        "azurite.queue": server.queue_endpoint.removesuffix(suffix),
        "azurite.blob": server.blob_endpoint.removesuffix(suffix),
    }
    return server, endpoints, {}


def _gcs() -> _Started:
    from portabind.adapters.local.emulators.gcp import StorageEmulator

    server = StorageEmulator().start()
    return server, {"gcs": server.endpoint}, {"STORAGE_EMULATOR_HOST": server.endpoint}


def _cosmos() -> _Started:
    from portabind.adapters.local.emulators.cosmos import CosmosEmulator
    from portabind.bindings.azure.cosmosdb import EMULATOR_ENV

    server = CosmosEmulator().start()
    return server, {"cosmos": server.endpoint}, {EMULATOR_ENV: server.endpoint}


def _pubsub() -> _Started:
    # gRPC's core logs connection teardown (GOAWAY) at INFO straight to stderr when the
    # emulator stops; read once, at gRPC's import, so set before it (the user's value wins).
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from portabind.adapters.local.emulators.pubsub import PubSubEmulator

    server = PubSubEmulator()
    server.start()
    return server, {"pubsub": server.address}, {"PUBSUB_EMULATOR_HOST": server.address}


def _amqp() -> _Started:
    from portabind.adapters.local.emulators.amqp import AmqpBroker

    server = AmqpBroker().start()
    return server, {"amqp": server.address}, {}


_STARTERS: dict[str, Callable[[], _Started]] = {
    "moto": _moto,
    "azurite": _azurite,
    "gcs": _gcs,
    "cosmos": _cosmos,
    "pubsub": _pubsub,
    "amqp": _amqp,
}


def _declare_amqp(broker: Any, metadata: BindingMetadata) -> None:
    """Create the Service Bus queue or event hub a component names in the AMQP broker, with
    the settings Dapr gives a queue or hub it creates. (Azure's development namespaces have
    no management API the SDKs reach: the broker is told directly.)"""
    from portabind.bindings.azure.eventhubs import EventHubsMetadata
    from portabind.bindings.azure.servicebusqueues import ServiceBusQueuesMetadata

    if isinstance(metadata, ServiceBusQueuesMetadata):
        settings: dict[str, Any] = {}
        if metadata.lock_duration_in_sec is not None:
            settings["lock_duration"] = float(metadata.lock_duration_in_sec)
        if metadata.max_delivery_count is not None:
            settings["max_delivery_count"] = metadata.max_delivery_count
        if metadata.default_message_ttl is not None:
            settings["default_ttl"] = metadata.default_message_ttl.total_seconds()
        broker.declare_queue(metadata.queue_name, **settings)
    elif isinstance(metadata, EventHubsMetadata):
        broker.declare_event_hub(metadata.hub() or "", partitions=metadata.partition_count)


#: Emulators that create a component's entity themselves, by emulator name.
_DECLARE: dict[str, Callable[[Any, BindingMetadata], None]] = {"amqp": _declare_amqp}


def needed(components: ComponentSet) -> dict[str, list[str]]:
    """The emulators the binding components name, in a stable order, each with the names of
    the components that use it."""
    users: dict[str, list[str]] = {}
    for component in components.bindings():
        for name in registry.binding_for(component).emulators:
            users.setdefault(name, []).append(component.name)
    return dict(sorted(users.items()))


#: The file in the state directory of `portabind emulators up` that names its emulators.
STATE_FILE = "state.json"


def default_state_dir(project: Path) -> Path:
    """Where the state of `portabind emulators up` lives unless `--state-dir` says."""
    return project / ".portabind" / "emulators"


class EmulatorRecord(BaseModel):
    """One emulator of `portabind emulators up`: what a run needs to use it."""

    #: Keys as `Binding.emulate` reads them.
    endpoints: dict[str, str]
    #: The environment variables that point clients at it (Google's read them).
    environ: dict[str, str]
    #: The components it was started and provisioned for.
    components: list[str]

    def ports(self) -> list[int]:
        """The ports its endpoints (URLs, or `host:port`) name."""
        found = (
            urlsplit(url if "//" in url else f"//{url}").port for url in self.endpoints.values()
        )
        return [port for port in found if port is not None]


class EmulatorsState(BaseModel):
    """The state file of `portabind emulators up`: its process and its emulators."""

    pid: int
    #: The components directory it was given.
    components: str
    emulators: dict[str, EmulatorRecord]

    def serving(self) -> bool:
        """True while the process lives and every emulator it recorded accepts connections
        (a pid alone could have been reused by another process)."""
        return process_alive(self.pid) and all(
            port_accepts(port) for record in self.emulators.values() for port in record.ports()
        )


def process_alive(pid: int) -> bool:
    """True while process *pid* exists and has not exited (one of ours that exited is reaped
    here, as its zombie would otherwise look alive)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: its parent reaps it
        reaped = 0
    if reaped == pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def read_state(state_dir: Path) -> EmulatorsState | None:
    """The state `portabind emulators up` recorded in *state_dir*, or None when there is none."""
    path = state_dir / STATE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from None
    try:
        return EmulatorsState.model_validate_json(text)
    except ValidationError:
        raise UserError(
            f"{path} is not a state file of `portabind emulators up`",
            hint="`portabind emulators down` removes it",
        ) from None


class Emulators:
    """The emulators of one run: `start`, `overrides` for the Runtime, `provision`, `stop`."""

    def __init__(self, console: Console, state_dir: Path | None = None) -> None:
        """*state_dir*: where `portabind emulators up` records the emulators to use."""
        self._console = console
        self._state_dir = state_dir
        self._servers: list[_Server] = []
        self._by_name: dict[str, _Server] = {}
        self._saved_environ: dict[str, str | None] = {}
        self.endpoints: dict[str, str] = {}
        #: The emulators this instance started, as `portabind emulators up` records them.
        self.started: dict[str, EmulatorRecord] = {}

    def start(self, components: ComponentSet) -> None:
        shared = self._shared()
        for name, users in needed(components).items():
            record = shared.get(name)
            if record is not None and (
                name not in _DECLARE or set(users) <= set(record.components)
            ):
                self._use(name, record.endpoints, record.environ)
                continue
            if shared:
                self._console.warn(
                    f"{name} for {', '.join(users)} is not among the emulators of `portabind "
                    "emulators up`: started here, what it holds ends with this run (to keep it, "
                    "`portabind emulators down`, then `up` with these components)"
                )
            starter = _STARTERS.get(name)
            if starter is None:
                raise PortabindError(f"a binding asks for an unknown emulator {name!r}")
            self._console.info(name, "starting")
            server, endpoints, environ = starter()
            self._servers.append(server)
            self._by_name[name] = server
            self.started[name] = EmulatorRecord(
                endpoints=endpoints, environ=environ, components=users
            )
            self._use(name, endpoints, environ)

    def _shared(self) -> dict[str, EmulatorRecord]:
        """The emulators of a live `portabind emulators up` in the state directory, if any."""
        if self._state_dir is None:
            return {}
        state = read_state(self._state_dir)
        if state is None:
            return {}
        path = self._state_dir / STATE_FILE
        if not state.serving():
            self._console.warn(
                f"{path} names emulators (pid {state.pid}) that no longer run: starting them "
                "here (`portabind emulators down` removes the file)"
            )
            return {}
        self._console.info(
            "emulators", f"using those of `portabind emulators up` (pid {state.pid}, {path})"
        )
        return state.emulators

    def _use(self, name: str, endpoints: Mapping[str, str], environ: Mapping[str, str]) -> None:
        self.endpoints.update(endpoints)
        for key, value in environ.items():
            self._saved_environ.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        self._console.info(name, "  ".join(f"{key}={url}" for key, url in endpoints.items()))

    def overrides(self, component: Component, binding: Binding[Any]) -> Mapping[str, str]:
        if binding.emulate is None:
            return {}
        return binding.emulate(self.endpoints)

    def provision(self, runtime: Runtime) -> None:
        """Create every component's resource in its emulator; report all bad components."""
        problems: list[UserError] = []
        created: list[str] = []
        for component in runtime.components.bindings():
            binding = registry.binding_for(component)
            try:
                metadata = runtime.metadata(component.name)
            except UserError as error:
                problems.extend(error.errors if isinstance(error, ValidationFailed) else [error])
                continue
            for name in binding.emulators:
                if name in _DECLARE and name in self._by_name:
                    _DECLARE[name](self._by_name[name], metadata)
                    created.append(f"{component.name} ({component.type})")
            if binding.provision is None:
                continue
            try:
                annotations = binding_annotations(component, binding)
            except UserError as error:
                problems.extend(error.errors if isinstance(error, ValidationFailed) else [error])
                continue
            binding.provision_resource(metadata, annotations)
            created.append(f"{component.name} ({component.type})")
        if problems:
            raise problems[0] if len(problems) == 1 else ValidationFailed(problems)
        if created:
            self._console.info("provisioned", ", ".join(created))

    def stop(self) -> None:
        self._by_name.clear()
        while self._servers:
            self._servers.pop().stop()
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environ.clear()
