"""What a built Azure Functions app runs (imported by the generated `function_app.py`).

It loads the bundled app and components once per worker, attaches a `Runtime` (secrets come
from the app settings named by `secret_env_name`, which the build points at Key Vault), turns
each trigger payload into a `BindingEvent` with the binding's own normalizer, and runs the
handler. A handler failure propagates, so the Functions host retries the message and moves it
to the `<queue>-poison` queue after `maxDequeueCount` attempts. Imports no SDK itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portabind.components import parse_metadata, placeholder_values
from portabind.project import DEFAULT_APP, load_bundle
from portabind.secrets import SecretResolver

if TYPE_CHECKING:
    from collections.abc import Mapping

    from portabind.app import App
    from portabind.metadata import BindingMetadata


class FunctionHost:
    """The user's app and components, as bundled next to `function_app.py`."""

    def __init__(
        self,
        directory: Path | str,
        *,
        components: str = "components",
        app_ref: str = DEFAULT_APP,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        directory = Path(directory)
        self._environ = os.environ if environ is None else environ
        self.app: App
        self.app, self.runtime = load_bundle(
            directory, app_ref=app_ref, components=components, environ=self._environ
        )
        self._triggers: dict[str, BindingMetadata] = {}

    def trigger_metadata(self, name: str) -> BindingMetadata:
        """The input component's settings that shape its events (decodeBase64, ...). The host
        itself reads the queue, so secret fields are not resolved: they may be absent."""
        if name not in self._triggers:
            component, binding = self.runtime.binding(name)
            model = binding.metadata
            names, secret = model.dapr_names(), model.secret_names()
            plain = {
                key
                for key in component.binding_values()
                if names.get(key.lower(), key) not in secret
            }
            values = placeholder_values(component)
            resolver = SecretResolver(self.runtime.components, self._environ)
            values.update(resolver.values(component, plain))
            self._triggers[name] = parse_metadata(component, model, values)
        return self._triggers[name]

    def queue_message(self, name: str, message: Any) -> Any:
        """Handle one `azure.functions.QueueMessage` for input component `name`; raises
        when the handler fails."""
        from portabind.bindings.azure.storagequeues import queue_event

        decode = bool(getattr(self.trigger_metadata(name), "decode_base64", False))
        return self.app.handle(queue_event(name, message, decode_base64=decode))
