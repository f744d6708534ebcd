"""Health of each deployment: latency, errors, load, and its circuit breaker.

Every attempt the engine makes ends in `HealthBook.observe`. Per
deployment it keeps latency and time to first token (an EWMA for the trend
and windowed p50/p95 from mergeable histograms), output tokens per second,
the error rate over the window, the calls in flight, and two guards:

- a **circuit breaker**: *closed* normally; *open* after
  ``failures`` failures in a row or an error rate of ``error_rate`` over at
  least ``min_calls`` calls in the window, so no call is sent; *half-open*
  once ``cooldown_s`` has passed, letting ``half_open_probes`` probe
  calls through; a probe's success closes it, a failure opens it again.
- a **cooldown** after an upstream 429, for as long as its Retry-After
  asked (``rate_limit_cooldown_s`` when it named none).

What counts as the deployment's fault: server errors, timeouts, dropped
connections, malformed answers, refused keys, unknown models (404). What
does not: a request the provider rejected as wrong (400, 422, context too
long), which another deployment would reject too, and calls the caller
cancelled.

Everything takes its time from a `Clock`, so tests drive it with a
`FakeClock` and replaying stored calls uses one set to their timestamps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from axtui.clock import Clock
from axtui.config import RoutingConfig
from axtui.errors import AxError, ContextTooLong, ProviderBadRequest, ProviderError, ProviderRateLimited
from axtui.histogram import WindowedHistogram
from axtui.types import Deployment

__all__ = [
    "CircuitBreaker",
    "CircuitState",
    "DeploymentHealth",
    "HealthBook",
    "HealthPolicy",
    "HealthSnapshot",
    "Outcome",
    "Transition",
    "classify",
]

CircuitState = Literal["closed", "open", "half_open"]
#: How an attempt ended, as far as the deployment's health is concerned.
Outcome = Literal["ok", "fault", "rate_limited", "request", "cancelled"]

_SLOTS = 6
_EWMA_ALPHA = 0.15
# The cached p95 is recomputed after this many new samples or this long.
_RECOMPUTE_EVERY = 16
_RECOMPUTE_AFTER_S = 0.2
# Fewer samples than this in the window: the EWMA stands in for the p95.
_MIN_WINDOW_SAMPLES = 3
#: Longest Retry-After honoured as a cooldown; beyond this the circuit takes over.
MAX_COOLDOWN_S = 600.0


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """Thresholds of the breaker and the window, from ``[routing]``."""

    window_s: float = 60.0
    failures: int = 5
    error_rate: float = 0.5
    min_calls: int = 10
    cooldown_s: float = 30.0
    rate_limit_cooldown_s: float = 5.0
    half_open_probes: int = 1

    @classmethod
    def from_config(cls, cfg: RoutingConfig) -> HealthPolicy:
        """The policy a routing config describes."""
        return cls(
            window_s=cfg.window_s,
            failures=cfg.circuit_failures,
            error_rate=cfg.circuit_error_rate,
            min_calls=cfg.circuit_min_calls,
            cooldown_s=cfg.circuit_cooldown_s,
            rate_limit_cooldown_s=cfg.rate_limit_cooldown_s,
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """A circuit changing state, for logs, events and the dashboard."""

    deployment: str
    ts: float
    before: CircuitState
    after: CircuitState
    reason: str


def classify(ok: bool, error: AxError | None) -> Outcome:
    """Whose fault an attempt's end was (see the module docstring)."""
    if ok:
        return "ok"
    if error is None or not isinstance(error, ProviderError):
        return "cancelled"
    if isinstance(error, ProviderRateLimited):
        return "rate_limited"
    if isinstance(error, ContextTooLong):
        return "request"
    if isinstance(error, ProviderBadRequest):
        # 404 means the deployment names a model the provider lacks: its fault.
        return "fault" if error.http_status == 404 else "request"
    return "fault"


class CircuitBreaker:
    """Closed, open or half-open, moved by outcomes and the clock.

    ``on_change`` is called with each `Transition`.
    """

    __slots__ = ("_probes", "deployment", "on_change", "opened_at", "policy", "reason", "state")

    def __init__(
        self,
        deployment: str,
        policy: HealthPolicy,
        on_change: Callable[[Transition], None] | None = None,
    ) -> None:
        self.deployment = deployment
        self.policy = policy
        self.on_change = on_change
        self.state: CircuitState = "closed"
        self.opened_at = 0.0
        self.reason = ""
        self._probes = 0

    def _move(self, to: CircuitState, reason: str, wall: float) -> None:
        before, self.state, self.reason = self.state, to, reason
        if self.on_change is not None and before != to:
            self.on_change(Transition(self.deployment, wall, before, to, reason))

    def current(self, now: float, wall: float = 0.0) -> CircuitState:
        """The state at ``now``: an open circuit turns half-open when its cooldown is over."""
        if self.state == "open" and now - self.opened_at >= self.policy.cooldown_s:
            self._probes = 0
            self._move("half_open", f"cooldown of {self.policy.cooldown_s:g}s over; letting a probe through", wall)
        return self.state

    def allows(self, now: float, wall: float = 0.0) -> bool:
        """Whether a call may be sent now (half-open: while a probe slot is free)."""
        state = self.current(now, wall)
        return state == "closed" or (state == "half_open" and self._probes < self.policy.half_open_probes)

    def retry_in(self, now: float) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self.opened_at + self.policy.cooldown_s - now)

    def start(self, now: float, wall: float = 0.0) -> None:
        """A call is being sent (takes a probe slot when half-open)."""
        if self.current(now, wall) == "half_open":
            self._probes += 1

    def release(self) -> None:
        """A call ended without telling anything (cancelled): free its probe slot."""
        if self.state == "half_open" and self._probes > 0:
            self._probes -= 1

    def success(self, now: float, wall: float = 0.0) -> bool:
        """A call succeeded; returns True when that closed the circuit."""
        if self.current(now, wall) == "half_open":
            self._probes = 0
            self._move("closed", "a probe call succeeded", wall)
            return True
        return False

    def failure(self, now: float, wall: float, in_a_row: int, calls: int, errors: int) -> bool:
        """A call failed by the deployment's fault; returns True when that opened the circuit."""
        state = self.current(now, wall)
        p = self.policy
        if state == "half_open":
            reason = "the probe call failed"
        elif state == "open":
            return False
        elif in_a_row >= p.failures:
            reason = f"{in_a_row} failures in a row"
        elif calls >= p.min_calls and errors / calls >= p.error_rate:
            reason = f"{errors} of the last {calls} calls failed ({errors / calls:.0%})"
        else:
            return False
        self.opened_at = now
        self._probes = 0
        self._move("open", reason, wall)
        return True


@dataclass(slots=True)
class HealthSnapshot:
    """One deployment's health at a moment, for tables, explain and the dashboard.

    Times are milliseconds; counts and rates cover the last ``window_s``
    seconds, except ``total_*`` (since the process started, or since the
    history replayed). None means no data yet.
    """

    deployment: str
    provider: str
    model: str
    region: str
    state: CircuitState
    state_reason: str
    retry_in_s: float
    cooldown_s: float
    in_flight: int
    calls: int
    errors: int
    rate_limited: int
    error_rate: float
    consecutive_failures: int
    latency_ewma_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    ttft_ewma_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    tokens_per_s: float | None
    last_error: str | None
    last_seen_s: float | None
    total_calls: int
    total_errors: int
    window_s: float

    @property
    def available(self) -> bool:
        """Whether calls are being sent to it (circuit not open, no cooldown)."""
        return self.state != "open" and self.cooldown_s <= 0


class _Counts:
    """Calls, faults and 429s per slot of the window."""

    __slots__ = ("calls", "epochs", "faults", "limited", "slot_s")

    def __init__(self, span_s: float, slots: int) -> None:
        self.slot_s = span_s / slots
        self.epochs = [-1] * slots
        self.calls = [0] * slots
        self.faults = [0] * slots
        self.limited = [0] * slots

    def add(self, now: float, fault: bool, limited: bool) -> None:
        epoch = int(now // self.slot_s)
        i = epoch % len(self.epochs)
        if self.epochs[i] != epoch:
            self.epochs[i] = epoch
            self.calls[i] = self.faults[i] = self.limited[i] = 0
        self.calls[i] += 1
        self.faults[i] += fault
        self.limited[i] += limited

    def totals(self, now: float) -> tuple[int, int, int]:
        oldest = int(now // self.slot_s) - len(self.epochs) + 1
        calls = faults = limited = 0
        for i, e in enumerate(self.epochs):
            if e >= oldest:
                calls += self.calls[i]
                faults += self.faults[i]
                limited += self.limited[i]
        return calls, faults, limited

    def clear(self) -> None:
        self.epochs = [-1] * len(self.epochs)


class DeploymentHealth:
    """Everything known about how one deployment is doing."""

    def __init__(self, deployment: Deployment, policy: HealthPolicy, clock: Clock,
                 on_change: Callable[[Transition], None] | None = None) -> None:
        self.deployment = deployment
        self.policy = policy
        self.clock = clock
        self.circuit = CircuitBreaker(deployment.id, policy, on_change)
        self.latency = WindowedHistogram(policy.window_s, _SLOTS)
        self.ttft = WindowedHistogram(policy.window_s, _SLOTS)
        self.counts = _Counts(policy.window_s, _SLOTS)
        self.latency_ewma: float | None = None
        self.ttft_ewma: float | None = None
        self.tps_ewma: float | None = None
        self.in_flight = 0
        self.in_a_row = 0
        self.cooldown_until = 0.0
        self.last_seen: float | None = None
        self.last_error: str | None = None
        self.total_calls = 0
        self.total_errors = 0
        self._version = 0
        self._p95_version = -1
        self._p95_at = -1e18
        self._p95: float | None = None

    # -- events ---------------------------------------------------------------------------

    def begin(self) -> None:
        """A call to this deployment starts."""
        self.in_flight += 1
        self.circuit.start(self.clock.monotonic(), self.clock.now())

    def end(self, outcome: Outcome, latency_ms: float, ttft_ms: float | None = None, output_tokens: int = 0,
            retry_after: float | None = None, error: str | None = None, *, started: bool = True,
            learn: bool = True) -> None:
        """A call ended with ``outcome`` (see `classify`).

        ``started`` is False when replaying history, where no `begin` came first;
        ``learn`` False counts a success without taking its latency (a replayed
        call whose latency includes earlier failed attempts).
        """
        now, wall = self.clock.monotonic(), self.clock.now()
        if started and self.in_flight > 0:
            self.in_flight -= 1
        if outcome in ("cancelled", "request"):
            self.circuit.release()
            return
        self.last_seen = now
        self.total_calls += 1
        self._version += 1
        if outcome == "ok":
            self.in_a_row = 0
            self.counts.add(now, False, False)
            if learn:
                self._learn(now, latency_ms, ttft_ms, output_tokens)
            if self.circuit.success(now, wall):
                # A fresh start: the failures that opened it are history now.
                self.counts.clear()
            return
        self.total_errors += 1
        self.last_error = error
        if outcome == "rate_limited":
            self.counts.add(now, False, True)
            wait = self.policy.rate_limit_cooldown_s if retry_after is None else retry_after
            self.cooldown_until = max(self.cooldown_until, now + min(max(wait, 0.0), MAX_COOLDOWN_S))
            self.circuit.release()
            return
        self.in_a_row += 1
        self.counts.add(now, True, False)
        calls, faults, _ = self.counts.totals(now)
        self.circuit.failure(now, wall, self.in_a_row, calls, faults)

    def _learn(self, now: float, latency_ms: float, ttft_ms: float | None, output_tokens: int) -> None:
        a = _EWMA_ALPHA
        self.latency.add(latency_ms, now)
        self.latency_ewma = latency_ms if self.latency_ewma is None else self.latency_ewma + a * (
            latency_ms - self.latency_ewma)
        if ttft_ms is not None:
            self.ttft.add(ttft_ms, now)
            self.ttft_ewma = ttft_ms if self.ttft_ewma is None else self.ttft_ewma + a * (ttft_ms - self.ttft_ewma)
        if output_tokens > 0 and latency_ms > 0:
            # Generation speed: after the first token when a stream told us when that was.
            gen_ms = latency_ms - ttft_ms if ttft_ms is not None and latency_ms - ttft_ms > 1.0 else latency_ms
            tps = output_tokens * 1000.0 / gen_ms
            self.tps_ewma = tps if self.tps_ewma is None else self.tps_ewma + a * (tps - self.tps_ewma)

    # -- views ----------------------------------------------------------------------------

    def available(self, now: float) -> bool:
        """Whether the circuit lets a call through now (cooldowns aside)."""
        return self.circuit.allows(now, self.clock.now())

    def cooling(self, now: float) -> float:
        """Seconds left of a 429 cooldown (0 when none)."""
        return max(0.0, self.cooldown_until - now)

    def expected_ms(self, now: float) -> float | None:
        """The latency a call should expect: windowed p95 (EWMA with few samples), errors priced in.

        None when the deployment has never answered.
        """
        if self._p95_version != self._version or now - self._p95_at >= self.latency._slot_s:
            stale = now - self._p95_at
            if stale >= _RECOMPUTE_AFTER_S or self._version - self._p95_version >= _RECOMPUTE_EVERY \
                    or stale >= self.latency._slot_s:
                self._p95_version, self._p95_at = self._version, now
                if self.latency.count(now) >= _MIN_WINDOW_SAMPLES:
                    self._p95 = self.latency.total.quantile(0.95)
                else:
                    self._p95 = self.latency_ewma
                if self._p95 is not None:
                    calls, faults, _ = self.counts.totals(now)
                    # A failed attempt costs its time and then another attempt.
                    self._p95 *= 1.0 + 2.0 * (faults / calls if calls else 0.0)
        return self._p95

    def error_rate(self, now: float) -> float:
        """Share of the window's calls that failed by the deployment's fault."""
        calls, faults, _ = self.counts.totals(now)
        return faults / calls if calls else 0.0

    def snapshot(self) -> HealthSnapshot:
        """The health as plain data, at the clock's now."""
        now, wall = self.clock.monotonic(), self.clock.now()
        state = self.circuit.current(now, wall)
        calls, faults, limited = self.counts.totals(now)
        lat = self.latency.snapshot(now)
        ttft = self.ttft.snapshot(now)
        l50, l95 = lat.quantiles((0.5, 0.95))
        t50, t95 = ttft.quantiles((0.5, 0.95))
        d = self.deployment
        return HealthSnapshot(
            deployment=d.id,
            provider=d.provider,
            model=d.model,
            region=d.region,
            state=state,
            state_reason=self.circuit.reason,
            retry_in_s=self.circuit.retry_in(now),
            cooldown_s=self.cooling(now),
            in_flight=self.in_flight,
            calls=calls,
            errors=faults,
            rate_limited=limited,
            error_rate=faults / calls if calls else 0.0,
            consecutive_failures=self.in_a_row,
            latency_ewma_ms=self.latency_ewma,
            latency_p50_ms=l50,
            latency_p95_ms=l95,
            ttft_ewma_ms=self.ttft_ewma,
            ttft_p50_ms=t50,
            ttft_p95_ms=t95,
            tokens_per_s=self.tps_ewma,
            last_error=self.last_error,
            last_seen_s=None if self.last_seen is None else now - self.last_seen,
            total_calls=self.total_calls,
            total_errors=self.total_errors,
            window_s=self.policy.window_s,
        )


class HealthBook:
    """The health of every deployment, created on first sight.

    Args:
        policy: breaker and window thresholds.
        clock: the clock every decision reads.
        deployments: deployments known up front (others are added when seen).
        history: how many circuit transitions to keep for `transitions`.
    """

    def __init__(self, policy: HealthPolicy, clock: Clock, deployments: Iterable[Deployment] = (),
                 history: int = 200) -> None:
        self.policy = policy
        self.clock = clock
        self.by_id: dict[str, DeploymentHealth] = {}
        self.transitions: deque[Transition] = deque(maxlen=history)
        self.listeners: list[Callable[[Transition], None]] = []
        for d in deployments:
            self.get(d)

    def _changed(self, t: Transition) -> None:
        self.transitions.append(t)
        for listener in self.listeners:
            listener(t)

    def set_policy(self, policy: HealthPolicy) -> None:
        """Apply new thresholds; a new window length starts the windows afresh."""
        for h in self.by_id.values():
            if policy.window_s != h.policy.window_s:
                h.latency = WindowedHistogram(policy.window_s, _SLOTS)
                h.ttft = WindowedHistogram(policy.window_s, _SLOTS)
                h.counts = _Counts(policy.window_s, _SLOTS)
                h._p95_version = -1
            h.policy = h.circuit.policy = policy
        self.policy = policy

    def use_clock(self, clock: Clock) -> None:
        """Read time from ``clock`` from now on (replaying history uses its own)."""
        self.clock = clock
        for h in self.by_id.values():
            h.clock = clock

    def get(self, deployment: Deployment) -> DeploymentHealth:
        """The health of ``deployment`` (created empty on first use)."""
        h = self.by_id.get(deployment.id)
        if h is None:
            h = self.by_id[deployment.id] = DeploymentHealth(deployment, self.policy, self.clock, self._changed)
        return h

    def begin(self, deployment: Deployment) -> None:
        """A call to ``deployment`` starts."""
        self.get(deployment).begin()

    def observe(self, deployment: Deployment, ok: bool, latency_ms: float, ttft_ms: float | None = None,
                output_tokens: int = 0, error: AxError | None = None, retry_after: float | None = None,
                *, started: bool = True) -> Outcome:
        """An attempt on ``deployment`` ended; returns how it was classified."""
        outcome = classify(ok, error)
        if retry_after is None and isinstance(error, ProviderRateLimited):
            retry_after = error.retry_after
        self.get(deployment).end(outcome, latency_ms, ttft_ms, output_tokens, retry_after,
                                 None if error is None else f"{error.kind}: {error.message}"[:300], started=started)
        return outcome

    def snapshot(self) -> list[HealthSnapshot]:
        """Every deployment's health, in the order they became known."""
        return [h.snapshot() for h in self.by_id.values()]
