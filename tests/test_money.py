"""Money as text: exact, never an exponent, the same from nano-dollars as from dollars."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from axtui.money import nanos_to_usd, usd_text


@given(st.integers(min_value=-(10**24), max_value=10**24))
def test_nanos_read_as_the_exact_dollars_they_are(nanos: int) -> None:
    text = usd_text(nanos)
    assert "e" not in text.lower()
    assert Decimal(text) == Decimal(nanos).scaleb(-9)
    assert text == format(nanos_to_usd(nanos), "f")


def test_examples() -> None:
    assert [usd_text(n) for n in (0, 1, 3150, 10**9, 123_456_789_012, -5)] == [
        "0", "0.000000001", "0.00000315", "1", "123.456789012", "-0.000000005"]
    assert usd_text(Decimal("12.50")) == "12.5"
