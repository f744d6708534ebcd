"""How numbers read on the dashboard: short, aligned, never misleading.

Pure functions, so every screen prints a rate, a latency or an amount of
money the same way, and tests can pin the formats.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal

from axtui.money import MAX_MONEY_DIGITS, format_usd, money_digits, nanos_to_usd
from axtui.money import format_usd_fixed as usd_fixed

__all__ = ["MAX_MONEY_DIGITS", "ago", "bar", "clock_time", "count", "counted", "money_digits", "ms", "pct", "rate", "usd",
           "usd_fixed", "usd_limit", "usd_nanos", "usd_rate", "with_separators"]

DASH = "–"


def rate(value: float | None) -> str:
    """Calls per second: ``0.4``, ``12.5``, ``1.2k``."""
    if value is None:
        return DASH
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


def ms(value: float | None) -> str:
    """A latency: ``840ms``, ``1.25s``, ``12.3s``."""
    if value is None:
        return DASH
    if value < 1000:
        return f"{value:.0f}ms"
    if value < 10_000:
        return f"{value / 1000:.2f}s"
    return f"{value / 1000:.1f}s"


def pct(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.0423`` -> ``4.2%``."""
    if value is None:
        return DASH
    return f"{value * 100:.{digits}f}%"






def with_separators(text: str) -> str:
    """Thousands separators in every whole number of ``text``: ``60000/minute`` -> ``60,000/minute``."""
    return re.sub(r"(?<![\d.,])\d{4,}(?![\d,])", lambda m: f"{int(m[0]):,}", text)


def usd_rate(value: Decimal | float | None, per: str = "min") -> str:
    """Spend per unit of time: ``$0.042/min``."""
    if value is None:
        return DASH
    return f"{usd(value)}/{per}"


def count(value: int | None) -> str:
    """A count with thousands separators; ``12.3M`` above ten million."""
    if value is None:
        return DASH
    if value >= 10_000_000:
        return f"{value / 1_000_000:.1f}M"
    return f"{value:,}"


def counted(value: int, noun: str) -> str:
    """``value`` and ``noun``, plural unless one: ``1 call``, ``1,234 calls``, ``0 hits``."""
    return f"{count(value)} {noun}{'' if value == 1 else 's'}"


def ago(then: float | None, now: float) -> str:
    """How long ago: ``just now``, ``42s ago``, ``5m ago``, ``3h ago``, ``2d ago``."""
    if then is None:
        return "never"
    s = max(0.0, now - then)
    if s < 2:
        return "just now"
    if s < 60:
        return f"{s:.0f}s ago"
    if s < 3600:
        return f"{s / 60:.0f}m ago"
    if s < 86_400:
        return f"{s / 3600:.0f}h ago"
    return f"{s / 86_400:.0f}d ago"


def clock_time(ts: float, *, utc: bool = False) -> str:
    """``HH:MM:SS`` of an epoch time, local unless ``utc``."""
    t = time.gmtime(ts) if utc else time.localtime(ts)
    return time.strftime("%H:%M:%S", t)


def bar(fraction: float | None, width: int) -> str:
    """A text progress bar of ``width`` cells (eighths for precision), clamped at full."""
    if width <= 0:
        return ""
    if fraction is None:
        return " " * width
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, rest = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[rest] if rest and full < width else ""
    return ("█" * full + partial).ljust(width)


def usd(value: Decimal | int | float | None, *, cents: bool = False) -> str:
    """Dollars as every screen shows them (`axtui.money.format_usd`)."""
    return format_usd(value, cents=cents)


def usd_nanos(nanos: int | None) -> str:
    """Nano-dollars as every screen shows them."""
    return format_usd(nanos, nanos=True)


def usd_limit(nanos: int) -> str:
    """A budget's amount, in its table and in every message about it: ``$25.00``, ``$0.40``, ``$0.0010``.

    Budgets are whole cents, shown with two decimals; one below a cent (a
    test) shows every digit it was typed with, never rounded away.
    """
    dollars = nanos_to_usd(nanos)
    if nanos % 10_000_000 == 0:
        return usd_fixed(dollars, 2)
    exact = -int(dollars.as_tuple().exponent)
    return usd_fixed(dollars, max(money_digits([dollars]), exact))
