"""Spend reports: summary and breakdowns, read from the rollups.

`summary` and `breakdown` take a store and a time range and return plain
dataclasses; the CLI prints them, the dashboard and the server show them.
Every breakdown's rows add up exactly to the summary of the same range:
each call counts once per dimension (``(none)`` for calls without a key,
tags or model), except by tag: a call tagged ``a,b`` counts under ``a``
and under ``b``, and once in the total.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.engine import Connection

from axtui.cost.budgets import Scope, trailing_rate
from axtui.cost.calculator import money, plain, usd
from axtui.cost.periods import period_bounds, period_label
from axtui.cost.projection import Projection, project
from axtui.cost.rollups import Totals, series, totals_by
from axtui.store import Store

__all__ = [
    "BREAKDOWNS",
    "Breakdown",
    "BreakdownRow",
    "CostSummary",
    "ModelSpend",
    "breakdown",
    "summary",
]

#: What a breakdown can group by.
BREAKDOWNS = ("provider", "model", "user", "key", "team", "tag", "day", "week", "month")
_DIM = {"model": "model", "user": "user", "key": "key", "team": "team", "tag": "tags"}


@dataclass(frozen=True, slots=True)
class ModelSpend:
    """What one model cost on one provider."""

    provider: str
    model: str
    cost_nanos: int
    calls: int
    unknown_price_calls: int


@dataclass(frozen=True, slots=True)
class CostSummary:
    """Spend over ``[since, until)`` (minute-aligned), with a projection.

    ``total_nanos`` sums the calls whose price was known;
    ``unknown_price_calls`` were served at an unknown price and are not in
    it. ``saved_nanos`` is what the cached answers would have cost.
    """

    since: float
    until: float
    totals: Totals
    top_models: tuple[ModelSpend, ...]
    projection: Projection

    @property
    def total_nanos(self) -> int:
        """Known spend in nano-dollars."""
        return self.totals.cost_nanos

    @property
    def total_usd(self) -> Decimal:
        """Known spend in exact dollars."""
        return usd(self.totals.cost_nanos)

    @property
    def saved_nanos(self) -> int:
        """What cache hits saved."""
        return self.totals.saved_nanos

    @property
    def cost_per_call_usd(self) -> Decimal | None:
        """Known spend per priced call, to the nano-dollar (None without any)."""
        n = self.totals.priced_calls
        return plain((Decimal(self.totals.cost_nanos) / n).quantize(Decimal(1)).scaleb(-9)) if n else None

    def to_json(self) -> dict[str, object]:
        """The summary as JSON-ready data (money as exact decimal strings of dollars)."""
        t = self.totals
        p = self.projection
        return {
            "since": self.since,
            "until": self.until,
            "total_usd": money(self.total_usd),
            "calls": t.calls,
            "errors": t.errors,
            "refused": t.refused,
            "input_tokens": t.input_tokens,
            "cached_input_tokens": t.cached_input_tokens,
            "cache_write_tokens": t.cache_write_tokens,
            "output_tokens": t.output_tokens,
            "reasoning_tokens": t.reasoning_tokens,
            "cache_hits": t.cache_hits,
            "cache_savings_usd": money(t.saved_nanos),
            "cost_per_call_usd": None if self.cost_per_call_usd is None else money(self.cost_per_call_usd),
            "unknown_price_calls": t.unknown_price_calls,
            "top_models": [
                {"provider": m.provider, "model": m.model, "cost_usd": money(m.cost_nanos), "calls": m.calls,
                 "unknown_price_calls": m.unknown_price_calls}
                for m in self.top_models
            ],
            "projection": {
                "rate_usd_per_hour": money(p.rate_nanos_per_hour),
                "window_hours": round(p.window_s / 3600, 3),
                "today_usd": money(p.day_so_far_nanos),
                "end_of_day_usd": money(p.end_of_day_nanos),
                "this_month_usd": money(p.month_so_far_nanos),
                "end_of_month_usd": money(p.end_of_month_nanos),
            },
        }


@dataclass(frozen=True, slots=True)
class BreakdownRow:
    """One group of a breakdown (``key`` is ``""`` for calls without one)."""

    key: str
    totals: Totals

    @property
    def cost_nanos(self) -> int:
        """Known spend of the group."""
        return self.totals.cost_nanos


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Spend over ``[since, until)`` grouped ``by`` one dimension; rows add up to ``total`` (by tag, more)."""

    by: str
    since: float
    until: float
    provider: str | None
    rows: tuple[BreakdownRow, ...]
    total: Totals = field(default_factory=Totals)

    def to_json(self) -> dict[str, object]:
        """The breakdown as JSON-ready data (money as exact decimal strings of dollars)."""
        return {
            "by": self.by,
            "since": self.since,
            "until": self.until,
            "provider": self.provider,
            "total_usd": money(self.total.cost_nanos),
            "calls": self.total.calls,
            "unknown_price_calls": self.total.unknown_price_calls,
            "rows": [
                {
                    self.by: r.key,
                    "cost_usd": money(r.totals.cost_nanos),
                    "calls": r.totals.calls,
                    "errors": r.totals.errors,
                    "input_tokens": r.totals.input_tokens,
                    "output_tokens": r.totals.output_tokens,
                    "cache_hits": r.totals.cache_hits,
                    "cache_savings_usd": money(r.totals.saved_nanos),
                    "unknown_price_calls": r.totals.unknown_price_calls,
                }
                for r in self.rows
            ],
        }


def _sum(items: Iterable[Totals]) -> Totals:
    out = Totals()
    for t in items:
        out.add(t)
    return out


def _projection(conn: Connection, now: float, tz: str) -> Projection:
    day_start, day_end = period_bounds("day", now, tz)
    month_start, month_end = period_bounds("month", now, tz)
    everything = Scope("global")
    rate, window = trailing_rate(conn, everything, now, 86400.0)
    so_far = {}
    for name, start in (("day", day_start), ("month", month_start)):
        so_far[name] = sum(t.cost_nanos for t in totals_by(conn, start, now, measures="money", open_end=True).values())
    return project(
        rate_per_s=rate, window_s=window, now=now,
        day_so_far_nanos=so_far["day"], day_end=float(day_end or now),
        month_so_far_nanos=so_far["month"], month_end=float(month_end or now),
    )


def summary(
    store: Store,
    since: float,
    until: float,
    *,
    now: float | None = None,
    tz: str = "UTC",
    provider: str | None = None,
    top: int = 5,
) -> CostSummary:
    """Spend, calls, tokens and savings over ``[since, until)``, top models, and a projection.

    ``now`` (default: the wall clock) anchors the projection to the end of
    the day and month in ``tz``; a range that ends at or after it reads its
    last hour and day whole (nothing was recorded after now).
    """
    anchor = time.time() if now is None else now
    open_end = until >= anchor

    def read(conn: Connection) -> CostSummary:
        totals = _sum(totals_by(conn, since, until, provider=provider, measures="money", open_end=open_end).values())
        models = totals_by(conn, since, until, dim="model", provider=provider, measures="money", open_end=open_end)
        ranked = sorted(models.items(), key=lambda kv: (-kv[1].cost_nanos, -kv[1].calls, kv[0]))
        tops = tuple(
            ModelSpend(p, m, t.cost_nanos, t.calls, t.unknown_price_calls) for (p, m), t in ranked if m or t.calls
        )[:top]
        return CostSummary(since, until, totals, tops, _projection(conn, anchor, tz))

    return store.run(read)


def breakdown(
    store: Store,
    by: str,
    since: float,
    until: float,
    *,
    provider: str | None = None,
    tz: str = "UTC",
    now: float | None = None,
) -> Breakdown:
    """Spend over ``[since, until)`` grouped by ``by`` (see `BREAKDOWNS`), most expensive first.

    Time groupings (day, week, month) follow ``tz``; the rows then come
    oldest first. ``now`` (default: the wall clock) as in `summary`.

    Raises:
        ValueError: an unknown grouping.
    """
    if by not in BREAKDOWNS:
        raise ValueError(f"cannot break spending down by {by!r}; use one of {', '.join(BREAKDOWNS)}")
    open_end = until >= (time.time() if now is None else now)

    def read(conn: Connection) -> Breakdown:
        groups: dict[str, Totals] = {}
        if by in ("day", "week", "month"):
            for bucket, t in series(conn, since, until, provider=provider, measures="money", open_end=open_end):
                groups.setdefault(period_label(by, bucket, tz), Totals()).add(t)
            rows = tuple(BreakdownRow(k, groups[k]) for k in sorted(groups))
        else:
            dim = _DIM.get(by, "all")
            found = totals_by(conn, since, until, dim=dim, provider=provider, measures="money", open_end=open_end)
            for (prov, value), t in found.items():
                if by == "tag":
                    # Stored as the call's comma-joined tag set; each tag gets its own row.
                    for tag in dict.fromkeys(value.split(",")) if value else (value,):
                        groups.setdefault(tag, Totals()).add(t)
                else:
                    groups.setdefault(prov if by == "provider" else value, Totals()).add(t)
            rows = tuple(
                BreakdownRow(k, t) for k, t in sorted(groups.items(), key=lambda kv: (-kv[1].cost_nanos, -kv[1].calls, kv[0]))
            )
            if by == "tag":
                return Breakdown(by, since, until, provider, rows, _sum(found.values()))
        return Breakdown(by, since, until, provider, rows, _sum(r.totals for r in rows))

    return store.run(read)
