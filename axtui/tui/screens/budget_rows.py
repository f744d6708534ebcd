"""The rows of the Budgets screen: a budget's spend, use and projection, a rate limit's use.

Pure functions of the store's statuses (and a palette), so the table, the
remote view and the tests print a budget the same way.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from axtui.cost.budgets import BudgetStatus
from axtui.money import nanos_to_usd
from axtui.ratelimit.limiter import LimitStatus
from axtui.tui import fmt
from axtui.tui.widgets.palette import Palette

__all__ = ["BUDGET_COLUMNS", "HARD_SLACK", "LIMIT_COLUMNS", "budget_cells", "limit_cells", "limit_key", "used_up"]

BUDGET_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("id", "#", 3),
    ("scope", "Scope", 0),
    ("period", "Period", 6),
    ("amount", "Amount", 9),
    ("spent", "Spent", 9),
    ("used", "Used", 15),
    ("mode", "Mode", 4),
    ("projection", "Projection", 14),
)
LIMIT_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("subject", "Subject", 0),
    ("unit", "Unit", 8),
    ("limit", "Limit", 14),
    ("used", "Used", 8),
    ("remaining", "Left", 8),
    ("reset", "Full in", 7),
    ("source", "From", 17),
)


def _when(ts: float, now: float) -> str:
    """``14:32`` today, ``Tue 14:32`` this week, ``3 Dec`` later."""
    import time

    if ts - now < 86_400 and time.localtime(ts).tm_yday == time.localtime(now).tm_yday:
        return time.strftime("%H:%M", time.localtime(ts))
    if ts - now < 7 * 86_400:
        return time.strftime("%a %H:%M", time.localtime(ts))
    return time.strftime("%d %b", time.localtime(ts))


#: A hard budget refuses the call whose estimate does not fit, so its spend stops short of the limit:
#: with less than this fraction left it is used up (it refuses nearly every call).
HARD_SLACK = 0.02


def used_up(status: BudgetStatus) -> bool:
    """Whether the budget is spent: over its limit, or hard and within `HARD_SLACK` of it."""
    if status.over:
        return True
    b = status.budget
    return bool(b.hard and b.limit_nanos and status.remaining_nanos < b.limit_nanos * HARD_SLACK)


def budget_cells(status: BudgetStatus, now: float, palette: Palette, digits: int = 2) -> tuple[Any, ...]:
    """One budget row, in `BUDGET_COLUMNS` order; ``digits``: the decimals of the Spent column."""
    b = status.budget
    used = float(status.used)
    spent = used_up(status)
    tone = palette.bad if used >= 1 or spent else palette.warn if used >= 0.8 else palette.ok
    bar = Text(fmt.bar(used, 10), style=tone)
    bar.append(f" {used * 100:3.0f}%", style=tone if used >= 0.8 else "")
    f = status.forecast
    if f.exhausted or spent:
        # A used-up budget has no "out" time: it is out now, whatever the clock says.
        projection = Text("used up", style=palette.bad)
    elif f.runs_out_at is not None:
        projection = Text(f"out {_when(f.runs_out_at, now)}", style=palette.warn)
    elif f.projected_nanos is not None:
        over = f.projected_nanos > b.limit_nanos
        projection = Text(f"→ {fmt.usd_nanos(f.projected_nanos)}", style=palette.warn if over else palette.muted)
    else:
        projection = Text("–", style=palette.muted)
    return (
        Text(str(b.id), style=palette.muted),
        Text(str(b.scope), no_wrap=True, overflow="ellipsis"),
        Text(b.period),
        Text(fmt.usd_limit(b.limit_nanos), justify="right"),
        Text(fmt.usd_fixed(nanos_to_usd(status.spent_nanos), digits), justify="right"),
        bar,
        Text("hard", style=f"bold {palette.bad}") if b.hard else Text("soft", style=palette.muted),
        projection,
    )


def limit_key(limit: LimitStatus) -> str:
    """The table key of a limit row: its label and unit."""
    return f"{limit.label}|{limit.unit}"


def limit_cells(limit: LimitStatus, palette: Palette) -> tuple[Any, ...]:
    """One rate-limit row, in `LIMIT_COLUMNS` order."""
    every = limit.subject == "*"
    used = "–" if limit.used is None else fmt.count(limit.used)
    left = "–" if limit.remaining is None else fmt.count(limit.remaining)
    low = limit.remaining is not None and limit.amount and limit.remaining <= limit.amount * 0.1
    reset = "–" if limit.reset_after is None or not limit.used else f"{limit.reset_after:.0f}s"
    algo = "bucket" if limit.algorithm == "token-bucket" else "window"
    source = {"store": "set", "stored": "set", "config": "config", "upstream": "upstream"}.get(limit.source,
                                                                                               limit.source)
    return (
        Text(f"{limit.label} (each)" if every else limit.label, no_wrap=True, overflow="ellipsis"),
        Text(limit.unit, style=palette.muted),
        Text(fmt.with_separators(limit.limit)),
        Text(used, justify="right"),
        Text(left, justify="right", style=palette.bad if low else ""),
        Text(reset, justify="right", style=palette.muted),
        Text(f"{source} · {algo}", style=palette.muted),
    )
