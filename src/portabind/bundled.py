"""What a built function loads once per instance (its cold start): the user's app and the
components the build bundled beside it, the app attached to a `Runtime` over them.

Every target's runtime (`portabind.adapters.<target>.runtime`) defines its `Function` on
`BundledFunction`: one method per kind of trigger, named after the trigger, each taking the
input component's name and returning the callable the platform invokes.

The components come from the build's JSON snapshot (`portabind.snapshot`): a function never
parses YAML nor validates documents again, so neither the YAML loader nor the document
schema (tooling) is bundled. YAML edited after the build is refused with the fix: rebuild.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from portabind import snapshot
from portabind.app import App
from portabind.errors import AppError, UserError
from portabind.runtime import Runtime

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Self

DEFAULT_APP = "app:app"
COMPONENTS = "components"


def load_app(directory: Path, app_ref: str = DEFAULT_APP) -> App:
    """Import `module:attr` from the project directory."""
    module_name, _, attribute = app_ref.partition(":")
    attribute = attribute or "app"
    source = directory / (module_name.replace(".", "/") + ".py")
    if not source.is_file():
        raise AppError(
            f"app module {source} does not exist",
            hint="create it, or name another with --app module:attribute",
        )
    sys.path.insert(0, str(directory.resolve()))
    try:
        sys.modules.pop(module_name, None)  # a fresh import each load (tests load many apps)
        module = importlib.import_module(module_name)
    except UserError:
        raise
    except Exception as error:  # the user's module failed at import: show where
        raise AppError(f"importing {source} failed: {type(error).__name__}: {error}") from error
    finally:
        sys.path.remove(str(directory.resolve()))
    app = getattr(module, attribute, None)
    if not isinstance(app, App):
        raise AppError(
            f"{source} has no portabind.App named {attribute!r}",
            hint="define `app = portabind.App()` or pass --app module:attribute",
        )
    return app


class BundledFunction:
    """A built app: loaded at cold start and reused by every invocation."""

    def __init__(self, app: App, runtime: Runtime, environ: Mapping[str, str]) -> None:
        self.app = app
        self.runtime = runtime
        #: Where secrets are read from first (the platform's secret references arrive as
        #: environment variables named by `portabind.secrets.secret_env_name`).
        self.environ = environ

    @classmethod
    def load(
        cls,
        directory: Path | str,
        *,
        app_ref: str = DEFAULT_APP,
        components: str = COMPONENTS,
        environ: Mapping[str, str] | None = None,
    ) -> Self:
        """Load the app and components bundled in `directory`, outputs ready to use."""
        root = Path(directory)
        environ = os.environ if environ is None else environ
        component_set = snapshot.load(root / components)
        if component_set is None:
            raise UserError(
                f"{root / components} has no components snapshot matching its YAML files "
                f"({snapshot.FILE_NAME}): they were edited after the build, or this directory "
                "is not a build output",
                hint="run `portabind build` again; a function loads the components its build "
                "checked",
            )
        app = load_app(root, app_ref)
        runtime = Runtime(component_set, environ=environ)
        app.attach(runtime)
        return cls(app, runtime, environ)
