"""`portabind run`: the app on this machine, as a Dapr sidecar would run it.

One thread per input binding reads from the service (or its emulator under `--emulate`) and
hands each message to the handler in this process, or with `--app-port` to an app over Dapr's
app protocol, HTTP or gRPC (`app_channel`). A message is acknowledged only when the handler
returns (or the app took it); otherwise the listener leaves it for redelivery. Output
bindings are served over Dapr's HTTP API and, with a gRPC port, its gRPC API on 127.0.0.1, so
SDK code and `portabind invoke` reach the same clients the handlers use.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portabind.adapters.local import app_channel
from portabind.adapters.local.app_channel import APP_WAIT
from portabind.adapters.local.console import Console, LogToConsole, ReportingRuntime
from portabind.adapters.local.dapr_api import DEFAULT_MAX_REQUEST_MB, ApiConfig, DaprApi
from portabind.adapters.local.emulate import Emulators, default_state_dir
from portabind.events import Metadata
from portabind.resiliency import INBOUND
from portabind.tooling.notices import report
from portabind.tooling.project import check_project

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import FrameType

    from portabind.adapters.local.dapr_grpc import DaprGrpcApi
    from portabind.events import BindingEvent
    from portabind.resiliency import Engine
    from portabind.tooling.project import Project

#: Seconds a listener gets to finish its current message after the run is told to stop.
STOP_TIMEOUT = 30.0


@dataclass
class RunOptions:
    emulate: bool
    sends: list[tuple[str, bytes]]
    exit_after: int | None
    #: The Dapr HTTP API's port (`--dapr-http-port`).
    dapr_port: int
    #: Deliver input events to the app on this port instead of the in-process handlers.
    app_port: int | None
    app_protocol: str = "http"
    #: Seconds to wait for the app's port at start-up (`--app-wait-seconds`).
    app_wait: float = APP_WAIT
    #: What `/v1.0/metadata` reports as the app id (default: the project directory's name).
    app_id: str | None = None
    #: `--strict`: a warning found when checking the project stops the run before it starts.
    strict: bool = False
    #: The Dapr gRPC API's port; None serves no gRPC API (embedded runs, tests).
    dapr_grpc_port: int | None = None
    max_request_bytes: int = DEFAULT_MAX_REQUEST_MB << 20
    #: `DAPR_API_TOKEN`: callers of the APIs must send it.
    api_token: str | None = None
    #: `APP_API_TOKEN`: sent to the app with every delivery.
    app_api_token: str | None = None
    #: `--debug`: a failing handler shows its whole traceback, not only the app's line.
    debug: bool = False
    #: Where `portabind emulators up` records the emulators `emulate` uses when they run
    #: (default: the project's `.portabind/emulators`).
    emulators_state: Path | None = None


class _Run:
    """One `portabind run`: everything it started, so that `close` can stop it all."""

    def __init__(self, project: Project, options: RunOptions, stop: threading.Event) -> None:
        self.project = project
        self.options = options
        self.stop = stop
        self.console = Console(debug=options.debug)
        self.emulators = (
            Emulators(
                self.console,
                options.emulators_state or default_state_dir(project.directory),
            )
            if options.emulate
            else None
        )
        self.runtime: ReportingRuntime | None = None
        self.api: DaprApi | None = None
        self.grpc_api: DaprGrpcApi | None = None
        self.channel: app_channel.AppChannel | None = None
        self.threads: list[threading.Thread] = []
        self.crashed: list[str] = []
        self.handled = 0
        self._count_lock = threading.Lock()

    # -- start-up ----------------------------------------------------------------------
    def start(self) -> None:
        project, options = self.project, self.options
        # Under --emulate the emulators' endpoints and credentials replace the component's,
        # so references they replace need not resolve: those are checked with the
        # overrides applied, once the emulators are up (Emulators.provision).
        report(check_project(project, resolve_secrets=not options.emulate), strict=options.strict)
        if self.emulators is not None:
            self.emulators.start(project.components)
        self.runtime = ReportingRuntime(
            project.components,
            console=self.console,
            overrides=self.emulators.overrides if self.emulators else None,
        )
        if self.emulators is not None:
            self.emulators.provision(self.runtime)
        project.app.attach(self.runtime)
        config = ApiConfig(
            app_id=options.app_id or project.directory.resolve().name,
            api_token=options.api_token,
            app_port=options.app_port,
            app_protocol=options.app_protocol,
            max_request_bytes=options.max_request_bytes,
        )
        # The APIs first: a port already in use must stop the run before any message is read.
        self.api = DaprApi(self.runtime, options.dapr_port, config)
        self.api.start()
        if options.dapr_grpc_port is not None:
            from portabind.adapters.local.dapr_grpc import DaprGrpcApi

            self.grpc_api = DaprGrpcApi(self.runtime, options.dapr_grpc_port, config)
            self.grpc_api.start()
        if options.app_port is not None:
            self.channel = app_channel.connect(
                options.app_protocol, options.app_port, options.app_api_token, options.app_wait
            )
        self._start_listeners(self.runtime)
        self.console.info("Dapr API", f"{self.api.address}/v1.0/bindings/<name>")
        if self.grpc_api is not None:
            self.console.info("Dapr gRPC", self.grpc_api.address)
        for name, data in options.sends:
            self.runtime.output(name).invoke("create", data, Metadata())

    def _start_listeners(self, runtime: ReportingRuntime) -> None:
        components = self.project.components
        channel = self.channel
        if channel is None:
            names = list(self.project.app.handlers)
        else:
            inputs = [components.get(name) for name in runtime.names("input")]
            names = channel.subscriptions(inputs)
        if not names:
            self.console.warn(
                "no input binding has a handler: only the Dapr API runs"
                if channel is None
                else f"the app on port {channel.port} subscribes to no input binding: "
                "only the Dapr API runs"
            )
        for name in names:
            component = components.get(name)
            listener = runtime.input(name)
            handle: Callable[[BindingEvent], Any]
            if channel is None:
                label = self.project.app.handlers[name].function.__name__
                handle = self.project.app.handle
            else:
                label = channel.label(component)
                handle = functools.partial(channel.deliver, component)
            thread = threading.Thread(
                target=self._listen,
                args=(name, listener.listen, self._deliverer(label, handle, runtime.resiliency)),
                name=f"listener-{name}",
                daemon=True,
            )
            self.threads.append(thread)
            thread.start()
            self.console.info("listening", f"{name} ({component.type}) → {label}")

    def _deliverer(
        self, label: str, handle: Callable[[BindingEvent], Any], resiliency: Engine
    ) -> Callable[[BindingEvent], Any]:
        def deliver(event: BindingEvent) -> Any:
            self.console.received(event)
            started = time.perf_counter()
            try:
                # The inbound policies: retried here with their back-off before the listener
                # gives the message back to its source.
                result = resiliency.run(event.name, INBOUND, lambda: handle(event), stop=self.stop)
            except Exception as error:
                self.console.failed(label, error)
                self._count()  # --exit-after counts deliveries, whatever their outcome
                raise  # the listener leaves the message for redelivery
            self.console.handled(label, time.perf_counter() - started)
            self._count()
            return result  # an HTTP trigger answers with it

        return deliver

    def _count(self) -> None:
        with self._count_lock:
            self.handled += 1
            if self.options.exit_after is not None and self.handled >= self.options.exit_after:
                self.stop.set()

    def _listen(
        self,
        name: str,
        listen: Callable[[Callable[[BindingEvent], Any], threading.Event], None],
        deliver: Callable[[BindingEvent], Any],
    ) -> None:
        try:
            listen(deliver, self.stop)
        except BaseException as error:  # a handler's sys.exit() ends the thread just the same
            self.crashed.append(name)
            self.console.crashed(name, error)
            self.stop.set()
            return
        if not self.stop.is_set():
            self.crashed.append(name)
            self.console.warn(f"listener {name} stopped on its own")
            self.stop.set()

    # -- shutdown ----------------------------------------------------------------------
    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(STOP_TIMEOUT)
            if thread.is_alive():
                self.console.warn(f"{thread.name} did not stop within {STOP_TIMEOUT:g} s")
        if self.api is not None:
            self.api.stop()
        if self.grpc_api is not None:
            self.grpc_api.stop()
        if self.channel is not None:
            self.channel.close()
        if self.runtime is not None:
            self.runtime.close()
        if self.emulators is not None:
            self.emulators.stop()


def _on_signals(stop: threading.Event) -> Callable[[], None]:
    """Stop on SIGINT/SIGTERM; a second Ctrl-C interrupts at once. Returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals reach only the main thread (embedded runs, tests)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    for sig in previous:
        signal.signal(sig, handle)

    def undo() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return undo


def run(project: Project, options: RunOptions, *, stop: threading.Event | None = None) -> int:
    """Run until `exit_after` events were handled, SIGINT/SIGTERM, or `stop` is set (for
    embedding). Returns 0, or 1 if a listener crashed."""
    stop = stop if stop is not None else threading.Event()
    session = _Run(project, options, stop)
    undo = _on_signals(stop)
    logger = logging.getLogger("portabind")
    log_handler = LogToConsole(session.console)
    logger.addHandler(log_handler)
    try:
        session.start()
        stop.wait()
    finally:
        session.close()
        logger.removeHandler(log_handler)
        undo()
    if session.crashed:
        session.console.warn(f"stopped: listener(s) crashed: {', '.join(session.crashed)}")
        return 1
    session.console.info("stopped", f"{session.handled} event(s) handled")
    return 0
