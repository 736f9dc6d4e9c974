"""The Cloud Functions (gen2) side of a built app: what the generated `main.py` calls.

`Function.load` imports the bundled app and components and attaches a `Runtime`; the platform hands
each secret to the function as the environment variable `secret_env_name` names (deploy
with `--set-secrets`), which the runtime's resolver reads before any secret store. Each
trigger's CloudEvent is normalized by the binding's own function, the one the local listener
uses, and handed to the app; a failure raises, so functions-framework answers 500 and
Pub/Sub redelivers the message (or dead-letters it, by the subscription's policy). HTTP
functions (the HTTP trigger extension, and cron called by Cloud Scheduler) answer with the
handler's result; a failure is a 500 too (an HTTP function is never retried, and Cloud
Scheduler's default is no retry, as Dapr's cron).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from portabind.bundled import BundledFunction
from portabind.events import BindingEvent, Metadata

if TYPE_CHECKING:
    from collections.abc import Callable

    HttpReply = tuple[bytes | str, int, dict[str, str]]

PUBSUB_EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"


class Function(BundledFunction):
    """A built app, loaded once per instance (at cold start) and reused for every event."""

    def pubsub_event(self, component: str, cloud_event: Any) -> BindingEvent:
        """The `BindingEvent` of a Pub/Sub `messagePublished` CloudEvent."""
        from portabind.bindings.gcp.pubsub import message_event

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

    def pubsub(self, component: str) -> Callable[[Any], Any]:
        """Handles one Pub/Sub message; raises when the handler fails."""

        def handle(cloud_event: Any) -> Any:
            return self.app.handle(self.pubsub_event(component, cloud_event))

        return handle

    def storage(self, component: str) -> Callable[[Any], Any]:
        """Handles one Cloud Storage object CloudEvent (the bucket trigger extension); raises
        when the handler fails."""
        from portabind.bindings.gcp.bucket import EVENT_PREFIX, object_event

        def handle(cloud_event: Any) -> Any:
            event_type = cloud_event["type"]
            if not str(event_type).startswith(EVENT_PREFIX):
                raise ValueError(
                    f"function for {component!r} expects Cloud Storage CloudEvents, "
                    f"got {event_type!r}"
                )
            data = cloud_event.data
            if isinstance(data, bytes | str):  # posted without a JSON content type
                data = json.loads(data)
            return self.app.handle(object_event(component, event_type, data))

        return handle

    def http(self, component: str) -> Callable[[Any], HttpReply]:
        """Answers one Flask request to the HTTP trigger `component`: the handler's result,
        or 404/405 for a path or method the trigger does not route (Cloud Functions hands
        every path of the function's URL to it)."""
        from portabind.annotations import binding_annotations
        from portabind.bindings.http import HttpAnnotations, trigger_settings

        found, binding = self.runtime.binding(component)
        annotations = binding_annotations(found, binding)
        assert isinstance(annotations, HttpAnnotations)
        trigger = trigger_settings(component, annotations)
        if trigger is None:
            raise ValueError(f"{component!r} is not an HTTP trigger (portabind.io/trigger)")
        return lambda request: self._answer(component, trigger, request)

    def _answer(self, component: str, trigger: Any, request: Any) -> HttpReply:
        from portabind.bindings.http import http_reply, refusal, request_event

        refused = refusal(trigger, request.method, request.path)
        if refused is not None:
            reply, headers = refused
        else:
            event = request_event(
                component,
                method=request.method,
                path=request.path,
                headers=request.headers.items(),
                query=request.query_string.decode("latin-1"),
                body=request.get_data(),
                request_id=request.headers.get("Function-Execution-Id"),
            )
            reply, headers = http_reply(self.app.handle(event)), {}
        if reply.content_type:
            headers["Content-Type"] = reply.content_type
        return reply.body, reply.status, headers

    def scheduled(self, component: str) -> Callable[[Any], HttpReply]:
        """Handles one call of the Cloud Scheduler job of cron component `component`: Dapr's
        cron event plus the job's `jobName` and `scheduleTime` (RFC 3339), from the
        headers Cloud Scheduler sends. Only the job's POST fires a tick."""
        return lambda request: self._tick(component, request)

    def _tick(self, component: str, request: Any) -> HttpReply:
        from portabind.bindings.cron import event_for

        if request.method != "POST":
            return "method not allowed", 405, {"Allow": "POST"}
        cron: Any = self.runtime.metadata(component)
        tick = event_for(component, cron.parsed())
        metadata = dict(tick.metadata)
        for key, header in (
            ("jobName", "X-CloudScheduler-JobName"),
            ("scheduleTime", "X-CloudScheduler-ScheduleTime"),
        ):
            if request.headers.get(header):
                metadata[key] = request.headers[header]
        self.app.handle(BindingEvent(component, tick.data, Metadata(metadata)))
        return "", 204, {}
