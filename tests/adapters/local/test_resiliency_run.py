"""`portabind run` applies a Resiliency document's inbound policies: a failing handler is
retried with the policy's back-off before the message goes back to its queue."""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING

from portabind.adapters.local.emulators import free_port
from portabind.adapters.local.runner import RunOptions, run
from portabind.tooling.project import load_project
from tests.helpers import moto_client

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from portabind.adapters.local.emulators.aws import MotoEmulator

APP = """\
import time

from portabind import App, BindingEvent

app = App()
calls: list[tuple[float, str]] = []


@app.binding("orders")
def on_order(event: BindingEvent) -> None:
    calls.append((time.monotonic(), event.metadata["ApproximateReceiveCount"]))
    if len(calls) < 3:
        raise ValueError("not yet")
"""
RESILIENCY = """\
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: {name: inbound}
spec:
  policies:
    retries: {twice: {policy: constant, duration: 200ms, maxRetries: 2}}
  targets:
    components:
      orders: {inbound: {retry: twice}}
"""


def test_a_failing_delivery_is_retried_with_the_policy_before_it_goes_back(
    tmp_path: Path,
    moto_server: MotoEmulator,
    unique_name: Callable[..., str],
    write_component: Callable[..., Path],
) -> None:
    queue = unique_name("orders")
    sqs = moto_client(moto_server, "sqs")
    sqs.create_queue(QueueName=queue)
    (tmp_path / "app.py").write_text(APP)
    components = tmp_path / "components"
    write_component(components, "orders", "bindings.aws.sqs", queueName=queue)
    (components / "resiliency.yaml").write_text(RESILIENCY)
    project = load_project(tmp_path)
    options = RunOptions(
        emulate=True,
        sends=[("orders", json.dumps({"id": 1}).encode())],
        exit_after=1,
        dapr_port=free_port(),
        app_port=None,
    )

    assert run(project, options) == 0

    calls = project.app.handlers["orders"].function.__globals__["calls"]
    # One receive from the queue, three calls of the handler 200 ms apart.
    assert [count for _, count in calls] == ["1", "1", "1"]
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(calls)]
    assert all(0.19 <= gap < 1.0 for gap in gaps)
