"""Bindings at run time: output clients and input listeners built from components.

Shared by every target. Clients are created on first use, so a function pays only for the
outputs it calls.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from portabind import registry
from portabind.components import parse_metadata
from portabind.errors import ComponentError, UserError
from portabind.secrets import SecretResolver

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from portabind.binding import Binding, InputBinding, OutputBinding
    from portabind.components import Component, ComponentSet
    from portabind.metadata import BindingMetadata
    from portabind.resiliency import Engine


class Runtime:
    """The components of one profile, resolved and ready to use."""

    def __init__(
        self,
        components: ComponentSet,
        *,
        environ: Mapping[str, str] | None = None,
        overrides: Callable[[Component, Binding[Any]], Mapping[str, str]] | None = None,
    ) -> None:
        """`overrides` gives values that replace a component's own (the emulators' endpoints
        and credentials); references it replaces are not resolved."""
        self.components = components
        self._resolver = SecretResolver(components, environ)
        self._overrides = overrides
        self._resiliency: Engine | None = None
        if components.resiliency:
            self._resiliency = self.resiliency  # bad documents fail here, not at first use
        self._outputs: dict[str, OutputBinding[Any]] = {}
        self._names: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    @property
    def resiliency(self) -> Engine:
        """The Resiliency documents' policies: outbound around each output call here, inbound
        where a target delivers events itself (`portabind run`). Made on first use when there
        are no documents, so a function without any does not load the policy engine."""
        if self._resiliency is None:
            from portabind.resiliency import Engine, policies

            self._resiliency = Engine(policies(self.components.resiliency))
        return self._resiliency

    def binding(self, name: str) -> tuple[Component, Binding[Any]]:
        component = self.components.get(name)
        return component, registry.binding_for(component)

    def metadata(self, name: str) -> BindingMetadata:
        component, binding = self.binding(name)
        if component.validated is not None and self._overrides is None:
            # A built function: what the build validated, and what it resolves checked here.
            resolve = component.validated.resolve
            texts = self._resolver.values(component, {key for key, _ in resolve.values()})
            validated: BindingMetadata = component.validated_metadata(binding.metadata, texts)
            return validated
        replaced = dict(self._overrides(component, binding)) if self._overrides else {}
        names = binding.metadata.dapr_names()
        replaced_fields = {names.get(key.lower(), key) for key in replaced}
        keep = {
            key
            for key in component.binding_values()
            if names.get(key.lower(), key) not in replaced_fields
        }
        values = self._resolver.values(component, keep)
        values.update(replaced)
        parsed: BindingMetadata = parse_metadata(component, binding.metadata, values)
        return parsed

    def output_binding(self, name: str) -> tuple[Component, Binding[Any]]:
        """Component `name` and its binding, refused unless it is usable as an output."""
        component, binding = self.binding(name)
        if binding.output is None or (component.direction and "output" not in component.direction):
            raise UserError(
                f"{name!r} ({component.type}) is not an output binding",
                hint="output bindings: " + ", ".join(self.names("output")),
            )
        return component, binding

    def output(self, name: str) -> OutputBinding[Any]:
        # Read without the lock once made: a dict read is atomic, and taking the lock on every
        # output call would make threads calling outputs wait for each other.
        client = self._outputs.get(name)
        if client is not None:
            return client
        with self._lock:
            client = self._outputs.get(name)
            if client is None:
                _, binding = self.output_binding(name)
                assert binding.output is not None  # output_binding refuses the others
                client = binding.output(name, self.metadata(name))
                if self.components.resiliency:
                    from portabind.resiliency import resilient

                    client = resilient(client, self.resiliency)
                self._outputs[name] = client
            return client

    def input(self, name: str) -> InputBinding[Any]:
        component, binding = self.binding(name)
        if binding.input is None:
            raise component.error(
                f"{component.type} has no input direction",
                field="spec.type",
                hint="use it as an output binding, or pick a type with an input",
            )
        # Here, not at the top: only a local listener parses annotations, a function's cold
        # start never does.
        from portabind.annotations import binding_annotations

        annotations = binding_annotations(component, binding)
        try:
            return binding.input(name, self.metadata(name), annotations=annotations)
        except ComponentError as error:
            if error.file is not None:
                raise
            # A field only the input needs (a consumer group): the binding names the field,
            # the component says where it is.
            raise component.error(error.detail, field=error.field, hint=error.hint) from None

    def names(self, direction: str) -> list[str]:
        """Component names usable in a direction (by type support and `direction`)."""
        # Worked out once per direction: the Dapr API asks on every request, and the
        # components never change under a runtime.
        found = self._names.get(direction)
        if found is None:
            found = self._names[direction] = tuple(self._usable(direction))
        return list(found)

    def _usable(self, direction: str) -> Iterator[str]:
        for component in self.components.bindings():
            try:
                binding = registry.binding_for(component)
            except UserError:
                continue
            wanted = component.direction or binding.directions
            if direction in binding.directions and direction in wanted:
                yield component.name

    def close(self) -> None:
        with self._lock:
            for client in self._outputs.values():
                client.close()
            self._outputs.clear()
