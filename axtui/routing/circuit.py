"""The circuit breaker of one deployment, and what counts as its fault.

*Closed* normally; *open* after ``failures`` failures in a row, or an
error rate of ``error_rate`` over at least ``min_calls`` calls in the
health window, so no call is sent; *half-open* once ``cooldown_s`` has
passed, letting ``half_open_probes`` probe calls through; a probe's
success closes it, a failure opens it again. Time is passed in (monotonic
seconds), so tests drive it with a fake clock.

What counts as the deployment's fault (`classify`): server errors,
timeouts, dropped connections, malformed answers, refused keys, unknown
models (404). What does not: a request the provider rejected as wrong
(400, 422, context too long), which another deployment would reject too,
an upstream 429 (a cooldown handles that), and calls the caller cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from axtui.config import RoutingConfig
from axtui.errors import AxError, ContextTooLong, ProviderBadRequest, ProviderError, ProviderRateLimited

__all__ = ["CircuitBreaker", "CircuitState", "HealthPolicy", "Outcome", "Transition", "classify"]

CircuitState = Literal["closed", "open", "half_open"]
#: How an attempt ended, as far as the deployment's health is concerned.
Outcome = Literal["ok", "fault", "rate_limited", "request", "cancelled"]


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
