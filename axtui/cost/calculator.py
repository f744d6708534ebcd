"""What a call costs: usage times price, exactly.

ax's `Usage` has one meaning for every provider: ``input_tokens`` counts
every prompt token, and ``cached_input_tokens`` (cache reads) and
``cache_write_tokens`` (cache writes, of which ``cache_write_1h_tokens``
were kept for an hour) are parts of it. The adapters convert each
provider's report into it (OpenAI and Gemini count cache reads inside the
prompt count; Anthropic reports reads and writes beside ``input_tokens``).
So a call bills

- ``input - cached - writes`` tokens at the input price,
- ``cached`` at the cached-input price,
- 5-minute and 1-hour writes at their write prices,
- ``output`` at the output price, except reasoning tokens when the model
  prices them apart,

all at the rates of the long-context tier the prompt size falls in, less
the batch discount for batch calls. Arithmetic is Decimal; the stored
figure is integer nano-dollars, rounded once per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from axtui.money import nanos_to_usd as usd
from axtui.money import plain, usd_to_nanos
from axtui.money import usd_text as money
from axtui.types import Usage

if TYPE_CHECKING:
    from axtui.cost.sheet import ModelPrice

__all__ = ["Itemized", "Line", "cost_nanos", "cost_usd", "itemize", "money", "plain", "usd"]


@dataclass(frozen=True, slots=True)
class Line:
    """One kind of token on a bill: how many, at what price per million, for how much."""

    kind: str
    tokens: int
    per_million: Decimal
    usd: Decimal


@dataclass(frozen=True, slots=True)
class Itemized:
    """A call's bill: one line per kind of token, the discount, the total."""

    lines: tuple[Line, ...]
    subtotal_usd: Decimal
    discount_usd: Decimal
    total_usd: Decimal
    tier_above: int | None

    @property
    def total_nanos(self) -> int:
        """The total in integer nano-dollars (what the store keeps)."""
        return usd_to_nanos(self.total_usd)


def _per_token(tokens: int, per_million: Decimal) -> Decimal:
    # scaleb shifts the exponent: exact, whatever the context precision.
    return (Decimal(tokens) * per_million).scaleb(-6)


def itemize(price: ModelPrice, usage: Usage, *, batch: bool = False) -> Itemized:
    """The bill of one call with ``usage`` at ``price``.

    Counts a provider reported inconsistently (more cache reads and writes
    than prompt tokens, more reasoning than output) are clamped so that no
    line is negative; nothing is billed twice.
    """
    prompt = max(0, usage.input_tokens)
    rates = price.rates_for(prompt)
    cached = min(max(0, usage.cached_input_tokens), prompt)
    writes = min(max(0, usage.cache_write_tokens), prompt - cached)
    writes_1h = min(max(0, usage.cache_write_1h_tokens), writes)
    fresh = prompt - cached - writes
    output = max(0, usage.output_tokens)
    reasoning = min(max(0, usage.reasoning_tokens), output) if rates.reasoning is not None else 0

    write_5m = rates.cache_write if rates.cache_write is not None else rates.input
    write_1h = rates.cache_write_1h if rates.cache_write_1h is not None else write_5m
    parts = (
        ("input", fresh, rates.input),
        ("cached_input", cached, rates.cached_input if rates.cached_input is not None else rates.input),
        ("cache_write", writes - writes_1h, write_5m),
        ("cache_write_1h", writes_1h, write_1h),
        ("output", output - reasoning, rates.output),
        ("reasoning", reasoning, rates.reasoning if rates.reasoning is not None else rates.output),
    )
    lines = tuple(Line(kind, n, p, _per_token(n, p)) for kind, n, p in parts if n)
    subtotal = sum((line.usd for line in lines), Decimal(0))
    discount = subtotal * price.batch_discount if batch else Decimal(0)
    tier = next((t.above_tokens for t in sorted(price.tiers, key=lambda t: -t.above_tokens) if prompt > t.above_tokens),
                None)
    return Itemized(lines, subtotal, discount, subtotal - discount, tier)


def cost_usd(price: ModelPrice, usage: Usage, *, batch: bool = False) -> Decimal:
    """The exact dollar cost of one call."""
    return itemize(price, usage, batch=batch).total_usd


def cost_nanos(price: ModelPrice, usage: Usage, *, batch: bool = False) -> int:
    """The cost of one call in integer nano-dollars (rounded half to even at the nano)."""
    return usd_to_nanos(cost_usd(price, usage, batch=batch))
