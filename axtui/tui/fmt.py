"""How numbers read on the dashboard: short, aligned, never misleading.

Pure functions, so every screen prints a rate, a latency or an amount of
money the same way, and tests can pin the formats.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from decimal import Decimal

__all__ = ["ago", "bar", "clock_time", "count", "money_digits", "ms", "pct", "rate", "usd", "usd_fixed", "usd_rate",
           "with_separators"]

#: The most decimals a money column shows (a millionth of a dollar).
MAX_MONEY_DIGITS = 6

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


def usd(value: Decimal | int | float | None, *, cents: bool = False) -> str:
    """Dollars with the precision the amount deserves, in at most about eight characters.

    ``$1,234``, ``$12.35``, ``$0.0421``, ``$0.0012``, ``$0.000041``
    (two significant digits below a cent), ``$0``; ``cents`` forces two
    decimals (budget amounts).
    """
    if value is None:
        return "unknown"
    d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    sign = "-" if d < 0 else ""
    d = abs(d)
    if cents:
        text = f"{d:,.2f}"
    elif d == 0:
        text = "0"
    elif d >= 1000:
        text = f"{d:,.0f}"
    elif d >= 1:
        text = f"{d:,.2f}"
    elif d >= Decimal("0.01"):
        text = f"{d:.4f}"
    else:
        digits = min(9, -d.adjusted() + 1)
        text = f"{d:.{digits}f}"
    return f"{sign}${text}"


def _decimal(value: Decimal | int | float) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def money_digits(values: Iterable[Decimal | int | float | None]) -> int:
    """The decimals one money column needs: two significant digits of its smallest amount, 2 to 6.

    Every row of the column then prints with as many (`usd_fixed`), so the
    points line up and ``$0.0012`` never sits above ``$12`` looking larger.
    """
    amounts = [abs(_decimal(v)) for v in values if v]
    if not amounts:
        return 2
    smallest = min(amounts)
    if smallest >= 1:
        return 2
    return max(2, min(MAX_MONEY_DIGITS, -smallest.adjusted() + 1))


def usd_fixed(value: Decimal | int | float | None, digits: int) -> str:
    """Dollars with exactly ``digits`` decimals and thousands separators: ``$1,234.5000``, ``$0.0012``.

    Nothing at all is ``$0``: a free call is not a rounding of a cheap one.
    """
    if value is None:
        return DASH
    d = _decimal(value)
    if d == 0:
        return "$0"
    sign = "-" if d < 0 else ""
    return f"{sign}${abs(d):,.{digits}f}"


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
