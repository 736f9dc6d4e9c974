"""bindings.kubernetes against kmock's KubernetesEmulator: an in-memory Kubernetes API over
real HTTP (list, create, patch, delete and watch streams) that the official client talks
to. An emulator, not a real kube-apiserver: no auth, no resourceVersion history (a watch
starts with the current objects as ADDED), which the listener tolerates."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from portabind.adapters.local.emulators import free_port
from portabind.bindings.kubernetes import KubernetesInput, KubernetesMetadata, binding, event_for
from portabind.errors import ComponentError
from tests.helpers import http_status, require_server, server_fixture, serving

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from portabind.events import BindingEvent

pytest.importorskip("kubernetes")

INSTALL = ".venv/bin/pip install -e '.[dev]' --config-settings editable_mode=strict  (kmock)"
#: kmock has no server command; this is the standalone server its docs build from its parts.
SERVER = """
import asyncio, sys
from kmock._internal.apps import Server
from kmock._internal.k8s import KubernetesEmulator

async def main():
    async with KubernetesEmulator() as k8s, Server(k8s, port=int(sys.argv[1])):
        k8s.resources.load_bundled()  # the built-in resource kinds (events among them)
        await asyncio.Event().wait()

asyncio.run(main())
"""


@server_fixture("kmock", scope="module")
def kube_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The emulator on a free port; yields the path of a kubeconfig pointing at it."""
    try:
        import kmock  # noqa: F401
    except ImportError as error:
        require_server("kmock", f"kmock is not installed ({error})", INSTALL)
    directory: Path = tmp_path_factory.mktemp("kmock")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The port opens before the resource kinds are loaded: ready once events can be listed.
    with serving(
        [sys.executable, "-c", SERVER, str(port)],
        port,
        directory / "log",
        ready=lambda: http_status(url + "/api/v1/namespaces/default/events") == 200,
    ):
        kubeconfig = directory / "kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "kmock", "cluster": {"server": url}}],
                    "users": [{"name": "tester", "user": {}}],
                    "contexts": [
                        {"name": "kmock", "context": {"cluster": "kmock", "user": "tester"}}
                    ],
                    "current-context": "kmock",
                }
            )
        )
        yield str(kubeconfig)


@pytest.fixture
def core(kube_api: str) -> Any:
    from kubernetes import client, config

    return client.CoreV1Api(
        config.new_client_from_config(config_file=kube_api)  # type: ignore[no-untyped-call]
    )


def _event(name: str, namespace: str, message: str = "Started container") -> Any:
    from kubernetes import client

    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace),
        involved_object=client.V1ObjectReference(kind="Pod", name="web-1", namespace=namespace),
        reason="Started",
        message=message,
        type="Normal",
    )


class Listener:
    def __init__(self, kubeconfig: str, namespace: str, handler: Callable[[Any], None]) -> None:
        self.received: list[dict[str, Any]] = []
        self.metadata: list[dict[str, str]] = []

        def deliver(event: BindingEvent) -> None:
            handler(event.json())
            self.received.append(event.json())
            self.metadata.append(dict(event.metadata))

        metadata = KubernetesMetadata.model_validate(
            {"namespace": namespace, "kubeconfigPath": kubeconfig, "resyncPeriodInSec": "2"}
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=KubernetesInput("k8s", metadata).listen, args=(deliver, self.stop), daemon=True
        )
        self.thread.start()

    def wait_for(self, count: int, seconds: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"got {self.received}"
            time.sleep(0.02)
        return self.received

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


@pytest.fixture
def listen(kube_api: str) -> Iterator[Callable[..., Listener]]:
    listeners: list[Listener] = []

    def start(namespace: str, handler: Callable[[Any], None] = lambda body: None) -> Listener:
        listeners.append(Listener(kube_api, namespace, handler))
        return listeners[-1]

    yield start
    for listener in listeners:
        listener.close()


def test_add_update_delete_arrive_as_daprs_event_shape(
    core: Any, listen: Callable[..., Listener]
) -> None:
    core.create_namespaced_event("shop", _event("existing", "shop"))
    listener = listen("shop")
    (first,) = listener.wait_for(1)
    assert first["event"] == "add"  # what exists at start arrives as add, like an informer
    assert first["oldVal"] == {}
    assert first["newVal"]["metadata"]["name"] == "existing"

    core.create_namespaced_event("shop", _event("fresh", "shop"))
    core.patch_namespaced_event("fresh", "shop", {"message": "Restarted container"})
    core.delete_namespaced_event("fresh", "shop")
    changes = listener.wait_for(4)[1:]

    assert [change["event"] for change in changes] == ["add", "update", "delete"]
    added, updated, deleted = changes
    assert added["newVal"]["message"] == "Started container"
    assert added["newVal"]["involvedObject"] == {
        "kind": "Pod",
        "name": "web-1",
        "namespace": "shop",
    }
    assert updated["oldVal"]["message"] == "Started container"
    assert updated["newVal"]["message"] == "Restarted container"
    assert deleted["oldVal"]["metadata"]["name"] == "fresh"
    assert deleted["newVal"] == {}
    assert listener.metadata == [{}] * 4  # Dapr sends no metadata


def test_only_the_configured_namespace_is_watched(
    core: Any, listen: Callable[..., Listener]
) -> None:
    listener = listen("billing")
    core.create_namespaced_event("elsewhere", _event("other", "elsewhere"))
    core.create_namespaced_event("billing", _event("mine", "billing"))

    (only,) = listener.wait_for(1)
    time.sleep(1.5)

    assert only["newVal"]["metadata"]["name"] == "mine"
    assert len(listener.received) == 1


def test_unchanged_events_are_not_delivered_again_across_resyncs(
    core: Any, listen: Callable[..., Listener]
) -> None:
    core.create_namespaced_event("quiet", _event("once", "quiet"))
    listener = listen("quiet")
    listener.wait_for(1)

    time.sleep(4.5)  # two resync periods

    assert len(listener.received) == 1


def test_a_failed_delivery_is_offered_again_then_given_up(
    core: Any, listen: Callable[..., Listener]
) -> None:
    attempts: dict[str, int] = {}

    def handler(body: dict[str, Any]) -> None:
        name = body["newVal"]["metadata"]["name"]
        attempts[name] = attempts.get(name, 0) + 1
        if name == "flaky" and attempts[name] == 1:
            raise RuntimeError("handler failed once")
        if name == "poison":
            raise RuntimeError("handler always fails")

    listener = listen("retry", handler)
    core.create_namespaced_event("retry", _event("flaky", "retry"))
    core.create_namespaced_event("retry", _event("poison", "retry"))
    listener.wait_for(1)
    deadline = time.monotonic() + 10
    while attempts.get("poison", 0) < 3:
        assert time.monotonic() < deadline, attempts
        time.sleep(0.05)
    time.sleep(2.5)  # past another resync: a dropped change stays dropped

    assert [body["newVal"]["metadata"]["name"] for body in listener.received] == ["flaky"]
    assert attempts == {"flaky": 2, "poison": 3}


def test_metadata_fields_and_defaults() -> None:
    metadata = KubernetesMetadata.model_validate({"namespace": "ns", "resyncPeriod": "30"})
    assert metadata.resync_period.total_seconds() == 30
    assert KubernetesMetadata.model_validate({"namespace": "ns"}).resync_period.seconds == 10
    assert (
        KubernetesMetadata.model_validate(
            {"namespace": "ns", "resyncPeriodInSec": "1m"}
        ).resync_period.total_seconds()
        == 60
    )
    with pytest.raises(ValueError, match="namespace"):
        KubernetesMetadata.model_validate({})
    assert binding.directions == {"input"}


def test_event_for_fills_the_missing_side_with_an_empty_object() -> None:
    event = event_for("k8s", "delete", {"metadata": {"name": "e"}}, None)

    assert event.json() == {"event": "delete", "oldVal": {"metadata": {"name": "e"}}, "newVal": {}}
    assert dict(event.metadata) == {}


def test_a_missing_kubeconfig_fails_at_start(tmp_path: Path) -> None:
    metadata = KubernetesMetadata.model_validate(
        {"namespace": "ns", "kubeconfigPath": str(tmp_path / "absent")}
    )
    with pytest.raises(ComponentError, match="absent"):
        KubernetesInput("k8s", metadata).listen(lambda event: None, threading.Event())
