"""The rows of the Budgets screen: a budget's spend, use and projection, a rate limit's use.

Pure functions of the store's statuses (and a palette), so the table, the
remote view and the tests print a budget the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text

from axtui.cost.budgets import BudgetStatus
from axtui.money import nanos_to_usd
from axtui.ratelimit.limiter import LimitStatus
from axtui.ratelimit.parse import UNLIMITED, format_refill
from axtui.ratelimit.rules import StoredLimit, describe_subject
from axtui.tui import fmt
from axtui.tui.widgets.palette import Palette

__all__ = ["BUDGET_COLUMNS", "HARD_SLACK", "LIMIT_COLUMNS", "budget_cells", "describe_stored", "limit_cells",
           "limit_key", "unlimited_rows", "used_up"]

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
    ("reset", "Refill", 7),
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


def unlimited_rows(stored: Iterable[StoredLimit], shown: Iterable[LimitStatus]) -> list[LimitStatus]:
    """A row for each unit a subject's stored limit makes ``unlimited``, which the limiter does not list.

    Such a limit lifts the default for that subject; without its row, saving ``unlimited`` would look
    as if the limit had vanished, and nothing on screen would say the subject is exempt.
    """
    have = {limit_key(x) for x in shown}
    out = []
    for s in stored:
        label = describe_subject((s.scope, s.subject))
        for unit, value in (("requests", s.requests), ("tokens", s.tokens)):
            if value == UNLIMITED and f"{label}|{unit}" not in have:
                out.append(LimitStatus(scope=s.scope, subject=s.subject, label=label, unit=unit, limit=UNLIMITED,
                                       amount=0, period_s=0.0, algorithm=s.algorithm or "", burst=None,
                                       source="stored"))
    return out


def describe_stored(stored: Any) -> str:
    """A stored limit (`StoredLimit`, or its JSON from a server) for a message: ``user:alice: requests 60/minute``."""
    fields: dict[str, Any] = stored if isinstance(stored, dict) else _fields_of(stored)
    label = describe_subject((str(fields.get("scope")), str(fields.get("subject"))))
    units = [f"{unit} {fields[unit]}" for unit in ("requests", "tokens") if fields.get(unit)]
    return f"{label}: {', '.join(units) or 'the defaults'}"


def _fields_of(stored: Any) -> dict[str, Any]:
    """The scope, subject and limits of a stored limit object."""
    return {name: getattr(stored, name, None) for name in ("scope", "subject", "requests", "tokens")}


def limit_cells(limit: LimitStatus, palette: Palette) -> tuple[Any, ...]:
    """One rate-limit row, in `LIMIT_COLUMNS` order."""
    every = limit.subject == "*"
    if limit.limit == UNLIMITED:
        # Stored to lift the default: nothing is counted, so only who set it means anything.
        return (
            Text(limit.label, no_wrap=True, overflow="ellipsis"),
            Text(limit.unit, style=palette.muted),
            Text(UNLIMITED, style=palette.ok),
            Text("–", justify="right", style=palette.muted),
            Text("–", justify="right", style=palette.muted),
            Text("–", justify="right", style=palette.muted),
            Text("set · no limit", style=palette.muted),
        )
    used = "–" if limit.used is None else fmt.count(limit.used)
    left = "–" if limit.remaining is None else fmt.count(limit.remaining)
    low = limit.remaining is not None and limit.amount and limit.remaining <= limit.amount * 0.1
    reset = "–" if limit.reset_after is None or not limit.used else format_refill(limit.reset_after)
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
