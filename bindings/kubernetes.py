"""`bindings.kubernetes`: the core/v1 Events of one namespace, input only
(Dapr's: components-contrib `bindings/kubernetes/kubernetes.go`).

Each change to an Event object is one binding event whose data is
`{"event": "add"|"update"|"delete", "oldVal": <Event>, "newVal": <Event>}` (an empty object
stands for the missing side) and whose metadata is empty, as in Dapr. The listener works
like Dapr's informer: it lists the namespace (every existing Event arrives as `add`), then
watches, and lists again every `resyncPeriodInSec`, so changes a broken watch missed still
arrive. Unlike the informer it does not replay unchanged Events as `update` at each resync.

The official kubernetes client is imported when the listener starts.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from portabind.binding import Binding, InputBinding
from portabind.bindings._attempts import Attempts
from portabind.errors import ComponentError
from portabind.events import BindingEvent, Metadata, compact_json
from portabind.metadata import BindingMetadata, Duration, setting

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

log = logging.getLogger(__name__)

#: Longest a watch request blocks, so that `stop` is noticed within this many seconds.
WATCH_SLICE = 1.0
#: Pause after the API server could not be reached.
RETRY_SECONDS = 2.0


class KubernetesMetadata(BindingMetadata):
    binding_type = "bindings.kubernetes"
    # Dapr's field is resyncPeriod, resyncPeriodInSec its alias (components-contrib
    # `bindings/kubernetes/kubernetes.go`).
    lookup_order = {"resyncPeriodInSec": ("resyncPeriod", "resyncPeriodInSec")}

    namespace: str = setting("namespace", description="namespace whose Events are watched")
    kubeconfig_path: str | None = setting(
        "kubeconfigPath",
        None,
        description="kubeconfig file; default: $KUBECONFIG, in-cluster, then ~/.kube/config",
    )
    resync_period: Duration = setting(
        "resyncPeriodInSec",
        timedelta(seconds=10),
        aliases=("resyncPeriod",),
        description="how often the Event list is read again (integer = seconds)",
    )


def event_for(
    name: str, kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None
) -> BindingEvent:
    """One change as Dapr shapes it: `kind` is add, update or delete."""
    body = {"event": kind, "oldVal": old or {}, "newVal": new or {}}
    return BindingEvent(name, compact_json(body), Metadata())


def api_client(name: str, metadata: KubernetesMetadata) -> Any:
    """An ApiClient for the configured cluster, found as Dapr finds it."""
    from kubernetes import client, config

    path = metadata.kubeconfig_path or os.environ.get("KUBECONFIG")
    try:
        if path:
            return config.new_client_from_config(config_file=path)  # type: ignore[no-untyped-call]
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            return config.new_client_from_config()  # type: ignore[no-untyped-call]
        return client.ApiClient(configuration)
    except (config.ConfigException, OSError) as error:
        raise ComponentError(
            f"cannot load the Kubernetes configuration {path or '(default)'}: {error}",
            component=name,
            field="kubeconfigPath",
            hint="set kubeconfigPath or KUBECONFIG to a kubeconfig file, or run in a cluster",
        ) from error


class KubernetesInput(InputBinding[KubernetesMetadata]):
    """Delivers add/update/delete of Events. A change counts as seen once `deliver` returns;
    a failed one is not recorded, so the next list or watch offers it again (at the latest
    one resync period later), up to three times before it is logged and dropped. Dapr
    ignores the handler's result instead."""

    _deliver: Callable[[BindingEvent], None]  # set by `listen`

    def __init__(self, name: str, metadata: KubernetesMetadata) -> None:
        super().__init__(name, metadata)
        #: The Events as last delivered, by name: what the next change is compared with.
        self._known: dict[str, dict[str, Any]] = {}
        self._attempts = Attempts(name, log)

    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        from kubernetes import client

        api = client.CoreV1Api(api_client(self.name, self.metadata))
        self._deliver = deliver
        namespace = self.metadata.namespace
        resync = max(self.metadata.resync_period.total_seconds(), WATCH_SLICE)
        while not stop.is_set():
            try:
                version = self._relist(api, namespace)
                deadline = time.monotonic() + resync
                while not stop.is_set() and time.monotonic() < deadline:
                    version = self._watch(api, namespace, version)
            except Exception as error:  # the API server is unreachable or refused us
                if _status(error) is None and not _transport_error(error):
                    raise
                log.warning("%s: listing Events in %s failed: %s", self.name, namespace, error)
                stop.wait(RETRY_SECONDS)

    def _relist(self, api: Any, namespace: str) -> str | None:
        response = api.list_namespaced_event(namespace, _preload_content=False)
        listing = json.loads(response.data)
        present = {}
        for item in listing.get("items", []):
            present[_key(item)] = item
            self._upsert(item)
        for key in [key for key in self._known if key not in present]:
            self._remove(self._known[key])
        version: str | None = listing.get("metadata", {}).get("resourceVersion")
        return version

    def _watch(self, api: Any, namespace: str, version: str | None) -> str | None:
        """Apply watch events for up to `WATCH_SLICE` seconds; the version to resume from."""
        from kubernetes import watch
        from urllib3.exceptions import ReadTimeoutError

        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            api.list_namespaced_event,
            namespace,
            resource_version=version,
            _request_timeout=(5, WATCH_SLICE),
        )
        try:
            for change in stream:
                item = change["raw_object"]
                if change["type"] == "ERROR":  # e.g. 410 Gone: resume from a fresh list
                    return self._relist(api, namespace)
                version = item.get("metadata", {}).get("resourceVersion") or version
                if change["type"] == "DELETED":
                    self._remove(item)
                else:
                    self._upsert(item)
        except ReadTimeoutError:
            pass  # the slice is over: nothing more arrived
        return version

    def _upsert(self, item: dict[str, Any]) -> None:
        key = _key(item)
        old = self._known.get(key)
        if old == item:
            return
        if self._offer(key, "add" if old is None else "update", old, item):
            self._known[key] = item

    def _remove(self, item: dict[str, Any]) -> None:
        key = _key(item)
        old = self._known.get(key)
        if old is not None and self._offer(key, "delete", old, None):
            del self._known[key]

    def _offer(
        self, key: str, kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> bool:
        """Deliver one change; True when it is done (delivered, or dropped after retries)."""
        try:
            self._deliver(event_for(self.name, kind, old, new))
        except Exception as error:  # the handler's failure: offered again later
            return self._attempts.failed(f"{kind} of Event {key}", error)
        self._attempts.succeeded(f"{kind} of Event {key}")
        return True


def _key(item: dict[str, Any]) -> str:
    return str(item.get("metadata", {}).get("name", ""))


def _status(error: BaseException) -> int | None:
    status = getattr(error, "status", None)
    return status if isinstance(status, int) else None


def _transport_error(error: BaseException) -> bool:
    from urllib3.exceptions import HTTPError

    return isinstance(error, HTTPError | OSError)


binding = Binding(metadata=KubernetesMetadata, input=KubernetesInput)
