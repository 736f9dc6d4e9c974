"""A real functions-framework process serving a GCP build, for the GCP target's tests."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from portabind.adapters.local.emulators import free_port
from tests.helpers import http_status, server_fixture, serving

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@server_fixture("functions-framework")
def functions_framework(tmp_path: Path) -> Iterator[Callable[[Path, str, str], str]]:
    """`functions_framework(out, target, signature_type)` serves function `target` of
    out/main.py (signature type ``http`` or ``cloudevent``) in a `functions-framework` process
    that inherits this process's environment; returns its base URL once it answers HTTP.
    Stopped at the end of the test."""
    executable = Path(sys.executable).with_name("functions-framework")
    with ExitStack() as processes:

        def serve(out: Path, target: str, signature_type: str) -> str:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            command = [str(executable), "--target", target, "--source", "main.py"]
            command += ["--signature-type", signature_type, "--host", "127.0.0.1"]
            command += ["--port", str(port)]
            processes.enter_context(
                serving(
                    command,
                    port,
                    tmp_path / f"functions-framework-{port}.log",
                    # Any answer will do: a GET reaches no binding's handler.
                    ready=lambda: http_status(f"{url}/health-probe") is not None,
                    cwd=out,
                )
            )
            return url

        yield serve
