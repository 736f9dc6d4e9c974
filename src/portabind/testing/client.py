"""`TestClient`: run an app's handlers in-process, through the entry a build generates.

`send` builds the platform's event for the input component (`portabind.testing.events`) and
hands it to the callable the target's runtime makes for that trigger kind
(`Function.<kind>(component)`, named by the target's `Trigger.entry`), so the event goes
through the same normalization, batching and failure reporting as in the deployed function.
Output calls are recorded, not sent, unless `outputs="real"`.

This module is tooling: it loads YAML and reaches adapters through `portabind.tooling.targets`,
and a build never bundles it.
"""

from __future__ import annotations

import inspect
import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from portabind.app import App
from portabind.binding import OutputBinding
from portabind.components import REFERENCE
from portabind.errors import UserError
from portabind.events import BindingResponse, Metadata, to_bytes
from portabind.runtime import Runtime
from portabind.secrets import secret_env_name
from portabind.testing import deliveries
from portabind.testing.results import OutputCall, SendResult
from portabind.tooling import targets
from portabind.tooling.project import read_components

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import TracebackType
    from typing import Self

    from portabind.components import ComponentSet
    from portabind.events import BindingEvent
    from portabind.testing.deliveries import Delivery

#: The targets whose bindings carry their name (`bindings.aws.sqs`), for inferring one.
_CLOUDS = ("aws", "azure", "gcp")
LOCAL = "local"


class _RecordedOutput(OutputBinding[Any]):
    """An output binding that records each call and answers it with the response the test
    set for the operation (`TestClient.respond`), else an empty one."""

    def __init__(
        self,
        name: str,
        operations: Sequence[str],
        calls: list[OutputCall],
        responses: Mapping[tuple[str, str], BindingResponse],
    ) -> None:
        super().__init__(name, None)
        # `operations` is a class attribute of binding classes: answer for the real one.
        setattr(self, "operations", tuple(operations))  # noqa: B010
        self._calls = calls
        self._responses = responses

    def invoke(self, operation: str, data: bytes, metadata: Metadata) -> BindingResponse:
        if operation not in self.operations:
            return super().invoke(operation, data, metadata)  # refuses it as the real one does
        self._calls.append(OutputCall(operation, data, dict(metadata.items())))
        return self._responses.get((self.name, operation), BindingResponse())


class _RecordingRuntime(Runtime):
    """The components' runtime with every output binding recorded: no client is made, so
    no connection is opened and no output secret is resolved."""

    def __init__(
        self,
        components: ComponentSet,
        calls: defaultdict[str, list[OutputCall]],
        environ: Mapping[str, str],
    ) -> None:
        super().__init__(components, environ=environ)
        self._calls = calls
        self._recorded: dict[str, _RecordedOutput] = {}
        #: What each (component, operation) answers; `TestClient.respond` sets them.
        self.responses: dict[tuple[str, str], BindingResponse] = {}

    def output(self, name: str) -> OutputBinding[Any]:
        if name not in self._recorded:
            _, binding = self.output_binding(name)
            assert binding.output is not None  # output_binding refuses the others
            self._recorded[name] = _RecordedOutput(
                name, binding.output.operations, self._calls[name], self.responses
            )
        return self._recorded[name]


class _ObservedApp(App):
    """The user's app, its handlers' exceptions kept: a platform that reports only record ids
    (SQS's partial batch response) or its own error still lets `send` show the handler's.
    It shares the user's app's state (handlers, runtime), so it is that app."""

    __slots__ = ("errors",)  # kept apart from the shared state

    errors: list[BaseException]

    @classmethod
    def of(cls, app: App) -> _ObservedApp:
        observed = cls.__new__(cls)
        observed.__dict__ = app.__dict__
        observed.errors = []
        return observed

    def handle(self, event: BindingEvent) -> Any:
        try:
            return super().handle(event)
        except Exception as error:
            self.errors.append(error)
            raise


def _components_dir(app: App, components: str | Path) -> Path:
    """`components` as given, else relative to the app's module (a test run from elsewhere
    than the project directory)."""
    path = Path(components)
    if path.is_absolute() or path.is_dir():
        return path
    for registration in app.handlers.values():
        source = inspect.getsourcefile(registration.function)
        if source is not None and (Path(source).parent / path).is_dir():
            return Path(source).parent / path
    return path


def infer_target(component_set: ComponentSet) -> str:
    """The cloud whose binding types the profile uses, when it uses one cloud's only;
    otherwise `local` (events handed to the app as `portabind run` does)."""
    clouds = {
        component.type.split(".")[1]
        for component in component_set.bindings()
        if component.type.split(".")[1] in _CLOUDS
    }
    return clouds.pop() if len(clouds) == 1 else LOCAL


def _placeholder_secrets(component_set: ComponentSet) -> dict[str, str]:
    """A stand-in for every reference, in the variables a cloud target hands secrets in: a
    recorded run resolves no secret (the input metadata parses, nothing connects)."""
    return {
        secret_env_name(component.name, key): REFERENCE
        for component in component_set.bindings()
        for key, value in component.binding_values().items()
        if value.is_reference
    }


class TestClient:
    """Sends events to an app's handlers in the target platform's shape, in-process.

    ```python
    with TestClient(app, components="components/aws") as client:
        result = client.send("orders", {"id": 1})
        assert result.ok
        assert client.outputs["receipts"][0].json() == {...}
    ```
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        app: App,
        components: str | Path = "components",
        *,
        target: str | None = None,
        outputs: Literal["recorded", "real"] = "recorded",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """`components` is a profile directory (relative to the working directory, or to the
        app's module); `target` defaults to the cloud its binding types belong to, else
        `local`. `outputs="real"` calls the real output bindings (against what the
        components point at, emulators included) and resolves their secrets from
        `environ` (default: the process environment) or the secret stores."""
        if outputs not in ("recorded", "real"):
            raise ValueError(f"outputs must be 'recorded' or 'real', not {outputs!r}")
        self.app = app
        used = {
            name
            for registration in app.handlers.values()
            for name in (registration.component, *registration.outputs.values())
        }
        self.components = read_components(_components_dir(app, components), used=used)[0]
        self.target = target or infer_target(self.components)
        if self.target != LOCAL and self.target not in deliveries.BY_TARGET:
            raise UserError(
                f"the test client sends no events in the shape of target {self.target!r}",
                hint=f"targets it sends to: {', '.join([*deliveries.BY_TARGET, LOCAL])}",
            )
        #: The calls of each output binding, by component name (recorded outputs only).
        self.outputs: defaultdict[str, list[OutputCall]] = defaultdict(list)
        environment = dict(os.environ if environ is None else environ)
        self.runtime: Runtime
        if outputs == "recorded":
            environment.update(_placeholder_secrets(self.components))
            self.runtime = _RecordingRuntime(self.components, self.outputs, environment)
        else:
            self.runtime = Runtime(self.components, environ=environment)
        self._environ = environment
        self._observed = _ObservedApp.of(app)
        self._function: Any = None
        self._entries: dict[str, Callable[..., Any]] = {}
        app.attach(self.runtime)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the output clients (real outputs)."""
        self.runtime.close()

    def respond(
        self,
        name: str,
        operation: str,
        data: Any = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Make recorded output `name` answer `operation` with `data` (bytes, text or JSON)
        and `metadata` from now on: what a handler reads back (a `get` of an object)."""
        if not isinstance(self.runtime, _RecordingRuntime):
            raise UserError(
                "respond sets what recorded outputs answer; with outputs='real' the bindings "
                "answer themselves",
                hint="put the data where the component points, or record the outputs",
            )
        component, binding = self.runtime.output_binding(name)
        assert binding.output is not None  # output_binding refuses the others
        if operation not in binding.output.operations:
            raise UserError(
                f"{name!r} ({component.type}) has no operation {operation!r} to answer",
                hint=f"its operations: {', '.join(binding.output.operations)}",
            )
        self.runtime.responses[(name, operation)] = BindingResponse(
            to_bytes(data), Metadata(metadata)
        )

    def send(
        self, name: str, data: Any = None, metadata: Mapping[str, str] | None = None
    ) -> SendResult:
        """Deliver one message to the input component `name`, as its platform would: `data`
        is the payload (bytes, text, or JSON), `metadata` what the platform carries beside
        it (user attributes, an object's `key`, an HTTP `method`, `path` and headers, ...)."""
        return self.send_batch(name, [data], metadata)

    def send_batch(
        self, name: str, items: Sequence[Any], metadata: Mapping[str, str] | None = None
    ) -> SendResult:
        """Deliver `items` as one batch where the platform batches (SQS, Kinesis, DynamoDB,
        Kafka and MQ on Lambda, Event Hubs and Cosmos DB on Azure), else one invocation
        each; `failed` lists the ids of the records the platform would deliver again."""
        if name not in self.app.handlers:
            raise UserError(f"no handler is registered for input binding {name!r}")
        component = self.components.get(name)
        payloads = [to_bytes(item) for item in items]
        self._observed.errors.clear()
        if self.target == LOCAL:
            result = deliveries.local(self._observed, name, payloads, Metadata(metadata))
        else:
            delivery, entry = self._delivery(name)
            result = delivery(deliveries.Send(entry, component, payloads, dict(metadata or {})))
        if self._observed.errors:
            result.error = self._observed.errors[0]
        return result

    def _delivery(self, name: str) -> tuple[Delivery, Callable[..., Any]]:
        component = self.components.get(name)
        found = targets.target(self.target)
        trigger = found.trigger(component.type)
        if trigger is None:
            instead = found.fallbacks.get(component.type)
            raise UserError(
                f"{name!r} ({component.type}) has no native trigger on {self.target}",
                hint=f"on {self.target}: {instead}" if instead else "test it with target='local'",
            )
        kind = trigger.entry.__name__
        delivery = deliveries.BY_TARGET[self.target].get(kind)
        if delivery is None:  # a trigger the target gained that the test client lacks
            raise UserError(
                f"the test client cannot send {self.target}'s {trigger.native} events yet",
                hint="test it with target='local'",
            )
        if name not in self._entries:
            if self._function is None:
                function_class = targets.adapter(self.target, "runtime").Function
                self._function = function_class(self._observed, self.runtime, self._environ)
            # One callable per component, made once as a worker makes it at cold start.
            options = found.entry_options(trigger, component)
            self._entries[name] = trigger.entry(self._function, name, **options)
        return delivery, self._entries[name]
