"""The handler API: `App`, `@app.binding`, `app.invoke_binding`.

```python
app = App()

@app.binding("orders")
def on_order(order: Order, receipts: Output) -> None:
    receipts.invoke("create", data=order, metadata={"key": f"receipts/{order.id}.json"})
```

A handler takes the event (`BindingEvent`), or its payload parsed as a pydantic model,
`bytes`, `str` or JSON (`dict`/`list`); parameters annotated `Output` receive the output
binding named like the parameter (or `Annotated[Output, "component-name"]`). Handlers may
be sync or async. Returning acknowledges the event; raising fails it.
"""

from __future__ import annotations

import sys
import threading

from portabind.errors import AppError, UserError
from portabind.events import BindingEvent, BindingResponse, Metadata, to_bytes

# asyncio, inspect, typing and pydantic are imported where they are needed, not here:
# `import portabind` stays light for every process (a function's cold start, the CLI), and a
# handler's signature is read once, when it is registered. TYPE_CHECKING is the name alone,
# which is what type checkers look for.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    import inspect
    from collections.abc import Callable, Mapping
    from typing import Any

    from portabind.runtime import Runtime

    Handler = Callable[..., Any]


class Output:
    """An output binding handed to a handler by parameter."""

    def __init__(self, app: App, name: str) -> None:
        self._app = app
        self.name = name

    def invoke(
        self, operation: str, data: Any = None, metadata: Mapping[str, str] | None = None
    ) -> BindingResponse:
        return self._app.invoke_binding(self.name, operation, data=data, metadata=metadata)

    def __repr__(self) -> str:
        return f"Output({self.name!r})"


class PayloadError(ValueError):
    """The event payload does not fit the handler's parameter type; retrying cannot help."""


class Registration:
    """One input handler and how to call it, worked out once when it is registered."""

    __slots__ = ("arguments", "call", "component", "function", "is_async", "outputs", "payload")

    def __init__(
        self,
        component: str,
        function: Handler,
        payload: Callable[[BindingEvent], Any],
        outputs: Mapping[str, str],
        is_async: bool,
        arguments: Mapping[str, Output],
        call: Callable[[BindingEvent], Any],
    ) -> None:
        self.component = component
        self.function = function
        self.payload = payload
        self.outputs = outputs  # parameter name -> component name
        self.is_async = is_async
        #: The keyword arguments every call passes: each `Output` parameter's client.
        self.arguments = arguments
        #: The handler called with an event, as directly as its parameters allow: per
        #: record, this is most of what portabind adds to the handler's own time.
        self.call = call


def describe(function: Handler) -> str:
    """`file:line qualname` of a handler, for messages that must say where to fix it."""
    import inspect

    try:
        where = f"{inspect.getsourcefile(function)}:{function.__code__.co_firstlineno} "
    except (TypeError, AttributeError):  # builtins and callables without code
        where = ""
    return f"{where}{getattr(function, '__qualname__', repr(function))}"


def _the_event(event: BindingEvent) -> BindingEvent:
    return event


def _payload_reader(annotation: Any, qualname: str) -> Callable[[BindingEvent], Any]:
    import inspect
    import typing
    from typing import Any

    if annotation in (inspect.Parameter.empty, BindingEvent, Any):
        return _the_event
    if annotation is bytes:
        return lambda event: event.data
    if annotation is str:
        return lambda event: event.text()
    origin = typing.get_origin(annotation) or annotation
    if origin in (dict, list):
        return lambda event: event.json()
    # A pydantic model class exists only once pydantic is imported: without it, no
    # annotation can be one, and portabind does not import it to find that out.
    pydantic = sys.modules.get("pydantic")
    if (
        pydantic is not None
        and isinstance(annotation, type)
        and issubclass(annotation, pydantic.BaseModel)
    ):
        model: Any = annotation
        validation_error: type[Exception] = pydantic.ValidationError

        def parse(event: BindingEvent) -> Any:
            try:
                return model.model_validate_json(event.data)
            except validation_error as error:
                raise PayloadError(
                    f"event on {event.name!r} is not a valid {model.__name__}: {error}"
                ) from error

        return parse
    raise AppError(
        f"handler {qualname}: cannot pass an event as {annotation!r}",
        hint="annotate the first parameter as BindingEvent, a pydantic model, bytes, str, "
        "dict or list",
    )


def _output_name(parameter: inspect.Parameter, annotation: Any) -> str | None:
    import typing

    if annotation is Output:
        return parameter.name
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        if base is Output:
            names = [extra for extra in extras if isinstance(extra, str)]
            return names[0] if names else parameter.name
    return None


class App:
    """A portable app: input handlers by component name, output bindings by name."""

    def __init__(self) -> None:
        self._handlers: dict[str, Registration] = {}
        self._runtime: Runtime | None = None
        self._local = threading.local()

    # -- declaring ---------------------------------------------------------------------
    def binding(self, name: str) -> Callable[[Handler], Handler]:
        """Register the decorated function as the handler of input component `name`."""

        def register(function: Handler) -> Handler:
            self.add_handler(name, function)
            return function

        return register

    def add_handler(self, name: str, function: Handler) -> None:
        if name in self._handlers:
            other = self._handlers[name].function
            raise AppError(
                f"component {name!r} already has a handler ({describe(other)}); "
                f"cannot also register {describe(function)}"
            )
        import inspect
        import typing

        hints = typing.get_type_hints(function, include_extras=True)
        parameters = list(inspect.signature(function).parameters.values())
        payload: Callable[[BindingEvent], Any] = _the_event
        outputs: dict[str, str] = {}
        for index, parameter in enumerate(parameters):
            annotation = hints.get(parameter.name, inspect.Parameter.empty)
            output = _output_name(parameter, annotation)
            if output is not None:
                outputs[parameter.name] = output
            elif index == 0:
                payload = _payload_reader(annotation, describe(function))
            elif parameter.default is inspect.Parameter.empty:
                raise AppError(
                    f"handler {describe(function)}: parameter {parameter.name!r} is neither "
                    "the event nor an Output",
                    hint="annotate output bindings as Output (or Annotated[Output, 'name'])",
                )
        is_async = inspect.iscoroutinefunction(function)
        arguments = {parameter: Output(self, output) for parameter, output in outputs.items()}
        call = self._caller(function, payload, arguments, is_async=is_async)
        self._handlers[name] = Registration(
            name, function, payload, outputs, is_async, arguments, call
        )

    def _caller(
        self,
        function: Handler,
        payload: Callable[[BindingEvent], Any],
        arguments: Mapping[str, Output],
        *,
        is_async: bool,
    ) -> Callable[[BindingEvent], Any]:
        if is_async:
            return lambda event: self._loop().run_until_complete(
                function(payload(event), **arguments)
            )
        if payload is _the_event and not arguments:
            return function
        return lambda event: function(payload(event), **arguments)

    @property
    def handlers(self) -> Mapping[str, Registration]:
        return dict(self._handlers)

    # -- running -----------------------------------------------------------------------
    def attach(self, runtime: Runtime) -> None:
        """Give the app its output bindings (done by each target's adapter)."""
        self._runtime = runtime

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise AppError(
                "the app has no components attached",
                hint="run it through `portabind run` or a built target, or call app.attach()",
            )
        return self._runtime

    def invoke_binding(
        self,
        name: str,
        operation: str,
        data: Any = None,
        metadata: Mapping[str, str] | None = None,
    ) -> BindingResponse:
        """Call output binding `name` (the Dapr SDK's `invoke_binding` shape). `data` may be
        bytes, str, a pydantic model, or anything JSON-serialisable."""
        client = self.runtime.output(name)
        return client.invoke(operation, to_bytes(data), Metadata(metadata))

    async def ainvoke_binding(
        self,
        name: str,
        operation: str,
        data: Any = None,
        metadata: Mapping[str, str] | None = None,
    ) -> BindingResponse:
        import asyncio  # loaded already: this runs on an event loop

        return await asyncio.to_thread(self.invoke_binding, name, operation, data, metadata)

    def handle(self, event: BindingEvent) -> Any:
        """Run the handler of `event.name` and return its result; raises what it raises."""
        registration = self._handlers.get(event.name)
        if registration is None:
            raise UserError(f"no handler is registered for input binding {event.name!r}")
        return registration.call(event)

    async def handle_async(self, event: BindingEvent) -> Any:
        registration = self._handlers.get(event.name)
        if registration is not None and registration.is_async:
            return await registration.function(
                registration.payload(event), **registration.arguments
            )
        import asyncio  # loaded already: this runs on an event loop

        return await asyncio.to_thread(self.handle, event)

    def _loop(self) -> asyncio.AbstractEventLoop:
        # One loop per thread, reused across events: creating a loop per event costs more
        # than the handler on small messages.
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None or loop.is_closed():
            import asyncio

            loop = asyncio.new_event_loop()
            self._local.loop = loop
        return loop
