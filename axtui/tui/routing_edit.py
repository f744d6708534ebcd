"""Routing edits made on the dashboard, as pure functions over the config models.

Splits of an A/B test always add up to 100: setting one variant's share
spreads the difference over the others in proportion to their shares
(evenly when they are all at zero), in steps of a tenth of a percent.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from axtui.config import ABTestConfig, ABVariant, RoutingRule

__all__ = ["check_percent", "check_weight", "move_rule", "parse_weight", "rebalance"]

_TENTH = Decimal("0.1")


def check_weight(text: str) -> str | None:
    """Why ``text`` is not a deployment weight (a number ≥ 0), or None."""
    try:
        parse_weight(text)
    except ValueError as exc:
        return str(exc)
    return None


def parse_weight(text: str) -> float:
    """A weight typed by a person.

    Raises:
        ValueError: not a finite number at least 0.
    """
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number; a weight is 0 or more, like 1 or 2.5 (0 takes it out)") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{text!r}: a weight is a number of 0 or more (0 takes the deployment out of weighted routing)")
    if value > 1_000_000:
        raise ValueError(f"{text!r} is too large; weights are relative, so 1 to 100 is plenty")
    return float(value)


def check_percent(text: str) -> str | None:
    """Why ``text`` is not a split percentage (0 to 100), or None."""
    try:
        value = Decimal(text.strip().removesuffix("%"))
    except InvalidOperation:
        return f"{text!r} is not a number; a split is a percentage from 0 to 100, like 30"
    if not value.is_finite() or not 0 <= value <= 100:
        return f"{text!r}: a split is a percentage from 0 to 100"
    return None


def rebalance(test: ABTestConfig, variant: str, percent: float) -> ABTestConfig:
    """``test`` with ``variant`` at ``percent`` and the others scaled so the splits add up to 100.

    Raises:
        KeyError: no variant has that name.
        ValueError: ``percent`` is outside 0..100.
    """
    if not 0 <= percent <= 100:
        raise ValueError(f"a split is a percentage from 0 to 100, not {percent:g}")
    names = [v.name for v in test.variants]
    if variant not in names:
        raise KeyError(variant)
    target = Decimal(repr(percent)).quantize(_TENTH, ROUND_HALF_EVEN)
    others = [v for v in test.variants if v.name != variant]
    rest = Decimal(100) - target
    weights = [Decimal(repr(v.percent)) for v in others]
    total = sum(weights)
    shares: list[Decimal] = []
    for w in weights:
        raw = rest * (w / total) if total > 0 else rest / len(others)
        shares.append(raw.quantize(_TENTH, ROUND_HALF_EVEN))
    if shares:
        # Rounding leftovers go to the largest other share, so the sum is exactly 100.
        drift = rest - sum(shares)
        biggest = max(range(len(shares)), key=lambda i: shares[i])
        shares[biggest] += drift
    new: list[ABVariant] = []
    it = iter(shares)
    for v in test.variants:
        share = target if v.name == variant else next(it)
        new.append(v.model_copy(update={"percent": float(share)}))
    return ABTestConfig(name=test.name, model=test.model, variants=new, enabled=test.enabled)


def move_rule(rules: Sequence[RoutingRule], index: int, delta: int) -> tuple[list[RoutingRule], int]:
    """The rules with the one at ``index`` moved ``delta`` places (clamped); returns its new index."""
    out = list(rules)
    if not out or not 0 <= index < len(out):
        return out, index
    to = max(0, min(len(out) - 1, index + delta))
    rule = out.pop(index)
    out.insert(to, rule)
    return out, to
