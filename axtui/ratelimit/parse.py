"""Limit notation: ``60/minute``, ``1000/hour``, ``100000/day``, ``10/30seconds``.

This is the `limits` library's notation (``N/PERIOD`` or ``N per PERIOD``,
with an optional multiple such as ``10/30 seconds``), parsed through it so
the same text means the same thing on every backend. Two words stand for
no number: ``unlimited`` (explicitly no limit) and ``default`` (use the
configured default for the scope). Every error lists the valid forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from limits import RateLimitItem, parse_many
from limits.limits import TIME_TYPES

__all__ = [
    "DEFAULT",
    "PERIODS",
    "UNLIMITED",
    "VALID_FORMS",
    "Rate",
    "format_period",
    "format_refill",
    "parse_limit_value",
    "parse_rate",
]

#: The word for "no limit here", even where a default would apply.
UNLIMITED: Final = "unlimited"
#: The word for "the configured default for this scope".
DEFAULT: Final = "default"

#: Period names, shortest first (plurals are accepted too).
PERIODS: tuple[str, ...] = ("second", "minute", "hour", "day", "month", "year")

VALID_FORMS = (
    "write a limit as N/PERIOD, e.g. 60/minute, 1000/hour, 100000/day, or with a multiple, 10/30seconds "
    f"(periods: {', '.join(PERIODS)}; N a whole number of at least 1)"
)

_SHAPE = re.compile(r"^\s*(-?[0-9]+(?:\.[0-9]*)?)\s*(?:/|\s+per\s+)\s*([0-9]+)?\s*([A-Za-z]+)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Rate:
    """``amount`` units per ``period_s`` seconds, with the text it was written as."""

    amount: int
    period_s: int
    text: str

    @property
    def item(self) -> RateLimitItem:
        """The same rate as a `limits` item (for limits' strategies and storages)."""
        return parse_many(self.text)[0]

    @property
    def per_second(self) -> float:
        """Units per second."""
        return self.amount / self.period_s

    def __str__(self) -> str:
        return self.text


#: The largest amount a limit may name.
MAX_AMOUNT = 10**15


def parse_rate(text: str) -> Rate:
    """Parse one limit such as ``60/minute``.

    Raises:
        ValueError: the text is not one positive limit; the message names the
            problem and lists the valid forms.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty limit; {VALID_FORMS}")
    raw = text.strip()
    if any(sep in raw for sep in ",;|"):
        raise ValueError(f"invalid limit {raw!r}: give one limit at a time; {VALID_FORMS}")
    m = _SHAPE.match(raw)
    if m is None:
        raise ValueError(f"invalid limit {raw!r}; {VALID_FORMS}")
    number, multiple, period = m.group(1), m.group(2), m.group(3).lower()
    if "." in number:
        raise ValueError(f"invalid limit {raw!r}: {number} is not a whole number; {VALID_FORMS}")
    amount = int(number)
    if amount <= 0:
        raise ValueError(f"invalid limit {raw!r}: the amount must be at least 1 (to block a caller, "
                         f"set a tiny limit such as 1/day); {VALID_FORMS}")
    if amount > MAX_AMOUNT:
        # Counters are exact integers in SQLite and doubles in Redis' Lua; past 10^15 neither is
        # exact, and no real caller is limited there: write 'unlimited'.
        raise ValueError(f"invalid limit {raw!r}: the amount must be at most {MAX_AMOUNT:,} "
                         f"(write 'unlimited' for no limit); {VALID_FORMS}")
    unit = period[:-1] if period.endswith("s") and period[:-1] in TIME_TYPES else period
    if unit not in TIME_TYPES:
        hint = _closest(period)
        did = f" (did you mean {hint!r}?)" if hint else ""
        raise ValueError(f"invalid limit {raw!r}: unknown period {period!r}{did}; {VALID_FORMS}")
    multiples = int(multiple) if multiple else 1
    if multiples <= 0:
        raise ValueError(f"invalid limit {raw!r}: the period multiple must be at least 1; {VALID_FORMS}")
    canonical = f"{amount}/{multiples}{unit}s" if multiples != 1 else f"{amount}/{unit}"
    return Rate(amount, TIME_TYPES[unit].seconds * multiples, canonical)


def parse_limit_value(text: str | None) -> Rate | Literal["unlimited", "default"] | None:
    """Parse a limit that may also be ``unlimited`` or ``default`` (None stays None).

    Raises:
        ValueError: as `parse_rate`, also naming the two words.
    """
    if text is None:
        return None
    word = text.strip().lower()
    if word in (UNLIMITED, "none", "off"):
        return UNLIMITED
    if word == DEFAULT:
        return DEFAULT
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise ValueError(f"{exc}; or write {UNLIMITED!r} for no limit, {DEFAULT!r} for the configured default") from None


def format_period(seconds: float) -> str:
    """``60`` -> ``minute``, ``120`` -> ``2 minutes``, for messages."""
    for name in reversed(PERIODS):
        size = TIME_TYPES[name].seconds
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return name if n == 1 else f"{n} {name}s"
    return f"{seconds:g} seconds"


def format_refill(seconds: float) -> str:
    """How long until a limit's whole quota is back, rounded up (it is not back before): ``<1s``, ``42s``,
    ``3m05s``, ``2h10m``; ``now`` when it is. One wording for ``ax ratelimit status`` and the dashboard."""
    if seconds < 1:
        return "now" if seconds <= 0 else "<1s"
    s = int(seconds + 0.999)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _closest(word: str) -> str | None:
    import difflib

    names = [*PERIODS, *(p + "s" for p in PERIODS)]
    hits = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return hits[0].rstrip("s") if hits else None
