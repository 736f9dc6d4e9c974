"""`portabind emulators up | status | down`: the emulators of `portabind run --emulate` as a
process of their own, so that what they hold (queued messages, objects) outlives a runner that
stops, crashes or is killed.

`up` starts `python -m portabind.adapters.local.background COMPONENTS STATE_DIR` in a session
of its own (a terminal's Ctrl-C or hang-up does not reach it), its output going to
`emulators.log` in the state directory. That process starts the emulators the components need,
creates their queues, buckets and topics, writes `state.json` (its pid and each emulator's
endpoints) and serves until SIGTERM, when it stops them and removes the file. `up` returns
once the file is written. `run --emulate` and `invoke --emulate` read the file
(`emulate.Emulators`) and use the emulators it names. The emulators keep their state in the
process's memory: `down` ends it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from portabind.adapters.local.console import Console
from portabind.adapters.local.emulate import (
    STATE_FILE,
    Emulators,
    EmulatorsState,
    default_state_dir,
    needed,
    process_alive,
    read_state,
)
from portabind.adapters.local.emulators import port_accepts, stop_on_signals, stop_process
from portabind.errors import PortabindError, UserError
from portabind.runtime import Runtime
from portabind.tooling.project import load_components

__all__ = ["default_state_dir", "down", "status", "up"]

#: The emulators' output, beside the state file.
LOG_FILE = "emulators.log"
#: Seconds `up` waits for the emulators: a first Azurite install by npm takes a minute or so.
STARTUP_TIMEOUT = 180.0
#: Seconds `down` waits for the process to stop its emulators before it kills them all.
STOP_TIMEOUT = 30.0
#: The exit status of a user's mistake (the CLI's), and how its message starts in the log.
_USER_ERROR = 2
_ERROR = "error: "


def up(components: Path, state_dir: Path) -> int:
    """Start the emulators *components* need in a process of their own; return once they
    serve, with their endpoints printed."""
    component_set = load_components(components)  # a bad component is reported here, at once
    if not needed(component_set):
        raise UserError(
            f"no component in {components} uses an emulator",
            hint="`portabind bindings` lists what `run --emulate` emulates; the others need "
            "their own servers",
        )
    state = read_state(state_dir)
    if state is not None and state.serving():
        raise UserError(
            f"emulators are already up (pid {state.pid}, for {state.components})",
            hint="`portabind emulators status` shows them; `portabind emulators down` stops them",
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / STATE_FILE).unlink(missing_ok=True)  # a stale one would be taken for ours
    log = state_dir / LOG_FILE
    print(f"starting the emulators of {components} (log: {log})", file=sys.stderr, flush=True)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(components.resolve()), str(state_dir.resolve())],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            # Not the project directory: a `portabind/` folder there would shadow the package.
            cwd=state_dir,
            start_new_session=True,
        )
    state = _wait_for_state(process, state_dir, log)
    print(_describe(state))
    return 0


def _wait_for_state(process: subprocess.Popen[bytes], state_dir: Path, log: Path) -> EmulatorsState:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        state = read_state(state_dir)
        if state is not None and state.pid == process.pid:
            return state
        code = process.poll()
        if code is not None:
            text = log.read_text(encoding="utf-8", errors="replace")
            if code == _USER_ERROR:  # the process's own message says what to fix
                raise UserError(text[text.rfind(_ERROR) + len(_ERROR) :].strip())
            raise PortabindError(
                f"the emulators did not start (exit {code}); {log} ends:\n{_tail(text)}"
            )
        if time.monotonic() > deadline:
            stop_process(process)
            raise PortabindError(
                f"the emulators did not start within {STARTUP_TIMEOUT:g} s; {log} ends:\n"
                + _tail(log.read_text(encoding="utf-8", errors="replace"))
            )
        time.sleep(0.1)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:]) or "(nothing)"


def _describe(state: EmulatorsState) -> str:
    lines = [f"emulators up (pid {state.pid}) for {state.components}:"]
    width = max(len(name) for name in state.emulators)
    for name, record in state.emulators.items():
        addresses = "  ".join(f"{k}={v}" for k, v in {**record.endpoints, **record.environ}.items())
        lines.append(f"  {name:<{width}}  {addresses}  ({', '.join(record.components)})")
    return "\n".join(lines)


def status(state_dir: Path) -> int:
    """Print what runs where; 0 when the emulators are up, 1 when not."""
    state = read_state(state_dir)
    if state is None:
        print(f"no emulators are up (no {state_dir / STATE_FILE})")
        return 1
    if not state.serving():
        print(
            f"the emulators recorded in {state_dir / STATE_FILE} (pid {state.pid}) no longer "
            "run; `portabind emulators down` removes the file"
        )
        return 1
    print(_describe(state))
    return 0


def down(state_dir: Path) -> int:
    """Stop the emulators of `up` and wait until their ports are free; remove a stale state
    file. Nothing up is not an error."""
    path = state_dir / STATE_FILE
    try:
        state = read_state(state_dir)
    except UserError as error:
        path.unlink(missing_ok=True)
        print(f"{error.message}: removed it")
        return 0
    if state is None:
        print(f"no emulators are up (no {path})")
        return 0
    if not state.serving():
        left = _stop_leftovers(state)
        path.unlink(missing_ok=True)
        stopped = "; stopped what it had started" if left else ""
        print(
            f"the emulators recorded in {path} (pid {state.pid}) no longer ran: removed it{stopped}"
        )
        return 0
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while process_alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if process_alive(state.pid):
        # Its session holds the emulators' own processes (Azurite, ...): they go with it.
        os.killpg(state.pid, signal.SIGKILL)
        while process_alive(state.pid):
            time.sleep(0.05)
    _wait_until_free(_ports(state), deadline)
    path.unlink(missing_ok=True)
    print(f"stopped the emulators (pid {state.pid}): {', '.join(state.emulators)}")
    return 0


def _ports(state: EmulatorsState) -> list[int]:
    return [port for record in state.emulators.values() for port in record.ports()]


def _wait_until_free(ports: list[int], deadline: float) -> bool:
    """Whether every port stopped accepting connections before `deadline`."""
    while any(port_accepts(port) for port in ports):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _stop_leftovers(state: EmulatorsState) -> bool:
    """Stop what `up`'s process left running when it died without stopping it (killed with
    SIGKILL): its session's emulator processes (Azurite, ...), which would hold their ports
    for ever. The session's id is that pid, used only once the process is gone (a pid is not
    given to a new process while a group of that id has members). True when some were left."""
    if process_alive(state.pid):  # the pid is another process's now: not ours to signal
        return False
    try:
        os.killpg(state.pid, signal.SIGTERM)
    except ProcessLookupError:  # nothing was left
        return False
    if not _wait_until_free(_ports(state), time.monotonic() + STOP_TIMEOUT):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(state.pid, signal.SIGKILL)
        _wait_until_free(_ports(state), time.monotonic() + STOP_TIMEOUT)
    return True


def serve(components: Path, state_dir: Path) -> None:
    """The process `up` starts: the emulators, their resources, the state file, then wait for
    SIGTERM or SIGINT."""
    stopping = stop_on_signals()
    component_set = load_components(components)
    emulators = Emulators(Console(sys.stdout))
    path = state_dir / STATE_FILE
    try:
        emulators.start(component_set)
        runtime = Runtime(component_set, overrides=emulators.overrides)
        try:
            emulators.provision(runtime)
        finally:
            runtime.close()
        state = EmulatorsState(
            pid=os.getpid(), components=str(components), emulators=emulators.started
        )
        # Written whole, then renamed: a reader never sees half a file.
        partial = path.with_suffix(".partial")
        partial.write_text(state.model_dump_json(indent=2), encoding="utf-8")
        partial.replace(path)
        print(f"up (pid {os.getpid()}); `portabind emulators down` stops them", flush=True)
        stopping.wait()
    finally:
        path.unlink(missing_ok=True)
        emulators.stop()
        print("stopped", flush=True)


def main(argv: list[str]) -> int:
    components, state_dir = (Path(arg) for arg in argv)
    try:
        serve(components, state_dir)
    except UserError as error:
        print(f"{_ERROR}{error.render()}", flush=True)
        return _USER_ERROR
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
