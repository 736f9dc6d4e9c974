"""The Cloud Functions (gen2) side of a built app: what the generated `main.py` calls.

`load` imports the bundled app and components and attaches a `Runtime`; the platform hands
each secret to the function as the environment variable `secret_env_name` names (deploy
with `--set-secrets`), which the runtime's resolver reads before any secret store. Each
trigger's CloudEvent is normalized by the binding's own function, the one the local listener
uses, and handed to the app; a failure raises, so functions-framework answers 500 and
Pub/Sub redelivers the message (or dead-letters it, by the subscription's policy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portabind.bindings.gcp.pubsub import message_event
from portabind.project import load_bundle

if TYPE_CHECKING:
    from pathlib import Path

    from portabind.app import App
    from portabind.events import BindingEvent
    from portabind.runtime import Runtime

PUBSUB_EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"


@dataclass(frozen=True)
class Function:
    """A built app, loaded once per instance (at cold start) and reused for every event."""

    app: App
    runtime: Runtime

    def pubsub_event(self, component: str, cloud_event: Any) -> BindingEvent:
        """The `BindingEvent` of a Pub/Sub `messagePublished` CloudEvent."""
        event_type = cloud_event["type"]
        if event_type != PUBSUB_EVENT_TYPE:
            raise ValueError(
                f"function for {component!r} expects {PUBSUB_EVENT_TYPE} CloudEvents, "
                f"got {event_type!r}"
            )
        data = cloud_event.data
        if isinstance(data, bytes | str):  # posted without a JSON content type
            data = json.loads(data)
        return message_event(component, data)

    def pubsub(self, component: str, cloud_event: Any) -> Any:
        """Handle one Pub/Sub message; raises when the handler fails."""
        return self.app.handle(self.pubsub_event(component, cloud_event))


def load(
    directory: Path | str, *, app_ref: str = "app:app", components: str = "components"
) -> Function:
    """Load the app and components bundled in `directory`, outputs ready to use."""
    app, runtime = load_bundle(directory, app_ref=app_ref, components=components)
    return Function(app, runtime)
