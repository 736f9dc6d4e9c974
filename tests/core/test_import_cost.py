"""`import portabind` must not import any cloud SDK (cold start on every target), nor asyncio,
pydantic, YAML or gRPC before something needs them; gRPC and the `dapr` package load only
when `portabind run` serves Dapr's gRPC API or app protocol: never for the CLI, the local
runner's other parts, or a deployed function."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest

SDK_PREFIXES = (
    "boto3",
    "botocore",
    "azure",
    "google",
    "grpc",
    "dapr",
    "moto",
    "aws_lambda_powertools",
)


def modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    return set(result.stdout.split())


@functools.cache  # the same interpreter each time: one look is enough
def baseline_modules() -> frozenset[str]:
    """What the interpreter loads before any code runs: `site` loads namespace-package .pth
    files (google, google.cloud)."""
    return frozenset(modules_after("pass"))


def sdks_added(*modules: str) -> list[str]:
    # Only what portabind adds on top of the interpreter's own start-up counts.
    added = modules_after(f"import {', '.join(modules)}") - baseline_modules()
    assert set(modules) <= added
    return sorted(m for m in added if m.startswith(SDK_PREFIXES))


#: What `import portabind` leaves to whoever needs it: each is start-up time every process
#: (a function's cold start, the CLI) would pay before doing anything.
DEFERRED = ("asyncio", "pydantic", "yaml", "grpc", "inspect", "typing", "json", "pathlib")


def test_import_portabind_defers_heavy_modules() -> None:
    added = modules_after("import portabind") - baseline_modules()
    assert sorted({name.partition(".")[0] for name in added} & set(DEFERRED)) == []
    assert sdks_added("portabind") == []


def test_importing_the_core_imports_no_cloud_sdk() -> None:
    core = ("portabind", "portabind.runtime", "portabind.appprotocol")
    tooling = ("portabind.tooling.cli", "portabind.tooling.project", "portabind.tooling.matrix")
    assert sdks_added(*core, *tooling) == []


def test_the_local_runner_loads_grpc_only_to_serve_it() -> None:
    runner = (
        "portabind.adapters.local.runner",
        "portabind.adapters.local.dapr_api",
        "portabind.adapters.local.app_channel",
        "portabind.adapters.local.invoke",
    )
    assert sdks_added(*runner) == []
    served = sdks_added("portabind.adapters.local.dapr_grpc")
    assert "grpc" in served
    assert "dapr.proto.runtime.v1.dapr_pb2_grpc" in served


# dapr: the entrypoint imports gRPC and the protos only to serve the gRPC app protocol.
@pytest.mark.parametrize("target", ["aws", "azure", "gcp", "dapr"])
def test_a_deployed_function_never_loads_grpc_or_dapr(target: str) -> None:
    loaded = sdks_added(f"portabind.adapters.{target}.runtime")
    assert [m for m in loaded if m.startswith(("grpc", "dapr"))] == []
