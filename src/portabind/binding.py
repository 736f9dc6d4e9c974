"""The contract a binding module fulfils.

`bindings/<vendor>/<name>.py` (type `bindings.<vendor>.<name>`) defines a module-level
`binding = Binding(...)`: its metadata model, the model of the `portabind.io/` annotations it
reads (if any), and an output client class and/or an input listener class. Nothing else in
portabind needs editing to add one.
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from portabind.errors import UnsupportedOperation
from portabind.metadata import BindingMetadata

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Mapping

    from portabind.annotations import Annotations
    from portabind.events import BindingEvent, BindingResponse, Metadata

M = TypeVar("M", bound=BindingMetadata)


@functools.cache  # called on every output call, with the few operations bindings have
def _method_name(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


class OutputBinding(Generic[M]):
    """An output binding client. Each operation is a method named after it in snake case
    (`bulkGet` → `bulk_get`) taking the payload and the request metadata."""

    operations: ClassVar[tuple[str, ...]] = ("create",)

    def __init__(self, name: str, metadata: M) -> None:
        self.name = name
        self.metadata = metadata

    def invoke(self, operation: str, data: bytes, metadata: Metadata) -> BindingResponse:
        if operation not in self.operations:
            raise UnsupportedOperation(
                f"binding {self.name} does not support operation {operation!r}",
                hint=f"supported operations: {', '.join(self.operations)}",
            )
        method: Callable[[bytes, Metadata], BindingResponse] = getattr(
            self, _method_name(operation)
        )
        return method(data, metadata)

    def close(self) -> None:
        """Release connections; called when the runtime stops."""


class InputBinding(Generic[M]):
    """A local input listener used by `portabind run` and the Dapr target: it reads from the
    service, calls `deliver` for each message, and acknowledges only when `deliver` returns.
    When `deliver` raises, the message is left for the service to redeliver. `deliver`
    returns the handler's result, which a request/response input (the HTTP trigger) answers
    with. `annotations` are the component's `portabind.io/` annotations parsed into the
    binding's own model (`Binding.annotations`), None for a binding that reads none; a
    listener that reads them declares the attribute with its model's type."""

    annotations: Annotations | None

    def __init__(self, name: str, metadata: M, *, annotations: Annotations | None = None) -> None:
        self.name = name
        self.metadata = metadata
        self.annotations = annotations

    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        """Block, delivering messages, until `stop` is set."""
        raise NotImplementedError


@dataclass(frozen=True)
class Binding(Generic[M]):
    """What a binding module exports as `binding`."""

    metadata: type[M]
    #: The `portabind.io/` annotations the binding reads (its listener, its `provision`), or
    #: None when it reads none. Annotations a target reads too are declared here, once.
    annotations: type[Annotations] | None = None
    output: type[OutputBinding[M]] | None = None
    input: type[InputBinding[M]] | None = None
    #: Emulator this binding runs against under `portabind run --emulate`
    #: ("moto", "azurite", "gcs", "pubsub", "amqp"), several when it needs more than one
    #: (Event Hubs: the AMQP broker, and Azurite for its checkpoints), or None.
    emulator: str | tuple[str, ...] | None = None
    #: Metadata that points this binding at running emulators, given their endpoints by
    #: name (e.g. {"moto": "http://127.0.0.1:5000"}); these values replace the component's.
    emulate: Callable[[Mapping[str, str]], dict[str, str]] | None = None
    #: Creates the queue, bucket or topic the metadata names, if missing (emulator only).
    #: It may take a second positional argument, the component's annotations parsed into the model
    #: `annotations` names, for settings Dapr's metadata has no field for (an SQS
    #: dead-letter queue).
    provision: Callable[[M], None] | Callable[[M, Any], None] | None = None
    #: The distributions the binding imports, among those portabind declares (its extras'
    #: requirements): what a build lists for it. Empty: the whole extra of its family.
    requires: tuple[str, ...] = ()

    def provision_resource(self, metadata: M, annotations: Annotations | None) -> None:
        """Call `provision` (if any), with the annotations when it takes a second positional
        argument."""
        if self.provision is None:
            return
        positional = [
            parameter
            for parameter in inspect.signature(self.provision).parameters.values()
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
        ]
        if len(positional) > 1:
            cast("Callable[[M, Annotations | None], None]", self.provision)(metadata, annotations)
        else:
            cast("Callable[[M], None]", self.provision)(metadata)

    @property
    def emulators(self) -> tuple[str, ...]:
        """The emulators `emulator` names."""
        if self.emulator is None:
            return ()
        return (self.emulator,) if isinstance(self.emulator, str) else self.emulator

    @property
    def directions(self) -> frozenset[str]:
        return frozenset(
            d for d, cls in (("input", self.input), ("output", self.output)) if cls is not None
        )
