"""Where a rule's value comes from: the live windows, spend rollups, budget status.

Live metrics are read from `LiveMetrics` (cheap, every evaluation). Spend
in a calendar period comes from the cost rollups in the store and budget
usage from the cost subsystem; both are read off the event loop and cached
for ``alerts.spend_refresh_s``, so a hundred spend rules cost a handful of
indexed queries a minute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from axtui.config import Settings
from axtui.metrics.alerts.grammar import AlertRule
from axtui.metrics.live import LiveMetrics
from axtui.metrics.shared import StoreFeed
from axtui.metrics.snapshot import Stats
from axtui.money import nanos_to_usd
from axtui.store import Store
from axtui.store.tables import Call

__all__ = ["MetricSources", "live_value", "period_start"]

log = logging.getLogger(__name__)

_STATS_FIELD: dict[str, str] = {
    "p50_latency_ms": "p50_ms",
    "p95_latency_ms": "p95_ms",
    "p99_latency_ms": "p99_ms",
    "ttft_ms": "ttft_p50_ms",
    "p95_ttft_ms": "ttft_p95_ms",
    "error_rate": "error_rate",
    "rps": "rps",
    "requests": "requests",
    "errors": "errors",
    "rate_limited": "rate_limited",
    "budget_refused": "budget_refused",
    "cache_hit_rate": "cache_hit_rate",
    "cost_per_min_usd": "cost_per_min_usd",
    "tokens_per_min": "tokens_per_min",
}


def live_value(rule: AlertRule, stats: Stats) -> float | Decimal | None:
    """The value of a live rule's metric in ``stats``."""
    value = getattr(stats, _STATS_FIELD[rule.metric])
    return value  # type: ignore[no-any-return]


def period_start(period: str, now: float, tz: str = "UTC") -> float:
    """Epoch seconds at the start of the calendar hour, day or month containing ``now`` in ``tz``."""
    local = datetime.fromtimestamp(now, ZoneInfo(tz))
    if period == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
    elif period == "day":
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    elif period == "month":
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        raise ValueError(f"unknown period {period!r}; use hour, day or month")
    # An aware datetime's timestamp uses the offset in force at that wall time,
    # so a daylight-saving change inside the period is honoured.
    return start.timestamp()


class MetricSources:
    """Reads every metric a rule can name.

    Args:
        live: the live windows.
        store: the store (spend and budget rules); None disables those rules.
        settings: evaluation window, refresh interval, budget time zone.
        budget_reader: ``fn(store, filters, now, tz) -> percent | None``;
            the default reads the cost subsystem's budget status.
        shared: windows of every process's calls, filled from the store's per-second rollups (`refresh`),
            when ``live`` holds this process's alone: live rules are read from them, so every process that
            shares the store measures a rule alike (one process's calls, or none, would move it back and
            forth). Rules filtering on two dimensions or more, which rollups do not hold, read ``live``.
    """

    def __init__(
        self,
        live: LiveMetrics,
        store: Store | None,
        settings: Settings,
        *,
        budget_reader: Callable[[Store, dict[str, str], float, str], float | None] | None = None,
        shared: StoreFeed | None = None,
    ) -> None:
        self.live_metrics = live
        self.shared = shared
        self.store = store
        self.settings = settings
        self.budget_reader = budget_reader or read_budget_used_pct
        self._cache: dict[tuple[Any, ...], tuple[float, Decimal | float | None]] = {}

    @staticmethod
    def is_live(rule: AlertRule) -> bool:
        """Whether the rule reads the live windows (cheap, fine on the event loop)."""
        return rule.spec.source == "live"

    def refresh(self) -> None:
        """Read the store's new rollups into the shared windows (blocking: run it off the loop)."""
        if self.shared is not None:
            self.shared.poll()

    def current(self, rule: AlertRule) -> float | Decimal | None:
        """The value of a live rule over the evaluation window."""
        live = self.shared.live if self.shared is not None and len(rule.where) < 2 else self.live_metrics
        stats = live.stats(rule.filters or None, self.settings.alerts.window_s)
        return live_value(rule, stats)

    def slow(self, rule: AlertRule, now: float) -> Decimal | float | None:
        """The value of a spend or budget rule (blocking: run it off the loop)."""
        if self.store is None:
            return None
        key = (rule.metric, rule.period, rule.where)
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.settings.alerts.spend_refresh_s:
            return hit[1]
        value: Decimal | float | None
        if rule.metric == "spend_usd":
            start = period_start(rule.period or "day", now, self.settings.budgets.timezone)
            value = self.store.run(lambda conn: spend_nanos(conn, start, now, rule.filters))
            value = nanos_to_usd(value)
        else:
            value = self.budget_reader(self.store, rule.filters, now, self.settings.budgets.timezone)
        self._cache[key] = (now, value)
        return value

    def forget(self) -> None:
        """Drop cached slow values (after a budget or rollup change)."""
        self._cache.clear()


def spend_nanos(conn: Connection, since: float, until: float, filters: dict[str, str]) -> int:
    """Exact spend in ``[since, until)`` for calls matching ``filters``.

    Reads the cost rollups when one rollup dimension (with or without a
    provider) answers the filters, and the call log otherwise.
    """
    from axtui.cost.rollups import totals_by

    provider = filters.get("provider")
    dims = [d for d in ("model", "user", "key") if d in filters]
    if len(dims) <= 1:
        dim = dims[0] if dims else "all"
        rows = totals_by(conn, since, until, dim=dim, provider=provider, value=filters.get(dim) if dims else None)
        return sum(t.cost_nanos for t in rows.values())
    calls = Call.__table__  # type: ignore[attr-defined]
    q = select(func.coalesce(func.sum(calls.c.cost_nanos), 0)).where(calls.c.ts >= since, calls.c.ts < until)
    for name, wanted in filters.items():
        q = q.where(calls.c[name] == wanted)
    return int(conn.execute(q).scalar() or 0)


def read_budget_used_pct(store: Store, filters: dict[str, str], now: float, tz: str = "UTC") -> float | None:
    """The highest percentage used among the budgets matching ``filters`` (None: no such budget).

    Without filters every budget counts; with ``user=alice`` the budgets
    scoped to ``user:alice``; with several filters, budgets scoped to any
    of them.
    """
    from axtui.cost.budgets import budget_status

    used = [
        float(st.used * 100)
        for st in budget_status(store, now, tz=tz)
        if not filters or filters.get(st.budget.scope.kind) == st.budget.scope.value
    ]
    return max(used) if used else None
