"""Health of each deployment: latency, errors, load, and its circuit breaker.

Every attempt the engine makes ends in `HealthBook.observe`. Per
deployment it keeps latency and time to first token (an EWMA for the trend
and windowed p50/p95 from mergeable histograms), output tokens per second,
the error rate over the window, the calls in flight, and two guards:

- a **circuit breaker** (`axtui.routing.circuit`), which also says what
  counts as the deployment's fault;
- a **cooldown** after an upstream 429, for as long as its Retry-After
  asked (``rate_limit_cooldown_s`` when it named none).

The latency strategy reads `DeploymentHealth.expected_ms`, a forecast
that follows changes within seconds (`LatencyForecast`); the windowed
histograms are what tables and the dashboard show.

Everything takes its time from a `Clock`, so tests drive it with a
`FakeClock` and replaying stored calls uses one set to their timestamps.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from axtui.clock import Clock
from axtui.errors import AxError, ProviderRateLimited
from axtui.histogram import WindowedHistogram
from axtui.routing.circuit import CircuitBreaker, CircuitState, HealthPolicy, Outcome, Transition, classify
from axtui.routing.usage import UsageBook
from axtui.types import Deployment, Usage

__all__ = [
    "QUEUEING_FACTOR",
    "CircuitBreaker",
    "CircuitState",
    "DeploymentHealth",
    "HealthBook",
    "HealthPolicy",
    "HealthSnapshot",
    "LatencyForecast",
    "Outcome",
    "Transition",
    "classify",
]

_SLOTS = 6
_EWMA_ALPHA = 0.15
# The routing estimate forgets with time, not with samples: news this old
# weighs 1/e as much as news just in, however rarely the deployment is used.
_DECAY_S = 5.0
# A busy deployment averages over about 1/_MIN_WEIGHT latest answers at least.
_MIN_WEIGHT = 0.02
_Z95 = 1.6449
#: Longest Retry-After honoured as a cooldown; a provider asking for more is tried again after this.
MAX_COOLDOWN_S = 600.0
#: Recent latency this many times the usual, with calls in flight, reads as calls waiting in a queue.
QUEUEING_FACTOR = 2.0
# How fast the usual latency follows a lasting rise (per answer): a slow
# drift, so a queue that builds over a minute still shows against it.
_USUAL_DRIFT = 0.005
# After a 429 the deployment is given this share of the calls in flight then.
_LIMIT_BACKOFF = 0.75


class LatencyForecast:
    """Recent latency as a straight line in output tokens, with its spread.

    A time-decayed least-squares fit: each answer weighs ``1 - exp(-dt/_DECAY_S)``
    against everything before it (at least `_MIN_WEIGHT`), where ``dt`` is
    the time since the previous answer. A deployment called rarely is thus
    judged by its latest answers, however old the earlier ones are; a busy
    one by about its last ``1/_MIN_WEIGHT`` answers.
    """

    __slots__ = ("at", "cxx", "cxy", "cyy", "mx", "my", "n")

    def __init__(self) -> None:
        self.n = 0
        self.at = self.mx = self.my = self.cxx = self.cxy = self.cyy = 0.0

    def add(self, now: float, tokens: float, latency_ms: float) -> None:
        """One answer of ``tokens`` output tokens that took ``latency_ms``."""
        if not self.n:
            self.mx, self.my = float(tokens), latency_ms
        else:
            w = max(_MIN_WEIGHT, 1.0 - math.exp(-(now - self.at) / _DECAY_S))
            dx, dy = tokens - self.mx, latency_ms - self.my
            self.mx += w * dx
            self.my += w * dy
            keep = 1.0 - w
            self.cxx = keep * (self.cxx + w * dx * dx)
            self.cxy = keep * (self.cxy + w * dx * dy)
            self.cyy = keep * (self.cyy + w * dy * dy)
        self.n += 1
        self.at = now

    def p95(self, tokens: float | None = None) -> float:
        """The 95th percentile latency of an answer of ``tokens`` tokens (the recent mean length when None)."""
        slope = max(0.0, self.cxy / self.cxx) if self.cxx > 1.0 else 0.0
        x = self.mx if tokens is None else tokens
        spread = math.sqrt(max(0.0, self.cyy - slope * self.cxy))
        return max(0.1, self.my + slope * (x - self.mx) + _Z95 * spread)


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
        #: What the next call's latency should be (for the latency strategy).
        self.forecast = LatencyForecast()
        #: Recent chance that a call fails by the deployment's fault, decayed like the forecast.
        self.fault_p = 0.0
        self._fault_at: float | None = None
        #: Calls in flight the upstream took before answering 429, learned (None: no limit seen).
        self.limit: float | None = None
        #: The usual latency when not queueing: the lowest recent mean, drifting up slowly.
        self.usual_ms: float | None = None
        self._expected_key: tuple[object, ...] | None = None
        self._expected = 0.0

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
        if outcome == "ok":
            self.in_a_row = 0
            if self.limit is not None and self.in_flight + 1 >= self.limit:
                # Additive increase: about one more call in flight per limit's worth of answers at the limit.
                self.limit += 1.0 / self.limit
            if self.circuit.success(now, wall):
                # A fresh start: the failures and slow answers from before it
                # opened are history; the probe's answer is the first of the new.
                self.forget()
            self.counts.add(now, False, False)
            self._fault(now, 0.0)
            if learn:
                self._learn(now, latency_ms, ttft_ms, output_tokens)
            return
        self.total_errors += 1
        self.last_error = error
        if outcome == "rate_limited":
            self.counts.add(now, False, True)
            # Multiplicative decrease: the upstream said no with this many calls in flight (this one included).
            said_no = max(1.0, (self.in_flight + (1 if started else 0)) * _LIMIT_BACKOFF)
            self.limit = said_no if self.limit is None else max(1.0, min(self.limit * _LIMIT_BACKOFF, said_no))
            wait = self.policy.rate_limit_cooldown_s if retry_after is None else retry_after
            self.cooldown_until = max(self.cooldown_until, now + min(max(wait, 0.0), MAX_COOLDOWN_S))
            self.circuit.release()
            return
        self.in_a_row += 1
        self.counts.add(now, True, False)
        self._fault(now, 1.0)
        calls, faults, _ = self.counts.totals(now)
        self.circuit.failure(now, wall, self.in_a_row, calls, faults)

    def forget(self) -> None:
        """Drop the window and the trends (not the circuit, in-flight count or totals)."""
        self.counts.clear()
        self.latency.clear()
        self.ttft.clear()
        self.latency_ewma = self.ttft_ewma = self.tps_ewma = None
        self.forecast = LatencyForecast()
        self.fault_p = 0.0
        self._fault_at = None

    def _fault(self, now: float, x: float) -> None:
        if self._fault_at is None:
            self.fault_p = x
        else:
            w = max(_MIN_WEIGHT, 1.0 - math.exp(-(now - self._fault_at) / _DECAY_S))
            self.fault_p += w * (x - self.fault_p)
        self._fault_at = now

    def _learn(self, now: float, latency_ms: float, ttft_ms: float | None, output_tokens: int) -> None:
        a = _EWMA_ALPHA
        self.latency.add(latency_ms, now)
        self.forecast.add(now, output_tokens, latency_ms)
        self.latency_ewma = latency_ms if self.latency_ewma is None else self.latency_ewma + a * (
            latency_ms - self.latency_ewma)
        ewma = self.latency_ewma
        usual = self.usual_ms
        self.usual_ms = ewma if usual is None or ewma < usual else usual + _USUAL_DRIFT * (ewma - usual)
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

    def expected_ms(self, now: float, output_tokens: int | None = None) -> float | None:
        """The p95 latency a call should expect now, errors priced in; None before any answer.

        ``output_tokens`` is the answer length to expect (answers of
        different lengths take different times; comparing deployments at
        the same length takes that noise out). The forecast follows a
        deployment that slows down or recovers within seconds, even when it
        is rarely called (see `LatencyForecast`); the windowed histograms
        are the record, this is the forecast.
        """
        f = self.forecast
        if not f.n:
            return None
        # The routers ask for every candidate on every call, and most have not changed since.
        key = (f, f.n, self.fault_p, output_tokens)
        if key == self._expected_key:
            return self._expected
        p95 = f.p95(output_tokens)
        # A failed attempt costs its time and then another attempt.
        self._expected = value = p95 * (1.0 + 2.0 * self.fault_p)
        self._expected_key = key
        return value

    def queueing(self) -> float | None:
        """How many times its usual latency the recent answers took, when that is ``QUEUEING_FACTOR`` or more.

        None when calls do not seem to wait: latency near its usual, too
        few answers to tell, or nothing of ours in flight to queue behind.
        """
        if self.in_flight < 1 or self.usual_ms is None or self.latency_ewma is None or self.total_calls < 5:
            return None
        ratio = self.latency_ewma / max(self.usual_ms, 1.0)
        return ratio if ratio >= QUEUEING_FACTOR else None

    def at_limit(self) -> bool:
        """Whether as many calls are in flight as the upstream accepted before its last 429."""
        return self.limit is not None and self.in_flight >= int(self.limit)

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
        self._by_object: dict[int, tuple[Deployment, DeploymentHealth]] = {}
        self.transitions: deque[Transition] = deque(maxlen=history)
        self.listeners: list[Callable[[Transition], None]] = []
        #: Recent mean answer length (output tokens) over every deployment; None before any answer.
        self.mean_output: float | None = None
        #: Tokens per call of each deployment, by prompt size (the cost strategy's history).
        self.usage = UsageBook()
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
            h.policy = h.circuit.policy = policy
        self.policy = policy

    def use_clock(self, clock: Clock) -> None:
        """Read time from ``clock`` from now on (replaying history uses its own)."""
        self.clock = clock
        for h in self.by_id.values():
            h.clock = clock

    def get(self, deployment: Deployment) -> DeploymentHealth:
        """The health of ``deployment`` (created empty on first use)."""
        # The router asks several times per call for the catalog's own objects:
        # found by identity first, without building the id string.
        hit = self._by_object.get(id(deployment))
        if hit is not None and hit[0] is deployment:
            return hit[1]
        h = self.by_id.get(deployment.id)
        if h is None:
            h = self.by_id[deployment.id] = DeploymentHealth(deployment, self.policy, self.clock, self._changed)
        if len(self._by_object) < 10_000:
            self._by_object[id(deployment)] = (deployment, h)
        return h

    def begin(self, deployment: Deployment) -> None:
        """A call to ``deployment`` starts."""
        self.get(deployment).begin()

    def observe(self, deployment: Deployment, ok: bool, latency_ms: float, ttft_ms: float | None = None,
                output_tokens: int = 0, error: AxError | None = None, retry_after: float | None = None,
                *, started: bool = True, usage: Usage | None = None) -> Outcome:
        """An attempt on ``deployment`` ended; returns how it was classified.

        ``usage``, what a successful attempt reported, teaches the usage book.
        """
        outcome = classify(ok, error)
        if ok:
            self.note_output(output_tokens)
            if usage is not None:
                self.usage.add(deployment.id, usage)
        if retry_after is None and isinstance(error, ProviderRateLimited):
            retry_after = error.retry_after
        self.get(deployment).end(outcome, latency_ms, ttft_ms, output_tokens, retry_after,
                                 None if error is None else f"{error.kind}: {error.message}"[:300], started=started)
        return outcome

    def note_output(self, tokens: int) -> None:
        """An answer of ``tokens`` output tokens came back (for `mean_output`)."""
        if tokens > 0:
            m = self.mean_output
            self.mean_output = float(tokens) if m is None else m + 0.02 * (tokens - m)

    def snapshot(self) -> list[HealthSnapshot]:
        """Every deployment's health, in the order they became known."""
        return [h.snapshot() for h in self.by_id.values()]
