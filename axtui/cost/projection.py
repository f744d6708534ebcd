"""Projections from the run-rate: where spending ends up if it goes on like this.

The run-rate is the spend of a trailing window divided by its length (the
window is shortened to when spending began, so a gateway started ten
minutes ago is not averaged over a quiet day). Everything here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["BudgetForecast", "Projection", "forecast_budget", "project", "run_rate"]

#: Windows shorter than this are stretched to it before extrapolating.
MIN_WINDOW_S = 60.0


def run_rate(spent_nanos: int, window_s: float) -> Decimal:
    """Nano-dollars per second over a window; windows shorter than a minute count as a minute.

    The floor keeps a burst in the first seconds from projecting absurd
    spending.
    """
    if spent_nanos <= 0:
        return Decimal(0)
    return Decimal(spent_nanos) / Decimal(repr(max(window_s, MIN_WINDOW_S)))


def _nanos(value: Decimal) -> int:
    return int(value.to_integral_value(ROUND_HALF_EVEN))


@dataclass(frozen=True, slots=True)
class Projection:
    """Spending so far this day and month, and where they end at the current rate."""

    rate_nanos_per_hour: int
    window_s: float
    day_so_far_nanos: int
    end_of_day_nanos: int
    month_so_far_nanos: int
    end_of_month_nanos: int


def project(
    *,
    rate_per_s: Decimal,
    window_s: float,
    now: float,
    day_so_far_nanos: int,
    day_end: float,
    month_so_far_nanos: int,
    month_end: float,
) -> Projection:
    """Project today's and this month's spend to their ends at ``rate_per_s``."""
    return Projection(
        rate_nanos_per_hour=_nanos(rate_per_s * 3600),
        window_s=window_s,
        day_so_far_nanos=day_so_far_nanos,
        end_of_day_nanos=day_so_far_nanos + _nanos(rate_per_s * Decimal(repr(max(0.0, day_end - now)))),
        month_so_far_nanos=month_so_far_nanos,
        end_of_month_nanos=month_so_far_nanos + _nanos(rate_per_s * Decimal(repr(max(0.0, month_end - now)))),
    )


@dataclass(frozen=True, slots=True)
class BudgetForecast:
    """Where a budget ends up: the spend at the period's end, and when (if) it runs out.

    ``runs_out_at`` is None when the rate is zero, the budget is already
    spent (``exhausted``), or the period ends first.
    """

    rate_nanos_per_hour: int
    projected_nanos: int | None
    runs_out_at: float | None
    exhausted: bool


def forecast_budget(
    *, spent_nanos: int, limit_nanos: int, rate_per_s: Decimal, now: float, period_end: float | None
) -> BudgetForecast:
    """Forecast one budget at ``rate_per_s``; a ``total`` budget has no ``period_end``."""
    exhausted = spent_nanos >= limit_nanos
    projected = (
        spent_nanos + _nanos(rate_per_s * Decimal(repr(max(0.0, period_end - now)))) if period_end is not None else None
    )
    runs_out: float | None = None
    if not exhausted and rate_per_s > 0:
        at = now + float(Decimal(limit_nanos - spent_nanos) / rate_per_s)
        if period_end is None or at < period_end:
            runs_out = at
    return BudgetForecast(_nanos(rate_per_s * 3600), projected, runs_out, exhausted)
