"""`portabind invoke NAME OPERATION`: call an output binding.

When something answers on the Dapr port (a `portabind run`, or a real Dapr sidecar), the call
goes through its HTTP API, so it reaches the same emulators and clients the running app uses.
Otherwise the binding is called in this process, only when asked: against emulators
(`--emulate`: those of `portabind emulators up` when they run, else ones started for this
call), or the services an explicitly named profile names (`--components`); a bare `invoke`
never reaches a cloud by accident.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from portabind.adapters.local.console import Console
from portabind.adapters.local.dapr_api import BINDINGS_PATH, HOST
from portabind.adapters.local.emulate import Emulators, default_state_dir
from portabind.adapters.local.emulators import port_accepts
from portabind.appprotocol import TOKEN_HEADER
from portabind.errors import BindingError, UnsupportedOperation, UserError
from portabind.events import BindingResponse, Metadata
from portabind.runtime import Runtime
from portabind.tooling.project import components_dir, load_components

if TYPE_CHECKING:
    from collections.abc import Mapping
    from email.message import Message
    from pathlib import Path

#: Seconds to wait for a binding call through the API (uploads can be slow).
TIMEOUT = 60.0
_HEADER_PREFIX = "metadata."
#: daprd's messages for mistakes in the request itself (dapr/dapr
#: `pkg/runtime/processor/binding/send.go`).
_REQUEST_MISTAKES = ("couldn't find output binding", "operation field is missing")


def invoke(
    name: str,
    operation: str,
    *,
    data: bytes,
    metadata: Mapping[str, str],
    dapr_port: int,
    directory: Path,
    components: Path | None,
    api_token: str | None = None,
    emulate: bool = False,
    in_process: bool = True,
    emulators_state: Path | None = None,
) -> BindingResponse:
    """`api_token` is the running API's `DAPR_API_TOKEN`, if it has one. With no API on
    `dapr_port`, the call is made here against emulators (`emulate`: those of `portabind
    emulators up` recorded in `emulators_state`, default the project's, else embedded ones),
    or the components' own services when `in_process` (the caller named a profile), else
    refused."""
    if port_accepts(dapr_port, HOST):
        return _over_http(name, operation, data, metadata, dapr_port, api_token)
    if not (emulate or in_process):
        raise UserError(
            f"nothing answers on {HOST}:{dapr_port}: no `portabind run` or Dapr sidecar to "
            "call through",
            hint="start `portabind run DIR --emulate` and invoke again; or add --emulate "
            "(embedded emulators, for this call) or --components PROFILE (the services it names)",
        )
    component_set = load_components(components_dir(directory, components))
    state_dir = emulators_state or default_state_dir(directory)
    emulators = Emulators(Console(sys.stderr), state_dir) if emulate else None
    runtime = Runtime(component_set, overrides=emulators.overrides if emulators else None)
    try:
        if emulators is not None:
            emulators.start(component_set)
            emulators.provision(runtime)
        return runtime.output(name).invoke(operation, data, Metadata(metadata))
    finally:
        runtime.close()
        if emulators is not None:
            emulators.stop()


def _json_data(data: bytes) -> Any:
    """What to put in the request's `data` so that the sidecar's `json.Marshal` hands the
    binding these bytes: JSON as its value, anything else as a string."""
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", errors="surrogateescape")


def _response_metadata(headers: Message) -> Metadata:
    return Metadata(
        {
            key[len(_HEADER_PREFIX) :]: value
            for key, value in headers.items()
            if key.lower().startswith(_HEADER_PREFIX)
        }
    )


def _over_http(
    name: str,
    operation: str,
    data: bytes,
    metadata: Mapping[str, str],
    port: int,
    api_token: str | None,
) -> BindingResponse:
    body: dict[str, Any] = {"operation": operation, "metadata": dict(metadata)}
    if data:  # without data the sidecar passes `null`, as it does for any caller
        body["data"] = _json_data(data)
    headers = {"Content-Type": "application/json"}
    if api_token:
        headers[TOKEN_HEADER] = api_token
    request = urllib.request.Request(
        f"http://{HOST}:{port}{BINDINGS_PATH}{name}",
        data=json.dumps(body).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            content = answer.read()
            returned = _response_metadata(answer.headers)
            return BindingResponse(None if answer.status == 204 else content, returned)
    except urllib.error.HTTPError as error:
        raise _error(name, operation, port, error.code, error.read()) from None
    except OSError as error:
        detail = f"the Dapr API on port {port} failed: {error}"
        raise BindingError(name, operation, detail) from None


def _error(name: str, operation: str, port: int, status: int, content: bytes) -> Exception:
    if status == 401:
        return UserError(
            f"the Dapr API on 127.0.0.1:{port} refused the API token",
            hint="set DAPR_API_TOKEN to the token the running app was started with",
        )
    try:
        answer = json.loads(content)
        code, message = str(answer["errorCode"]), str(answer["message"])
    except (ValueError, KeyError, TypeError):
        return UserError(
            f"something answers on 127.0.0.1:{port}, but not as the Dapr HTTP API (HTTP {status})",
            hint="pass --dapr-http-port with the port of `portabind run` or of a Dapr sidecar",
        )
    if code == "ERR_MALFORMED_REQUEST":
        return UserError(message)
    reason = message.removeprefix(f"error invoking output binding {name}: ")
    if "does not support operation" in reason:
        return UnsupportedOperation(message)
    if reason.startswith(_REQUEST_MISTAKES):
        return UserError(message, hint="`portabind run` lists its output bindings at start-up")
    return BindingError(name, operation, reason)
