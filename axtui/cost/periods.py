"""Calendar periods in a time zone: days, weeks (from Monday), months, and all time.

Budgets reset at the start of each period in the configured zone
(``budgets.timezone``), and reports group spend by the same periods.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["PERIODS", "period_bounds", "period_label", "zone"]

#: Budget periods; ``total`` never resets.
PERIODS = ("day", "week", "month", "total")


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``.

    Raises:
        ValueError: the zone is unknown; the message says how to name one.
    """
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use a name like 'UTC' or 'Europe/Paris'") from None


def _start_local(period: str, local: datetime) -> datetime:
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return midnight
    if period == "week":
        return midnight - timedelta(days=midnight.weekday())
    if period == "month":
        return midnight.replace(day=1)
    raise ValueError(f"unknown period {period!r}; use day, week, month or total")


def _next_local(period: str, start: datetime) -> datetime:
    if period == "day":
        nxt = start + timedelta(days=1)
    elif period == "week":
        nxt = start + timedelta(days=7)
    else:
        nxt = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    # Re-attach the zone so a daylight-saving change inside the period is honoured.
    return nxt.replace(tzinfo=None).replace(tzinfo=start.tzinfo)


def period_bounds(period: str, now: float, tz: ZoneInfo | str = "UTC") -> tuple[int, int | None]:
    """Start and end (epoch seconds) of the period holding ``now``; ``total`` is (0, None).

    Raises:
        ValueError: an unknown period or zone.
    """
    if period == "total":
        return 0, None
    z = zone(tz) if isinstance(tz, str) else tz
    local = datetime.fromtimestamp(now, z)
    start = _start_local(period, local)
    start = start.replace(tzinfo=None).replace(tzinfo=z)
    end = _next_local(period, start)
    return int(start.timestamp()), int(end.timestamp())


def period_label(period: str, ts: float, tz: ZoneInfo | str = "UTC") -> str:
    """A short name for the period holding ``ts``: ``2026-11-27``, ``2026-W48``, ``2026-11``."""
    z = zone(tz) if isinstance(tz, str) else tz
    local = datetime.fromtimestamp(ts, z)
    if period == "day":
        return local.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return local.strftime("%Y-%m")
    if period == "total":
        return "total"
    raise ValueError(f"unknown period {period!r}; use day, week, month or total")
