"""A package an extra brings, missing: one message naming the extra, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

from portabind.adapters.local.emulators import free_port
from portabind.tooling.extras import missing_package
from portabind.tooling.scaffold import scaffold

if TYPE_CHECKING:
    from pathlib import Path

#: Runs `portabind ARGS` with the top-level packages in argv[1] impossible to import, as in an
#: environment where their distribution is not installed.
WITHOUT_PACKAGES = """
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in sys.argv[1].split(","):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NotInstalled())
from portabind.tooling.cli import main
sys.exit(main(sys.argv[2:]))
"""


def raised_in(module: str, package: str) -> ModuleNotFoundError:
    """The error an import of `package` made in portabind's `module` raises."""
    try:
        exec(f"raise ModuleNotFoundError('no', name={package!r})", {"__name__": module})
    except ModuleNotFoundError as error:
        return error
    raise AssertionError("not raised")


def test_a_package_named_like_its_distribution_names_the_extra() -> None:
    error = missing_package(ModuleNotFoundError("no", name="google.cloud.pubsub_v1"))

    assert "'gcp' extra" in error.render()
    assert "pip install 'portabind[gcp]'" in error.render()


def test_a_namespace_package_names_the_extra_of_the_binding_importing_it() -> None:
    error = missing_package(raised_in("portabind.bindings.azure.storagequeues", "azure"))

    assert "'azure' is not installed; it comes with portabind's 'azure' extra" in error.render()


def test_a_package_no_extra_brings_says_how_to_install_it() -> None:
    error = missing_package(ModuleNotFoundError("no", name="requests.adapters"))

    assert "pip install requests" in error.render()


def test_invoke_without_the_azure_sdks_is_one_message(tmp_path: Path) -> None:
    app = tmp_path / "worker"
    scaffold("queue-worker", app)
    invoke = ["invoke", "results", "create", "--data", "{}", "--dir", str(app)]
    invoke += ["--components", str(app / "components" / "azure")]
    invoke += ["--dapr-http-port", str(free_port())]

    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PACKAGES, "azure", *invoke],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "pip install 'portabind[azure]'" in done.stderr
