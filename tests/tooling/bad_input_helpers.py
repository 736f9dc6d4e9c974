"""Projects whose components directory holds given files, for the tests of bad input
(tests/tooling/test_bad_inputs.py, test_fuzz_validate.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

APP = "from portabind import App\n\napp = App()\n"

S3_COMPONENT = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: {name}
spec:
  type: {type}
  version: v1
  metadata:
  - name: bucket
    value: receipts
  - name: region
    value: us-east-1
"""


def s3_component(name: str = "receipts", type_string: str = "bindings.aws.s3") -> str:
    return S3_COMPONENT.format(name=name, type=type_string)


def resiliency(spec: str) -> str:
    """A Resiliency document named `policies` with `spec` (indented YAML) as its spec."""
    return (
        "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: policies\nspec:\n"
        + spec
    )


def write_project(directory: Path, files: dict[str, str | bytes], app: str = APP) -> Path:
    """A project in `directory`: `app.py`, and `files` in its components directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(app)
    components = directory / "components"
    components.mkdir()
    for name, content in files.items():
        if isinstance(content, bytes):
            (components / name).write_bytes(content)
        else:
            (components / name).write_text(content, encoding="utf-8")
    return directory
