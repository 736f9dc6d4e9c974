"""`portabind run --emulate`: start the emulators a project's components need and point the
components at them.

Each binding names its emulators (`Binding.emulator`) and turns the emulators' endpoints into
metadata overrides (`Binding.emulate`); this module starts each needed emulator once, hands
out the endpoints, sets the environment variables Google's clients read, creates the
components' queues, buckets and topics (`Binding.provision`, or the AMQP broker itself for
Service Bus queues and event hubs), and stops everything again.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Protocol

from portabind import registry
from portabind.annotations import binding_annotations
from portabind.errors import PortabindError, UserError, ValidationFailed

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

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


def needed(components: ComponentSet) -> list[str]:
    """The emulators the binding components name, in a stable order."""
    return sorted(
        {name for c in components.bindings() for name in registry.binding_for(c).emulators}
    )


class Emulators:
    """The emulators of one run: `start`, `overrides` for the Runtime, `provision`, `stop`."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._servers: list[_Server] = []
        self._by_name: dict[str, _Server] = {}
        self._saved_environ: dict[str, str | None] = {}
        self.endpoints: dict[str, str] = {}

    def start(self, components: ComponentSet) -> None:
        for name in needed(components):
            starter = _STARTERS.get(name)
            if starter is None:
                raise PortabindError(f"a binding asks for an unknown emulator {name!r}")
            self._console.info(name, "starting")
            server, endpoints, environ = starter()
            self._servers.append(server)
            self._by_name[name] = server
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
