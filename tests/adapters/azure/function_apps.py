"""A function app built from components and called as the Functions worker calls it, for the
Azure trigger tests (test_triggers, test_messaging_triggers, test_event_triggers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import yaml

from portabind.adapters.azure import build as azure_build
from portabind.tooling.project import check_project, load_project

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

#: The start of every driver: OUT first on sys.path, as the Functions worker puts the app;
#: the app's functions as the azure-functions library indexes them, each one's function.json
#: and retry settings in `result`; `call` runs a function, `outcome` says how it ended.
_DRIVER_HEAD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import function_app

functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
result = {
    name: {"doc": json.loads(f.get_function_json()), "retry": f.get_settings_dict("retry_policy")}
    for name, f in functions.items()
}
call = lambda name, *args: functions[name].get_user_function()(*args)


def outcome(name, *args):
    try:
        call(name, *args)
    except Exception as error:
        return type(error).__name__
    return "returned"
"""


def write_project(tmp_path: Path, app: str, documents: Iterable[dict[str, Any]]) -> Path:
    """A project in `tmp_path/project`: `app` as app.py, the documents in one components file."""
    root = tmp_path / "project"
    (root / "components").mkdir(parents=True)
    (root / "app.py").write_text(app)
    (root / "components" / "all.yaml").write_text(yaml.safe_dump_all(list(documents)))
    return root


def build(root: Path, out: Path) -> None:
    project = load_project(root, root / "components")
    check_project(project, resolve_secrets=False)
    azure_build.build(project, out)


def run_python(
    out: Path, source: str, *arguments: str, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """`source` in a fresh interpreter in `out` (its `sys.argv[1]`, then `arguments`), with
    `environ` added to ours; the JSON object it printed last."""
    completed = subprocess.run(
        [sys.executable, "-c", source, str(out), *arguments],
        cwd=out,
        env={**os.environ, **(environ or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def run_driver(out: Path, driver: str, record: Path) -> dict[str, Any]:
    """`driver` (after the common head) in a fresh interpreter, on the app built in `out`,
    its handlers recording to `record`; the `result` it made."""
    source = f"{_DRIVER_HEAD}\n{driver}\nprint(json.dumps(result))\n"
    return run_python(out, source, environ={"RECORD_PATH": str(record)})


def recorded_events(record: Path) -> list[dict[str, Any]]:
    """The events the handlers recorded."""
    return [json.loads(line) for line in record.read_text().splitlines()]
