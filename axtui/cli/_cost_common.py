"""What the ``ax cost`` commands share: settings, time parsing, number formatting."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

import click
from rich.markup import escape

from axtui.cli._common import EXIT_USAGE, fail
from axtui.config import Settings, load_settings
from axtui.cost.periods import zone

__all__ = ["die", "escape", "fmt_tokens", "fmt_when", "load", "parse_when", "per_million"]

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*(m|min|h|d|w)$", re.IGNORECASE)
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def die(message: str, code: int = EXIT_USAGE) -> None:
    """Print ``message`` (taken literally, brackets and all) as an error and exit with ``code``."""
    fail(message, code)  # `fail` prints it literally; escaping here as well printed stray backslashes


def load() -> Settings:
    """The config file's settings, with the demo fleet's price overrides when it serves."""
    from axtui.engine.compose import effective_providers

    return effective_providers(load_settings())


def parse_when(text: str, now: float, tz: str, option: str) -> float:
    """A point in time from ``now``, ``today``, ``24h``/``7d``/``2w``/``90m`` ago, or an ISO date/time.

    Naive ISO dates and times are read in ``tz``. Nothing was recorded
    before 1970, so earlier times are read as 1970-01-01 (the start of
    everything), which every date function can show; times after the year
    9999, which none can, as its end (`axtui.metrics.timespec.LATEST`).

    Raises:
        click.BadParameter: the text is none of those; the message shows the forms.
    """
    from axtui.metrics.timespec import LATEST

    return min(LATEST, max(0.0, _parse_when(text, now, tz, option)))


def _parse_when(text: str, now: float, tz: str, option: str) -> float:
    value = text.strip().lower()
    if value == "now":
        return now
    if value in ("today", "yesterday"):
        local = datetime.fromtimestamp(now, zone(tz)).replace(hour=0, minute=0, second=0, microsecond=0)
        if value == "yesterday":
            local = (local - timedelta(days=1)).replace(tzinfo=None).replace(tzinfo=zone(tz))
        return local.timestamp()
    m = _RELATIVE.match(value)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2).lower()]
    # Dates and times below are read in ``tz``; everything else is the same
    # grammar as `ax monitor` (one way to write a time across ax).
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        pass
    else:
        return (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone(tz))).timestamp()
    from axtui.errors import InvalidRequest
    from axtui.metrics.timespec import parse_time

    try:
        return parse_time(text, now, option=option)
    except InvalidRequest as exc:
        raise click.BadParameter(exc.message.removeprefix(f"{option} "), param_hint=option) from None


def fmt_when(ts: float, tz: str, *, seconds: bool = False) -> str:
    """A local time for people: ``2026-11-27 14:05 UTC``."""
    local = datetime.fromtimestamp(ts, zone(tz))
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def fmt_tokens(n: int) -> str:
    """``1,234`` below ten thousand, else ``12.3k``, ``4.56M``."""
    if n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    if n < 1_000_000_000:
        return f"{n / 1_000_000:.2f}M"
    return f"{n / 1_000_000_000:.2f}B"


def per_million(value: Decimal | None) -> str:
    """A per-million price for a table cell (``-`` when unset)."""
    if value is None:
        return "-"
    text = format(value.normalize(), "f")
    return f"${text}"

