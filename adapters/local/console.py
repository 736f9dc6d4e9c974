"""What `portabind run` prints: short lines a person reads while the app runs, not a log.

```
● moto        http://127.0.0.1:41231
● provisioned orders (bindings.aws.sqs), receipts (bindings.aws.s3)
● listening   orders (bindings.aws.sqs) → on_order
● Dapr API    http://127.0.0.1:3500/v1.0/bindings/<name>
▸ orders  received  messageId=5d0c…
→ receipts.create  key=receipts/1.json
✓ on_order  12 ms
✗ on_order  ValueError: bad order (left for redelivery)
```

Only request metadata and the event's identifier are printed, never component metadata, so
secrets (which live in component metadata) cannot reach the terminal. Colour only on a TTY.
"""

from __future__ import annotations

import logging
import re
import sys
import sysconfig
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from portabind.binding import OutputBinding
from portabind.runtime import Runtime

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from portabind.binding import Binding
    from portabind.components import Component, ComponentSet
    from portabind.events import BindingEvent, BindingResponse, Metadata

#: Metadata keys that identify a message, in the order they are looked for (Dapr's names
#: first, then the platforms' own, as events name them: docs/events.md).
_ID_KEYS = ("messageId", "messageID", "id", "key", "blobName", "eventID", "__offset", "readTimeUTC")
_MAX_VALUE = 60
_SENSITIVE = re.compile(r"auth|token|secret|password|signature|credential|cookie|sas", re.I)

_RESET = "\033[0m"
_COLOURS = {"dim": "\033[2m", "green": "\033[32m", "red": "\033[31m", "cyan": "\033[36m"}


def _short(value: str) -> str:
    return value if len(value) <= _MAX_VALUE else value[: _MAX_VALUE - 1] + "…"


def _message(error: BaseException) -> str:
    """The first line of an error (pydantic's run to several) as `Type: message`."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


#: Where code that is not the app's lives: portabind, the standard library, installed packages.
_LIBRARY_DIRS = (
    # Not resolved: a checkout's `src/portabind/adapters` is a link to the root's `adapters`.
    str(Path(__file__).parents[2]),
    *sorted({sysconfig.get_path(kind) for kind in ("stdlib", "platstdlib", "purelib", "platlib")}),
)


def _app_frame(error: BaseException) -> str | None:
    """`file:line` of the innermost frame of the app's own code in `error`'s traceback."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename)
        if frame.filename.startswith(("<", *_LIBRARY_DIRS)):
            continue
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        return f"{shown}:{frame.lineno}"
    return None


def _shown(key: str, value: str) -> str:
    # Request metadata can carry credentials (the http binding sends it as headers).
    return "***" if _SENSITIVE.search(key) else _short(value)


def _pairs(metadata: Mapping[str, str]) -> str:
    return "  ".join(f"{key}={_shown(key, value)}" for key, value in metadata.items())


class Console:
    """Writes run-time lines to `stream` (stdout by default); safe from many threads."""

    def __init__(self, stream: TextIO | None = None, *, debug: bool = False) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._debug = debug
        self._colour = self._stream.isatty()
        self._lock = threading.Lock()
        self._reported = threading.local()  # the failure last shown, per listener thread

    def _paint(self, text: str, colour: str) -> str:
        return f"{_COLOURS[colour]}{text}{_RESET}" if self._colour else text

    def _line(self, text: str) -> None:
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()

    # -- start-up ----------------------------------------------------------------------
    def info(self, label: str, text: str) -> None:
        self._line(f"{self._paint('●', 'cyan')} {label:<11} {text}")

    def warn(self, text: str) -> None:
        self._line(f"{self._paint('!', 'red')} {text}")

    # -- events ------------------------------------------------------------------------
    def received(self, event: BindingEvent) -> None:
        ident = next(
            (f"{key}={_short(event.metadata[key])}" for key in _ID_KEYS if key in event.metadata),
            f"{len(event.data)} bytes",
        )
        self._line(f"{self._paint('▸', 'cyan')} {event.name}  received  {ident}")

    def handled(self, handler: str, seconds: float) -> None:
        self._line(f"{self._paint('✓', 'green')} {handler}  {seconds * 1000:.0f} ms")

    def failed(self, handler: str, error: BaseException) -> None:
        """The failure in one line, at the app's own line that raised it; with `debug`, the
        whole traceback after it."""
        self._reported.error = error
        where = _app_frame(error)
        self._line(
            f"{self._paint('✗', 'red')} {handler}  {_message(error)} "
            + (f"at {where} " if where else "")
            + self._paint("(left for redelivery)", "dim")
        )
        if self._debug:
            self._line("".join(traceback.format_exception(error)).rstrip())

    def reported(self, record: logging.LogRecord) -> bool:
        """Whether a log record is about the handler failure this thread just showed (a
        listener logs it as it leaves the message for redelivery)."""
        error = getattr(self._reported, "error", None)
        args = record.args if isinstance(record.args, tuple) else ()
        return error is not None and any(arg is error for arg in args)

    def crashed(self, listener: str, error: BaseException) -> None:
        self._line(f"{self._paint('✗', 'red')} listener {listener} crashed: {_message(error)}")

    def output(self, name: str, operation: str, metadata: Metadata) -> None:
        details = f"  {_pairs(metadata)}" if metadata else ""
        self._line(f"{self._paint('→', 'cyan')} {name}.{operation}{details}")

    def output_failed(self, name: str, operation: str, error: BaseException) -> None:
        self._line(f"{self._paint('✗', 'red')} {name}.{operation}  {_message(error)}")


class LogToConsole(logging.Handler):
    """Shows the warnings bindings log (a failed receive, a lost connection) as console
    lines instead of a log dump; attach it to the `portabind` logger for a run."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.WARNING)
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        if self._console.reported(record):
            return
        lines = record.getMessage().strip().splitlines()
        self._console.warn(lines[0] if lines else record.name)


class _ReportedOutput(OutputBinding[Any]):
    """An output client that reports each call, then does exactly what the wrapped one does."""

    def __init__(self, inner: OutputBinding[Any], console: Console) -> None:
        super().__init__(inner.name, inner.metadata)
        # `operations` is a class attribute of binding classes; this wrapper answers for
        # whichever class it wraps.
        setattr(self, "operations", inner.operations)  # noqa: B010
        self._inner = inner
        self._console = console

    def invoke(self, operation: str, data: bytes, metadata: Metadata) -> BindingResponse:
        self._console.output(self.name, operation, metadata)
        try:
            return self._inner.invoke(operation, data, metadata)
        except Exception as error:
            self._console.output_failed(self.name, operation, error)
            raise

    def close(self) -> None:
        self._inner.close()


class ReportingRuntime(Runtime):
    """A `Runtime` whose output clients report their calls on a `Console`."""

    def __init__(
        self,
        components: ComponentSet,
        *,
        console: Console,
        overrides: Callable[[Component, Binding[Any]], Mapping[str, str]] | None = None,
    ) -> None:
        super().__init__(components, overrides=overrides)
        self.console = console

    def output(self, name: str) -> OutputBinding[Any]:
        return _ReportedOutput(super().output(name), self.console)
