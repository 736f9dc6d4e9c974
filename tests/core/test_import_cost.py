"""`import portabind` must not import any cloud SDK (cold start on every target)."""

from __future__ import annotations

import subprocess
import sys

SDK_PREFIXES = ("boto3", "botocore", "azure", "google", "grpc", "moto", "aws_lambda_powertools")


def modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    return set(result.stdout.split())


def test_importing_the_core_imports_no_cloud_sdk() -> None:
    # Namespace-package .pth files (google, google.cloud) are loaded by `site` before any
    # code runs; only what portabind adds on top counts.
    baseline = modules_after("pass")
    loaded = modules_after(
        "import portabind, portabind.tooling.cli, portabind.tooling.project, portabind.runtime, portabind.tooling.matrix"
    )
    added = loaded - baseline
    assert "portabind.runtime" in added
    assert sorted(m for m in added if m.startswith(SDK_PREFIXES)) == []
