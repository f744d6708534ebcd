"""Exact money: integer nano-dollars in storage, Decimal in arithmetic.

One dollar is 10^9 nanos, so a single token of the cheapest model still has
an exact integer price, and sums over millions of calls never drift.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

__all__ = [
    "MAX_MONEY_DIGITS",
    "NANOS_PER_USD",
    "format_usd",
    "format_usd_fixed",
    "money_digits",
    "nanos_to_usd",
    "parse_usd",
    "plain",
    "usd_text",
    "usd_to_nanos",
]

NANOS_PER_USD = 1_000_000_000


def usd_to_nanos(amount: Decimal | int | str) -> int:
    """Dollars to integer nano-dollars, rounding half to even at the nano."""
    return int((Decimal(amount) * NANOS_PER_USD).to_integral_value(ROUND_HALF_EVEN))


def plain(value: Decimal) -> Decimal:
    """The same amount without trailing zeros or an exponent (``1.6275``, ``100``, never ``1E+2``)."""
    return Decimal(format(value.normalize(), "f")) if value else Decimal(0)


def nanos_to_usd(nanos: int) -> Decimal:
    """Integer nano-dollars to exact dollars."""
    return plain(Decimal(nanos).scaleb(-9))


def usd_text(value: Decimal | int) -> str:
    """An exact amount of dollars as text for JSON, CSV and headers.

    ``"0.000000001"``, ``"12.5"``, ``"100"``: never an exponent. Ints are
    nano-dollars.
    """
    if isinstance(value, int):
        # Integer arithmetic: this is on every response's headers, and Decimal costs ten times more.
        whole, frac = divmod(abs(value), 10**9)
        sign = "-" if value < 0 else ""
        return f"{sign}{whole}.{frac:09d}".rstrip("0") if frac else f"{sign}{whole}"
    return format(plain(value), "f")


def parse_usd(text: str) -> Decimal:
    """Parse a user-typed amount such as ``12.50`` or ``$12.50``.

    Raises:
        ValueError: the text is not a positive amount; the message says so.
    """
    cleaned = text.strip().replace(",", "").removeprefix("$").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount of dollars; write it like 25 or 12.50") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite amount; write it like 25 or 12.50")
    if value <= 0:
        raise ValueError(f"{text!r} must be more than zero dollars")
    return value


def _decimal(value: Decimal | int | float) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def format_usd(amount: Decimal | int | float | None, *, nanos: bool = False, cents: bool = False) -> str:
    """Money for people, with the precision the amount deserves, in at most about eight characters.

    ``$1,234``, ``$12.35``, ``$0.0421``, ``$0.000041`` (two significant
    digits below a cent), ``$0``; ``cents`` forces two decimals (budget
    limits). ``nanos``: ``amount`` is integer nano-dollars. None is
    ``unknown``. Every amount ax shows a person goes through here or
    `format_usd_fixed`; exact machine text is `usd_text`.
    """
    if amount is None:
        return "unknown"
    d = nanos_to_usd(int(amount)) if nanos else _decimal(amount)
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


#: The most decimals a money column shows (two significant digits of a millionth of a dollar).
MAX_MONEY_DIGITS = 6


def money_digits(values: Iterable[Decimal | int | float | None]) -> int:
    """The decimals one money column needs: two significant digits of its smallest amount, 2 to 6.

    Every row of the column then prints with as many (`format_usd_fixed`), so
    the points line up and ``$0.0012`` never sits above ``$12`` looking larger.
    """
    amounts = [abs(_decimal(v)) for v in values if v]
    if not amounts:
        return 2
    smallest = min(amounts)
    if smallest >= 1:
        return 2
    return max(2, min(MAX_MONEY_DIGITS, -smallest.adjusted() + 1))


def format_usd_fixed(value: Decimal | int | float | None, digits: int, *, missing: str = "–") -> str:
    """Dollars with exactly ``digits`` decimals and thousands separators: ``$1,234.5000``, ``$0.0012``.

    Nothing at all is ``$0``: a free call is not a rounding of a cheap one.
    """
    if value is None:
        return missing
    d = _decimal(value)
    if d == 0:
        return "$0"
    sign = "-" if d < 0 else ""
    return f"{sign}${abs(d):,.{digits}f}"
