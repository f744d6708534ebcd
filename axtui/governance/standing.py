"""Where keys and teams stand: this month's spend, and how much of their budgets is used.

What `ax keys list` and `ax teams list` show beside each key and team.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from axtui.cost.budgets import budget_status
from axtui.cost.periods import period_bounds
from axtui.cost.reports import breakdown
from axtui.money import format_usd, nanos_to_usd
from axtui.store import Store

__all__ = ["Standing", "spent_text", "standing_json", "standings"]


@dataclass(frozen=True, slots=True)
class Standing:
    """One key's or team's spend this month and its fullest budget (used: 0.0 to 1.0 and past)."""

    spent_nanos: int = 0
    budget_used: float | None = None


def standings(store: Store, kind: str, now: float, tz: str = "UTC") -> dict[str, Standing]:
    """Spend this month and budget use of every ``key`` or ``team`` that has either."""
    start, _ = period_bounds("month", now, tz)
    spent = {row.key: row.cost_nanos for row in breakdown(store, kind, float(start), now + 1, tz=tz).rows if row.key}
    used: dict[str, float] = {}
    for status in budget_status(store, now, tz=tz):
        scope = status.budget.scope
        if scope.kind == kind:
            share = float(status.used)
            used[scope.value] = max(used.get(scope.value, 0.0), share)
    return {name: Standing(spent.get(name, 0), used.get(name)) for name in set(spent) | set(used)}


def standing_json(standing: Standing) -> dict[str, Any]:
    """A standing as JSON: exact dollars, and the budget's use in percent."""
    used = standing.budget_used
    return {"spent_usd_this_month": str(nanos_to_usd(standing.spent_nanos)),
            "budget_used_pct": None if used is None else round(used * 100, 1)}


def spent_text(standing: Standing) -> str:
    """This month's spend, and the fullest budget's use, for a table cell."""
    if standing.budget_used is None:
        return format_usd(standing.spent_nanos, nanos=True) if standing.spent_nanos else ""
    # Under a budget a spend of nothing is said: "$0 (0%)", not "(0%)" alone.
    return f"{format_usd(standing.spent_nanos or 0, nanos=True)} ({standing.budget_used * 100:.0f}%)"
