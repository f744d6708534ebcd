"""Exact money: integer nano-dollars in storage, Decimal in arithmetic.

One dollar is 10^9 nanos, so a single token of the cheapest model still has
an exact integer price, and sums over millions of calls never drift.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

__all__ = ["NANOS_PER_USD", "format_usd", "nanos_to_usd", "parse_usd", "plain", "usd_text", "usd_to_nanos"]

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


def format_usd(amount: Decimal | int | None, *, nanos: bool = False) -> str:
    """Money for people: cents above a dollar, more digits for small sums."""
    if amount is None:
        return "unknown"
    value = nanos_to_usd(int(amount)) if nanos else Decimal(amount)
    mag = abs(value)
    if mag >= 100:
        return f"${value:,.2f}"
    if mag >= 1:
        return f"${value:,.3f}"
    if mag == 0:
        return "$0.00"
    if mag >= Decimal("0.01"):
        return f"${value:.4f}"
    return f"${value:.6f}"
