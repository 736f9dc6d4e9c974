"""Dapr's Resiliency policies: their lookup, back-off, trip expressions and breaker, and the
outbound policies around real output calls (SQS on moto; a closed port; a server that never
answers)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from portabind.adapters.local.emulators import free_port
from portabind.components import Resiliency
from portabind.errors import BindingError, ValidationFailed
from portabind.events import Metadata
from portabind.resiliency import INBOUND, OUTBOUND, CircuitBreaker, Trip, policies
from portabind.runtime import Runtime
from portabind.tooling.project import load_components
from tests.helpers import moto_client

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from portabind.adapters.local.emulators.aws import MotoEmulator


def document(spec: dict[str, Any]) -> Resiliency:
    return Resiliency("r", Path("resiliency.yaml"), spec)


def test_a_named_target_wins_and_defaults_go_from_most_to_least_specific() -> None:
    parsed = policies(
        [
            document(
                {
                    "policies": {
                        "timeouts": {"DefaultTimeoutPolicy": "1500", "short": "2s"},
                        "retries": {
                            "DefaultComponentInboundRetryPolicy": {"maxRetries": 2},
                            "DefaultBindingComponentInboundRetryPolicy": {"maxRetries": 7},
                            "DefaultRetryPolicy": {"maxRetries": 1},
                        },
                    },
                    "targets": {"components": {"named": {"outbound": {"timeout": "short"}}}},
                }
            )
        ]
    )
    inbound = parsed.policy("other", INBOUND)
    assert inbound.retry is not None and inbound.retry.max_retries == 7
    assert inbound.timeout == 1.5  # a plain number is milliseconds
    assert parsed.policy("other", OUTBOUND).retry.max_retries == 1  # type: ignore[union-attr]
    # A component with a target entry takes only what the entry names, as daprd does.
    assert parsed.policy("named", OUTBOUND).names() == {"timeout": "short"}
    assert not parsed.policy("named", INBOUND)


def test_back_off_is_dapr_s_constant_and_exponential() -> None:
    parsed = policies(
        [
            document(
                {
                    "policies": {
                        "retries": {
                            "constant": {"duration": "250ms", "maxRetries": 3},
                            "exponential": {
                                "policy": "exponential",
                                "maxInterval": "1s",
                                "maxRetries": 6,
                            },
                        }
                    }
                }
            )
        ]
    )
    assert list(parsed.retries["constant"].delays()) == [0.25, 0.25, 0.25]
    middle = list(parsed.retries["exponential"].delays(rng=lambda: 0.5))
    assert middle == pytest.approx([0.5, 0.75, 1.0, 1.0, 1.0, 1.0])  # 0.5 x 1.5 ..., capped
    low = list(parsed.retries["exponential"].delays(rng=lambda: 0.0))
    assert low[0] == pytest.approx(0.25)  # randomized by +-50%


@pytest.mark.parametrize(
    ("expression", "counts", "trips"),
    [
        ("consecutiveFailures > 5", {"consecutiveFailures": 6}, True),
        ("consecutiveFailures > 5", {"consecutiveFailures": 5}, False),
        (
            "requests > 3 && totalFailures * 2 >= requests",
            {"requests": 4, "totalFailures": 2},
            True,
        ),
        # CEL divides integers as Go does: 3 / 4 is 0.
        ("totalFailures / requests > 0", {"requests": 4, "totalFailures": 3}, False),
        ("totalFailures / requests > 0", {"requests": 0, "totalFailures": 0}, False),
        ("!(requests < 2) || consecutiveSuccesses == 0", {"requests": 1}, True),
        ("totalFailures > 0.5", {"totalFailures": 3}, False),  # int vs double: no overload
    ],
)
def test_trip_expressions_evaluate_as_dapr_s_cel(
    expression: str, counts: dict[str, int], trips: bool
) -> None:
    full = dict.fromkeys(
        (
            "requests",
            "totalSuccesses",
            "totalFailures",
            "consecutiveSuccesses",
            "consecutiveFailures",
        ),
        0,
    )
    assert Trip(expression)({**full, **counts}) is trips


def test_a_bad_document_names_each_problem() -> None:
    with pytest.raises(ValidationFailed) as caught:
        policies(
            [
                document(
                    {
                        "policies": {
                            "timeouts": {"t": "soon"},
                            "retries": {"r": {"policy": "linear"}},
                            "circuitBreakers": {"c": {"trip": "failures > 1"}},
                        },
                        "targets": {"components": {"q": {"outbound": {"retry": "missing"}}}},
                    }
                )
            ]
        )
    fields = sorted(str(error.field) for error in caught.value.errors)  # type: ignore[attr-defined]
    assert fields == [
        "spec.policies.circuitBreakers.c",
        "spec.policies.retries.r",
        "spec.policies.timeouts.t",
        "spec.targets.components.q.outbound.retry",
    ]
    assert "unknown variable 'failures'" in str(caught.value)


def test_breaker_opens_half_opens_and_closes_as_gobreaker() -> None:
    now = [0.0]
    parsed = policies(
        [
            document(
                {
                    "policies": {
                        "circuitBreakers": {
                            "cb": {
                                "maxRequests": 2,
                                "timeout": "10s",
                                "trip": "consecutiveFailures >= 2",
                            }
                        }
                    }
                }
            )
        ]
    )
    breaker = CircuitBreaker(parsed.breakers["cb"], clock=lambda: now[0])
    for _ in range(2):
        breaker.before()
        breaker.after(False)
    assert breaker.state == "open"
    now[0] = 10.0
    breaker.before()
    breaker.before()
    assert breaker.state == "half-open"
    breaker.after(True)
    breaker.after(True)
    assert breaker.state == "closed"


COMPONENTS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: queue}}
spec:
  type: bindings.aws.sqs
  version: v1
  metadata:
  - {{name: queueName, value: {queue}}}
  - {{name: region, value: us-east-1}}
  - {{name: endpoint, value: "{endpoint}"}}
  - {{name: accessKey, value: test}}
  - {{name: secretKey, value: test}}
---
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: {{name: policies}}
spec:
  policies:
    timeouts: {{quick: 300ms}}
    retries: {{fast: {{policy: constant, duration: 100ms, maxRetries: 2}}}}
    circuitBreakers:
      breaker: {{maxRequests: 1, timeout: 500ms, trip: "consecutiveFailures >= 3"}}
  targets:
    components:
      queue:
        outbound: {{timeout: quick, retry: fast, circuitBreaker: breaker}}
"""


@pytest.fixture
def runtime_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str, str], Runtime]]:
    """A Runtime over one SQS output at `endpoint` with the policies above. botocore makes
    one attempt per call, so the retries counted are the policy's."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    made: list[Runtime] = []

    def make(endpoint: str, queue: str) -> Runtime:
        (tmp_path / "components.yaml").write_text(COMPONENTS.format(endpoint=endpoint, queue=queue))
        runtime = Runtime(load_components(tmp_path))
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()


def test_outbound_policies_let_a_working_output_through(
    moto_server: MotoEmulator,
    runtime_for: Callable[[str, str], Runtime],
    unique_name: Callable[..., str],
) -> None:
    queue = unique_name("queue")
    sqs = moto_client(moto_server, "sqs")
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    runtime = runtime_for(moto_server.endpoint, queue)

    runtime.output("queue").invoke("create", b"hello", Metadata())

    body = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]["Body"]
    assert body == "hello"


def test_a_failing_output_is_retried_then_its_breaker_opens(
    runtime_for: Callable[[str, str], Runtime],
) -> None:
    runtime = runtime_for(f"http://127.0.0.1:{free_port()}", "q")  # nothing listens there
    output = runtime.output("queue")

    started = time.monotonic()
    with pytest.raises(BindingError) as first:
        output.invoke("create", b"x", Metadata())
    assert time.monotonic() - started >= 0.2  # three attempts, 100 ms apart
    assert "circuit breaker" not in str(first.value)

    started = time.monotonic()
    with pytest.raises(BindingError, match="circuit breaker is open"):
        output.invoke("create", b"x", Metadata())
    assert time.monotonic() - started < 0.1  # refused without trying

    # After the breaker's timeout, half-open lets one attempt through; it fails, the breaker
    # opens again, and the retry 100 ms later is refused (Dapr stops retrying then).
    time.sleep(0.55)
    started = time.monotonic()
    with pytest.raises(BindingError, match="circuit breaker is open"):
        output.invoke("create", b"x", Metadata())
    assert time.monotonic() - started >= 0.1


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_a_call_past_its_timeout_fails_with_daprs_words(
    runtime_for: Callable[[str, str], Runtime], silent_server: int
) -> None:
    output = runtime_for(f"http://127.0.0.1:{silent_server}", "q").output("queue")
    started = time.monotonic()
    with pytest.raises(BindingError, match="context deadline exceeded"):
        output.invoke("create", b"x", Metadata())
    assert time.monotonic() - started < 2  # three attempts of 300 ms, 100 ms apart
