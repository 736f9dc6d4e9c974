"""Emulators that are npm packages (Azurite, the Cosmos DB server): found on disk rather than
imported, and installed once into the user's cache by `portabind run --emulate` when npm is
there.

Search order of `NpmTool.find`: the tool's environment variable (an explicit choice: it must
exist, no fallback), the command on PATH, `<repo>/tools/node_modules/.bin/<command>` (`npm ci
--prefix tools`, pinned by tools/package-lock.json), then
`~/.cache/portabind/<package>/node_modules/.bin/<command>` (where `ensure` installs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from portabind.adapters.local.emulators import EmulatorUnavailable

# adapters/local/emulators/npm.py -> the source checkout's root (only meaningful when running
# from a checkout, including strict editable installs, whose link tree points back into it).
REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class NpmTool:
    """An npm package's command: `find` it, or `ensure` it is installed."""

    #: What the messages call it ("the Azure Storage emulator (Azurite)").
    title: str
    package: str
    version: str
    command: str
    #: The environment variable naming the executable explicitly.
    env_var: str

    def cache_dir(self) -> Path:
        # Computed on each call: tests and users may point HOME elsewhere after import.
        return Path.home() / ".cache" / "portabind" / self.package.rsplit("/", 1)[-1]

    @property
    def install_command(self) -> str:
        folder = self.package.rsplit("/", 1)[-1]
        return f"npm install --prefix ~/.cache/portabind/{folder} {self.package}@{self.version}"

    def _bin(self) -> Path:
        return Path("node_modules", ".bin", self.command)

    def find(self, repo_root: Path = REPO_ROOT) -> Path:
        """The executable, or `EmulatorUnavailable` saying how to install it."""
        explicit = os.environ.get(self.env_var)
        if explicit:
            path = Path(explicit).expanduser()
            if path.is_file() and os.access(path, os.X_OK):
                return path
            raise EmulatorUnavailable(
                f"{self.env_var}={explicit} is not an executable {self.command}",
                hint=f"fix or unset {self.env_var}, or install it: {self.install_command}",
            )
        on_path = shutil.which(self.command)
        if on_path:
            return Path(on_path)
        for candidate in (repo_root / "tools" / self._bin(), self.cache_dir() / self._bin()):
            if candidate.is_file():
                return candidate
        raise EmulatorUnavailable(
            f"{self.title} is not installed",
            hint=f"install it with: {self.install_command}  (needs Node.js >= 18 and npm)",
        )

    def ensure(self, repo_root: Path = REPO_ROOT) -> Path:
        """The executable, installed into the user's cache first if missing."""
        try:
            return self.find(repo_root)
        except EmulatorUnavailable:
            if os.environ.get(self.env_var):
                raise  # an explicit but wrong path is a mistake to report, not to paper over
        npm = shutil.which("npm")
        if npm is None:
            raise EmulatorUnavailable(
                f"{self.title} is not installed, and npm is not on PATH",
                hint=f"install Node.js >= 18 with npm, then: {self.install_command}",
            )
        target = self.cache_dir()
        target.mkdir(parents=True, exist_ok=True)
        # A first install downloads the package and its dependencies: say why nothing moves.
        print(
            f"installing {self.title} ({self.package}@{self.version}) with npm into {target}, "
            "once; this takes a minute or so",
            file=sys.stderr,
            flush=True,
        )
        result = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(target),
                "--no-audit",
                "--no-fund",
                f"{self.package}@{self.version}",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        installed = target / self._bin()
        if result.returncode != 0 or not installed.is_file():
            output = (result.stdout + result.stderr).strip().splitlines()
            raise EmulatorUnavailable(
                f"installing {self.package} with npm failed (exit {result.returncode}):\n"
                + "\n".join(output[-15:]),
                hint=f"run it by hand to see why: {self.install_command}",
            )
        return installed
