"""Dapr's Resiliency policies (`kind: Resiliency`) for bindings, as daprd applies them.

The policies and their defaults are Dapr's (dapr/dapr `pkg/resiliency`, dapr/kit `retry`):

- **retries**: `policy` `constant` (every `duration`, default 5s) or `exponential` (from
  `initialInterval` 500ms, times `multiplier` 1.5 up to `maxInterval` 60s, each delay randomized
  ± `randomizationFactor` 0.5, and no further retry once `maxElapsedTime` 15m would pass);
  `maxRetries` -1 (default) retries forever, 0 never. `matching` (HTTP and gRPC status codes)
  applies only to failures that carry such a code: an app's answer to a delivery.
- **timeouts**: a Go duration, or a plain number of milliseconds.
- **circuitBreakers**: `maxRequests` (1) let through while half-open, `interval` (0: never)
  after which a closed breaker clears its counts, `timeout` (60s) spent open, and `trip`, the
  CEL expression over `requests`, `totalSuccesses`, `totalFailures`, `consecutiveSuccesses`
  and `consecutiveFailures` that opens it (default `consecutiveFailures > 5`; an expression
  that fails to evaluate does not trip).

A component's policies are those its `targets.components.<name>` entry names for the
direction (`outbound`: each output call; `inbound`: each delivery to the handler); a
component without an entry takes Dapr's defaults, most specific first:
`DefaultBindingComponent{Outbound|Inbound}<Kind>Policy`, `DefaultComponent{…}<Kind>Policy`,
`DefaultComponent<Kind>Policy`, `Default<Kind>Policy`. A call runs as daprd runs it: each
attempt through the circuit breaker (an open breaker ends the retries at once), inside it the
timeout, around both the retries. A component's breaker is one, shared by both directions.

Documents are read when a `Runtime` starts (so a built function applies its outbound policies
too); `policies` is what validation and the builds read.
"""

from __future__ import annotations

import ast
import math
import operator
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from portabind.binding import OutputBinding
from portabind.errors import (
    BindingError,
    ComponentError,
    PortabindError,
    ValidationFailed,
    shorten,
)
from portabind.metadata import parse_duration

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from portabind.components import Resiliency
    from portabind.errors import UserError
    from portabind.events import BindingResponse, Metadata

T = TypeVar("T")
INBOUND = "inbound"
OUTBOUND = "outbound"
KINDS = ("retry", "timeout", "circuitBreaker")
_SECTIONS = {"retry": "retries", "timeout": "timeouts", "circuitBreaker": "circuitBreakers"}
_DEFAULT_TEMPLATE = {
    "retry": "Default{}RetryPolicy",
    "timeout": "Default{}TimeoutPolicy",
    "circuitBreaker": "Default{}CircuitBreakerPolicy",
}
_TRIP_VARIABLES = (
    "requests",
    "totalSuccesses",
    "totalFailures",
    "consecutiveSuccesses",
    "consecutiveFailures",
)


class PolicyFailure(PortabindError):
    """A call a policy stopped: `reason` as daprd words it."""

    def __init__(self, component: str, reason: str) -> None:
        self.component = component
        self.reason = reason
        super().__init__(f"{component}: {reason}")


class CircuitOpen(PolicyFailure):
    """The component's circuit breaker is open (or half-open with its requests taken)."""


class PolicyTimeout(PolicyFailure):
    """A call ran past the timeout policy."""


def _whole(value: Any, key: str) -> int:
    """A whole number as Dapr's decoder takes it: an integer, or its digits as text."""
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"[+-]?[0-9]{1,18}", text):
        raise ValueError(f"{key}: expected a whole number, found {shorten(repr(value))}")
    return int(text)


def _finite(value: Any, key: str) -> float:
    """A number that is neither infinite nor NaN (1e30 is one; what it means is the
    policy's business)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise ValueError(f"{key}: expected a finite number, found {shorten(repr(value))}")
    return number


def _mapping(value: Any, where: str) -> dict[Any, Any]:
    """A section of the document: a mapping, or nothing (empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping, found a {type(value).__name__}")
    return value


def _seconds(value: Any, *, milliseconds: bool = False) -> float:
    """A Go duration; with `milliseconds`, a plain number counts milliseconds (timeouts)."""
    text = str(value).strip()
    if milliseconds and re.fullmatch(r"[+-]?[0-9]{1,30}", text):
        return parse_duration(int(text) / 1000).total_seconds()
    return parse_duration(text).total_seconds()


@dataclass(frozen=True)
class Retry:
    name: str
    exponential: bool = False
    duration: float = 5.0
    initial_interval: float = 0.5
    randomization_factor: float = 0.5
    multiplier: float = 1.5
    max_interval: float = 60.0
    max_elapsed_time: float = 900.0
    max_retries: int = -1
    http_codes: tuple[tuple[int, int], ...] = ()
    grpc_codes: tuple[tuple[int, int], ...] = ()

    def delays(self, rng: Callable[[], float] = random.random) -> Iterator[float]:
        """The waits before each retry (cenkalti/backoff's), ending when no retry is left;
        an exponential policy's elapsed-time limit is the caller's (`run`)."""
        current = self.initial_interval
        retries = 0
        while self.max_retries < 0 or retries < self.max_retries:
            retries += 1
            if not self.exponential:
                yield self.duration
                continue
            delta = self.randomization_factor * current
            yield current - delta + rng() * (2 * delta)
            if current >= self.max_interval / self.multiplier:
                current = self.max_interval
            else:
                current *= self.multiplier

    def matches(self, error: BaseException) -> bool:
        """Whether a failure is retried: every failure, unless `matching` lists status codes
        and the failure carries one (`status_code`, HTTP 100-599 or gRPC 0-16)."""
        code = getattr(error, "status_code", None)
        if not isinstance(code, int):
            return True
        ranges = self.http_codes if code >= 100 else self.grpc_codes
        if not ranges:
            return True
        return any(low <= code <= high for low, high in ranges)


class Trip:
    """A circuit breaker's `trip` expression: the subset of CEL Dapr's trips use (integer
    arithmetic with Go's truncating division, comparisons, `&&`, `||`, `!`, parentheses)."""

    _ALLOWED = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.USub,
        ast.BinOp,
        ast.Add,
        ast.Sub,
        ast.Mult,
        ast.Div,
        ast.Mod,
        ast.Compare,
        ast.Eq,
        ast.NotEq,
        ast.Lt,
        ast.LtE,
        ast.Gt,
        ast.GtE,
        ast.Name,
        ast.Load,
        ast.Constant,
    )

    def __init__(self, text: str) -> None:
        self.text = text
        python = re.sub(r"!(?!=)", " not ", text.replace("&&", " and ").replace("||", " or "))
        python = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", python))
        try:
            tree = ast.parse(python.strip(), mode="eval")
        except SyntaxError:
            raise ValueError(f"trip {text!r} is not a valid expression") from None
        for node in ast.walk(tree):
            if not isinstance(node, self._ALLOWED):
                raise ValueError(f"trip {text!r}: {type(node).__name__} is not supported")
            if isinstance(node, ast.Name) and node.id not in (*_TRIP_VARIABLES, "True", "False"):
                raise ValueError(
                    f"trip {text!r}: unknown variable {node.id!r} "
                    f"(use {', '.join(_TRIP_VARIABLES)})"
                )
        self._tree = tree.body

    def __call__(self, counts: dict[str, int]) -> bool:
        """Whether the counts trip the breaker; an evaluation error does not."""
        try:
            return self._eval(self._tree, counts) is True
        except (ArithmeticError, TypeError):
            return False

    def _eval(self, node: ast.expr, counts: dict[str, int]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return {"True": True, "False": False}.get(node.id, counts.get(node.id))
        if isinstance(node, ast.BoolOp):
            values = (self._eval(v, counts) for v in node.values)
            if isinstance(node.op, ast.And):
                return all(_bool(v) for v in values)
            return any(_bool(v) for v in values)
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, counts)
            return not _bool(operand) if isinstance(node.op, ast.Not) else -_number(operand)
        if isinstance(node, ast.BinOp):
            return _arithmetic(
                node.op, _number(self._eval(node.left, counts)), self._eval(node.right, counts)
            )
        assert isinstance(node, ast.Compare)
        left = self._eval(node.left, counts)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self._eval(right_node, counts)
            if type(left) is not type(right):  # CEL compares like with like
                raise TypeError("no such overload")
            if not _compare(op, left, right):
                return False
            left = right
        return True


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("no such overload")
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("no such overload")
    return value


def _arithmetic(op: ast.operator, left: int | float, right_value: Any) -> int | float:
    right = _number(right_value)
    if type(left) is not type(right):
        raise TypeError("no such overload")
    if isinstance(op, ast.Add):
        return left + right
    if isinstance(op, ast.Sub):
        return left - right
    if isinstance(op, ast.Mult):
        return left * right
    if isinstance(left, int) and isinstance(right, int):
        if right == 0:
            raise ZeroDivisionError
        quotient = abs(left) // abs(right) * (1 if (left < 0) == (right < 0) else -1)
        return quotient if isinstance(op, ast.Div) else left - quotient * right
    if isinstance(op, ast.Mod):
        raise TypeError("no such overload")
    return left / right


_COMPARISONS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _compare(op: ast.cmpop, left: Any, right: Any) -> bool:
    return bool(_COMPARISONS[type(op)](left, right))


DEFAULT_TRIP = "consecutiveFailures > 5"


@dataclass(frozen=True)
class Breaker:
    """A circuit breaker policy (the template each component's breaker is made from)."""

    name: str
    max_requests: int = 1
    interval: float = 0.0
    timeout: float = 60.0
    trip: Trip = field(default_factory=lambda: Trip(DEFAULT_TRIP))


@dataclass(frozen=True)
class Policy:
    """The policies that apply to one component in one direction, with their names."""

    retry: Retry | None = None
    timeout: float | None = None
    timeout_name: str | None = None
    breaker: Breaker | None = None

    def __bool__(self) -> bool:
        return (self.retry, self.timeout, self.breaker) != (None, None, None)

    def names(self) -> dict[str, str]:
        """Policy kind → the policy's name, for what applies."""
        found = {
            "retry": self.retry.name if self.retry else None,
            "timeout": self.timeout_name,
            "circuitBreaker": self.breaker.name if self.breaker else None,
        }
        return {kind: name for kind, name in found.items() if name}


class CircuitBreaker:
    """One component's breaker (sony/gobreaker's state machine)."""

    def __init__(self, policy: Breaker, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self.state = "closed"
        self._expiry = self._closed_expiry()
        self._counts = dict.fromkeys(_TRIP_VARIABLES, 0)

    def _closed_expiry(self) -> float:
        return self._clock() + self.policy.interval if self.policy.interval > 0 else 0.0

    def _to(self, state: str) -> None:
        self.state = state
        self._counts = dict.fromkeys(_TRIP_VARIABLES, 0)
        if state == "closed":
            self._expiry = self._closed_expiry()
        elif state == "open":
            self._expiry = self._clock() + self.policy.timeout
        else:
            self._expiry = 0.0

    def _current(self) -> str:
        now = self._clock()
        if self.state == "closed" and self._expiry and self._expiry <= now:
            self._to("closed")
        elif self.state == "open" and self._expiry <= now:
            self._to("half-open")
        return self.state

    def before(self) -> None:
        """Admit a call, or raise why not (the caller names the binding)."""
        with self._lock:
            state = self._current()
            if state == "open":
                raise CircuitOpenSignal("circuit breaker is open")
            if state == "half-open" and self._counts["requests"] >= self.policy.max_requests:
                raise CircuitOpenSignal("too many requests")
            self._counts["requests"] += 1

    def after(self, success: bool) -> None:
        with self._lock:
            state = self._current()
            counts = self._counts
            if success:
                counts["totalSuccesses"] += 1
                counts["consecutiveSuccesses"] += 1
                counts["consecutiveFailures"] = 0
                if state == "half-open" and counts["consecutiveSuccesses"] >= max(
                    self.policy.max_requests, 1
                ):
                    self._to("closed")
                return
            counts["totalFailures"] += 1
            counts["consecutiveFailures"] += 1
            counts["consecutiveSuccesses"] = 0
            if state == "half-open" or (state == "closed" and self.policy.trip(dict(counts))):
                self._to("open")


class CircuitOpenSignal(Exception):
    """Raised by `CircuitBreaker.before`; turned into `CircuitOpen` for the binding."""


@dataclass
class Policies:
    """Every Resiliency document of a profile, parsed: policies by name, targets by
    component."""

    retries: dict[str, Retry] = field(default_factory=dict)
    timeouts: dict[str, float] = field(default_factory=dict)
    breakers: dict[str, Breaker] = field(default_factory=dict)
    targets: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def policy(self, component: str, direction: str) -> Policy:
        """What applies to `component` in `direction` (`inbound` or `outbound`)."""
        entry = self.targets.get(component)
        if entry is not None:
            names = entry.get(direction, {})
        else:
            level = direction.capitalize()
            names = {}
            for kind, template in _DEFAULT_TEMPLATE.items():
                for prefix in (f"BindingComponent{level}", f"Component{level}", "Component", ""):
                    if template.format(prefix) in self.known(kind):
                        names[kind] = template.format(prefix)
                        break
        timeout_name = names.get("timeout")
        return Policy(
            retry=self.retries.get(names.get("retry", "")),
            timeout=self.timeouts.get(timeout_name) if timeout_name else None,
            timeout_name=timeout_name,
            breaker=self.breakers.get(names.get("circuitBreaker", "")),
        )

    def known(self, kind: str) -> dict[str, Any]:
        """The policies of one kind (`retry`, `timeout`, `circuitBreaker`) by name."""
        sections: dict[str, dict[str, Any]] = {
            "retry": self.retries,
            "timeout": self.timeouts,
            "circuitBreaker": self.breakers,
        }
        return sections[kind]


def _ranges(text: Any, low: int, high: int) -> tuple[tuple[int, int], ...]:
    found = []
    for part in str(text or "").split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        start, end = int(first), int(last or first)
        if not low <= start <= end <= high:
            raise ValueError(f"status codes {part!r} are outside {low}-{high}")
        found.append((start, end))
    return tuple(found)


_RETRY_KEYS = {
    "policy",
    "duration",
    "initialInterval",
    "randomizationFactor",
    "multiplier",
    "maxInterval",
    "maxElapsedTime",
    "maxRetries",
    "matching",
}


def _retry(name: str, raw: dict[str, Any]) -> Retry:
    unknown = set(raw) - _RETRY_KEYS
    if unknown:
        raise ValueError(
            f"unknown key {sorted(unknown)[0]!r} (keys: {', '.join(sorted(_RETRY_KEYS))})"
        )
    kind = str(raw.get("policy", "constant")).lower()
    if kind not in ("constant", "exponential"):
        raise ValueError(f"policy {kind!r} is neither constant nor exponential")
    matching = _mapping(raw.get("matching"), "matching")
    defaults = Retry(name)
    return Retry(
        name=name,
        exponential=kind == "exponential",
        duration=_seconds(raw.get("duration", "5s")),
        initial_interval=_seconds(raw.get("initialInterval", "500ms")),
        randomization_factor=_finite(
            raw.get("randomizationFactor", defaults.randomization_factor), "randomizationFactor"
        ),
        multiplier=_finite(raw.get("multiplier", defaults.multiplier), "multiplier"),
        max_interval=_seconds(raw.get("maxInterval", "60s")),
        max_elapsed_time=_seconds(raw.get("maxElapsedTime", "15m")),
        max_retries=_whole(raw.get("maxRetries", -1), "maxRetries"),
        http_codes=_ranges(matching.get("httpStatusCodes"), 100, 599),
        grpc_codes=_ranges(matching.get("gRPCStatusCodes"), 0, 16),
    )


def _breaker(name: str, raw: dict[str, Any]) -> Breaker:
    unknown = set(raw) - {"maxRequests", "interval", "timeout", "trip"}
    if unknown:
        raise ValueError(
            f"unknown key {sorted(unknown)[0]!r} (keys: interval, maxRequests, timeout, trip)"
        )
    timeout = _seconds(raw.get("timeout", "0s"))
    return Breaker(
        name=name,
        max_requests=_whole(raw.get("maxRequests", 0), "maxRequests") or 1,
        interval=_seconds(raw.get("interval", "0s")),
        timeout=timeout if timeout > 0 else 60.0,
        trip=Trip(str(raw.get("trip") or DEFAULT_TRIP)),
    )


def policies(documents: Sequence[Resiliency]) -> Policies:
    """The documents' policies and targets, later documents adding to (and, for a name
    used twice, replacing) earlier ones, as daprd loads them. Every problem is reported
    with its document and path."""
    parsed = Policies()
    problems: list[UserError] = []
    # The document that last set each component's targets, to name in its problems.
    target_sources: dict[str, Resiliency] = {}
    for document in documents:

        def problem(path: str, message: str, source: Resiliency = document) -> None:
            problems.append(
                ComponentError(message, file=source.source, component=source.name, field=path)
            )

        readers: tuple[tuple[str, Callable[[str, Any], Any], dict[str, Any]], ...] = (
            ("timeouts", lambda _n, raw: _seconds(raw, milliseconds=True), parsed.timeouts),
            ("retries", _retry, parsed.retries),
            ("circuitBreakers", _breaker, parsed.breakers),
        )
        try:
            spec_policies = _mapping(document.spec.get("policies"), "spec.policies")
            sections = {
                section: _mapping(spec_policies.get(section), f"spec.policies.{section}")
                for section, _read, _into in readers
            }
            targets = _mapping(document.spec.get("targets"), "spec.targets")
            components = _mapping(targets.get("components"), "spec.targets.components")
        except ValueError as error:
            where, _, message = str(error).partition(": ")
            problem(where, message)
            continue
        for section, read, into in readers:
            for name, raw in sections[section].items():
                try:
                    if section != "timeouts" and not isinstance(raw, dict):
                        raise ValueError("expected a mapping of settings")
                    into[name] = read(name, raw)
                except (ValueError, TypeError, OverflowError) as error:
                    problem(f"spec.policies.{section}.{name}", str(error))
        for component, entry in components.items():
            directions: dict[str, dict[str, str]] = {}
            where = f"spec.targets.components.{component}"
            if not isinstance(entry, dict | None):
                problem(where, "expected a mapping of inbound and outbound")
                continue
            for direction, names in (entry or {}).items():
                if direction not in (INBOUND, OUTBOUND):
                    problem(f"{where}.{direction}", "expected inbound or outbound")
                    continue
                if not isinstance(names, dict | None):
                    problem(f"{where}.{direction}", "expected a mapping of policy kinds to names")
                    continue
                directions[direction] = {}
                for kind, name in (names or {}).items():
                    if kind not in KINDS:
                        problem(
                            f"{where}.{direction}.{kind}", f"expected one of {', '.join(KINDS)}"
                        )
                    else:
                        directions[direction][kind] = str(name)
            parsed.targets[component] = directions
            target_sources[component] = document
    for component, directions in parsed.targets.items():
        for direction, names in directions.items():
            for kind, name in names.items():
                section = _SECTIONS[kind]
                known = parsed.known(kind)
                if name not in known:
                    source = target_sources[component]
                    problems.append(
                        ComponentError(
                            f"names {kind} policy {shorten(name)!r}, which "
                            f"spec.policies.{section} does not define",
                            file=source.source,
                            component=source.name,
                            field=f"spec.targets.components.{component}.{direction}.{kind}",
                            hint=f"defined: {', '.join(sorted(known)) or 'none'}",
                        )
                    )
    if problems:
        raise problems[0] if len(problems) == 1 else ValidationFailed(problems)
    return parsed


def _with_timeout(seconds: float, operation: Callable[[], T]) -> T:
    """Run `operation`, giving up on it after `seconds` (it finishes on its own thread,
    as daprd leaves a timed-out call's goroutine)."""
    outcome: list[Any] = []
    done = threading.Event()

    def attempt() -> None:
        try:
            outcome.append((True, operation()))
        except BaseException as error:  # handed to the caller's thread
            outcome.append((False, error))
        done.set()

    threading.Thread(target=attempt, name="portabind-timeout", daemon=True).start()
    if not done.wait(seconds):
        raise TimeoutError(f"context deadline exceeded (timeout {seconds:g}s)")
    succeeded, value = outcome[0]
    if succeeded:
        return value  # type: ignore[no-any-return]
    raise value


class Engine:
    """Runs calls under the policies of a profile; one breaker per component."""

    def __init__(self, parsed: Policies, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.policies = parsed
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def breaker(self, component: str, policy: Breaker) -> CircuitBreaker:
        with self._lock:
            found = self._breakers.get(component)
            if found is None:
                found = self._breakers[component] = CircuitBreaker(policy, self._clock)
            return found

    def run(
        self,
        component: str,
        direction: str,
        operation: Callable[[], T],
        *,
        stop: threading.Event | None = None,
    ) -> T:
        """`operation` under the component's policies for `direction`: an open breaker
        raises `CircuitOpen`, a timeout `PolicyTimeout`, else the last failure is raised once
        no retry is left. `stop` ends the waits between retries."""
        policy = self.policies.policy(component, direction)
        if not policy:
            return operation()
        breaker = self.breaker(component, policy.breaker) if policy.breaker else None

        def attempt() -> T:
            if breaker is not None:
                try:
                    breaker.before()
                except CircuitOpenSignal as signal:
                    raise _Permanent(CircuitOpen(component, str(signal))) from None
            try:
                result = (
                    _with_timeout(policy.timeout, operation)
                    if policy.timeout is not None and policy.timeout > 0
                    else operation()
                )
            except TimeoutError as error:
                if breaker is not None:
                    breaker.after(False)
                raise PolicyTimeout(component, str(error)) from None
            except BaseException:
                if breaker is not None:
                    breaker.after(False)
                raise
            if breaker is not None:
                breaker.after(True)
            return result

        retry = policy.retry
        if retry is None:
            try:
                return attempt()
            except _Permanent as permanent:
                raise permanent.error from None
        started = self._clock()
        delays = retry.delays()
        while True:
            try:
                return attempt()
            except _Permanent as permanent:
                raise permanent.error from None
            except Exception as error:
                if not retry.matches(error):
                    raise
                delay = next(delays, None)
                elapsed = self._clock() - started
                if delay is None or (
                    retry.exponential
                    and retry.max_elapsed_time > 0
                    and elapsed + delay > retry.max_elapsed_time
                ):
                    raise
                if (stop or threading.Event()).wait(delay):
                    raise


class ResilientOutput(OutputBinding[Any]):
    """An output client whose calls run under the component's outbound policies."""

    def __init__(self, inner: OutputBinding[Any], engine: Engine) -> None:
        super().__init__(inner.name, inner.metadata)
        # `operations` is a class attribute of binding classes: answer for the wrapped one.
        setattr(self, "operations", inner.operations)  # noqa: B010
        self._inner = inner
        self._engine = engine

    def invoke(self, operation: str, data: bytes, metadata: Metadata) -> BindingResponse:
        try:
            return self._engine.run(
                self.name, OUTBOUND, lambda: self._inner.invoke(operation, data, metadata)
            )
        except PolicyFailure as failure:
            raise BindingError(self.name, operation, failure.reason) from failure

    def close(self) -> None:
        self._inner.close()


def resilient(client: OutputBinding[Any], engine: Engine) -> OutputBinding[Any]:
    """`client`, its calls run under its component's outbound policies when it has any."""
    if engine.policies.policy(client.name, OUTBOUND):
        return ResilientOutput(client, engine)
    return client


class _Permanent(Exception):
    """Ends the retries at once (an open breaker)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error
