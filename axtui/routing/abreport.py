"""A/B test results from the call log, and user feedback on answers.

Calls made under a test carry ``variant = "<test>:<variant>"``, so any
process can report on a test from the store: calls, errors, latency
(p50/p95 through a mergeable histogram), cost and tokens per variant, and
the mean of the feedback users gave (`record_feedback`, 0 = bad to 1 =
good).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import func, insert, select

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import ABTestConfig, RoutingConfig
from axtui.errors import InvalidRequest
from axtui.histogram import LogHistogram
from axtui.money import nanos_to_usd
from axtui.routing.abtest import variant_label
from axtui.store import Store
from axtui.store.tables import Call
from axtui.store.tables_routing import ABFeedback

__all__ = ["ABReport", "VariantResult", "ab_report", "parse_score", "record_feedback"]

_FEEDBACK = ABFeedback.__table__  # type: ignore[attr-defined]
_WORDS = {"up": 1.0, "good": 1.0, "yes": 1.0, "+1": 1.0, "down": 0.0, "bad": 0.0, "no": 0.0, "-1": 0.0}


@dataclass(slots=True)
class VariantResult:
    """One variant's results. Latency in ms; money in nano-dollars and exact dollars."""

    variant: str
    model: str | None
    percent: float | None
    calls: int = 0
    ok: int = 0
    errors: int = 0
    users: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_mean_ms: float | None = None
    ttft_p50_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nanos: int = 0
    unpriced_calls: int = 0
    feedback_count: int = 0
    feedback_mean: float | None = None

    @property
    def error_rate(self) -> float:
        """Failed calls over all calls."""
        return self.errors / self.calls if self.calls else 0.0

    @property
    def cost_usd(self) -> Decimal:
        """Total cost in exact dollars (priced calls only)."""
        return nanos_to_usd(self.cost_nanos)

    @property
    def cost_per_call_usd(self) -> Decimal | None:
        """Mean cost of a priced, successful call, in dollars."""
        priced = self.ok - self.unpriced_calls
        return nanos_to_usd(self.cost_nanos) / priced if priced > 0 else None

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly form (money as exact decimal strings)."""
        per_call = self.cost_per_call_usd
        return {
            "variant": self.variant,
            "model": self.model,
            "percent": self.percent,
            "calls": self.calls,
            "ok": self.ok,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 6),
            "users": self.users,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "latency_mean_ms": self.latency_mean_ms,
            "ttft_p50_ms": self.ttft_p50_ms,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_nanos": self.cost_nanos,
            "cost_usd": str(self.cost_usd),
            "cost_per_call_usd": None if per_call is None else str(per_call.quantize(Decimal("1e-9"))),
            "unpriced_calls": self.unpriced_calls,
            "feedback_count": self.feedback_count,
            "feedback_mean": self.feedback_mean,
        }


@dataclass(slots=True)
class ABReport:
    """A test's results per variant, configured variants first."""

    test: str
    model: str | None
    enabled: bool
    configured: bool
    since: float | None
    variants: list[VariantResult] = field(default_factory=list)

    @property
    def calls(self) -> int:
        """Calls made under the test."""
        return sum(v.calls for v in self.variants)

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly form."""
        return {
            "test": self.test,
            "model": self.model,
            "enabled": self.enabled,
            "configured": self.configured,
            "since": self.since,
            "calls": self.calls,
            "variants": [v.as_dict() for v in self.variants],
        }


def _like_prefix(test: str) -> str:
    escaped = test.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}:%"


def ab_report(store: Store, name: str, routing: RoutingConfig | None = None, since: float | None = None) -> ABReport:
    """The results of A/B test ``name`` from the call log (and feedback).

    Args:
        store: where calls are recorded.
        name: the test's name.
        routing: the routing settings, for the configured variants and splits;
            a test no longer configured is still reported from its calls.
        since: only calls from this epoch time on.

    Raises:
        InvalidRequest: the test is neither configured nor in the call log.
    """
    config: ABTestConfig | None = next((t for t in (routing.ab_tests if routing else []) if t.name == name), None)
    c = Call.__table__.c  # type: ignore[attr-defined]
    f = _FEEDBACK.c
    where = [c.variant.like(_like_prefix(name), escape="\\")]
    if since is not None:
        where.append(c.ts >= since)
    results: dict[str, VariantResult] = {}
    if config is not None:
        for arm in config.variants:
            results[arm.name] = VariantResult(arm.name, arm.model, arm.percent)
    lat: dict[str, LogHistogram] = {}
    ttft: dict[str, LogHistogram] = {}
    users: dict[str, set[str]] = {}
    prefix = len(name) + 1
    rows = select(c.variant, c.status, c.latency_ms, c.ttft_ms, c.user, c.input_tokens, c.output_tokens,
                  c.cost_nanos).where(*where)
    fb_where = [f.test == name] + ([f.ts >= since] if since is not None else [])
    feedback = select(f.variant, func.count(), func.avg(f.score)).where(*fb_where).group_by(f.variant)
    with store.connect() as conn:
        for r in conn.execution_options(yield_per=5_000).execute(rows):
            vname = str(r.variant)[prefix:]
            v = results.get(vname)
            if v is None:
                v = results[vname] = VariantResult(vname, None, None)
            v.calls += 1
            users.setdefault(vname, set()).add(r.user)
            if r.status == "ok":
                v.ok += 1
                lat.setdefault(vname, LogHistogram()).add(r.latency_ms or 0.0)
                if r.ttft_ms is not None:
                    ttft.setdefault(vname, LogHistogram()).add(r.ttft_ms)
                if r.cost_nanos is None:
                    v.unpriced_calls += 1
                else:
                    v.cost_nanos += int(r.cost_nanos)
            elif r.status == "error":
                v.errors += 1
            v.input_tokens += r.input_tokens or 0
            v.output_tokens += r.output_tokens or 0
        for label, count, mean in conn.execute(feedback):
            vname = str(label)[prefix:]
            v = results.get(vname)
            if v is None:
                v = results[vname] = VariantResult(vname, None, None)
            v.feedback_count = int(count)
            v.feedback_mean = float(mean) if mean is not None else None
    if config is None and not results:
        configured = ", ".join(t.name for t in routing.ab_tests) if routing and routing.ab_tests else "(none)"
        raise InvalidRequest(
            f"no A/B test named {name!r} is configured or in the call log; configured tests: {configured}. "
            "Add it to the config file as a routing.ab_tests entry."
        )
    for vname, v in results.items():
        h = lat.get(vname)
        if h:
            v.latency_p50_ms, v.latency_p95_ms = h.quantiles((0.5, 0.95))
            v.latency_mean_ms = h.mean()
        t = ttft.get(vname)
        if t:
            v.ttft_p50_ms = t.quantile(0.5)
        v.users = len(users.get(vname, ()))
    return ABReport(
        test=name,
        model=config.model if config else None,
        enabled=config.enabled if config else False,
        configured=config is not None,
        since=since,
        variants=list(results.values()),
    )


def parse_score(text: str) -> float:
    """A feedback score from ``up``/``down`` (good/bad, yes/no) or a number from 0 to 1.

    Raises:
        ValueError: anything else; the message says what is accepted.
    """
    word = text.strip().lower()
    if word in _WORDS:
        return _WORDS[word]
    try:
        value = float(word)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"feedback {text!r} is not a score; use up, down, or a number from 0 (bad) to 1 (good)")
    return value


def record_feedback(store: Store, request_id: str, score: float, comment: str | None = None,
                    *, clock: Clock = SYSTEM_CLOCK) -> tuple[str, str]:
    """Keep a user's verdict on the answer to call ``request_id``; returns (test, variant).

    Raises:
        InvalidRequest: no such call, the call was not under an A/B test, or the score is out of range.
    """
    if not 0.0 <= score <= 1.0:
        raise InvalidRequest(f"feedback score {score} is out of range; use 0 (bad) to 1 (good)", param="score")
    c = Call.__table__.c  # type: ignore[attr-defined]
    with store.connect() as conn:
        row = conn.execute(select(c.variant, c.user).where(c.request_id == request_id).limit(1)).first()
        if row is None:
            raise InvalidRequest(
                f"no recorded call has request id {request_id!r}; use the id a response carried "
                "(records are written within a second of the call)", param="request_id")
        if not row.variant or ":" not in row.variant:
            raise InvalidRequest(f"call {request_id!r} was not made under an A/B test, so it has no variant to rate",
                                 param="request_id")
        test, _, variant = str(row.variant).partition(":")
        conn.execute(insert(_FEEDBACK).values(
            ts=clock.now(), request_id=request_id, test=test, variant=variant_label(test, variant), user=row.user,
            score=score, comment=comment))
    return test, variant
