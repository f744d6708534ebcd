"""What the cloud kinds' tests share: a tool request and the price check."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from axtui.cost.sheet import PriceSheet
from axtui.types import ChatRequest, Deployment, Usage

from .helpers import ask

WEATHER: dict[str, Any] = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def tool_request(model: str, **fields: Any) -> ChatRequest:
    """A request that makes the simulation call ``get_weather``."""
    return ask("Use get_weather for Paris", model, tools=[WEATHER], tool_choice="required", **fields)


def hand_priced_nanos(sheet: PriceSheet, deployment: Deployment, usage: Usage) -> float:
    """The cost of ``usage`` worked out by hand from the sheet's base rates (nano-dollars)."""
    price = sheet.lookup(deployment)
    assert price is not None, f"the price sheet has no price for {deployment.upstream_model}"
    r = price.rates
    cached = usage.cached_input_tokens
    written = usage.cache_write_tokens
    fresh = usage.input_tokens - cached - written
    dollars = (Decimal(fresh) * r.input + Decimal(cached) * (r.cached_input if r.cached_input is not None else r.input)
               + Decimal(written) * (r.cache_write if r.cache_write is not None else r.input)
               + Decimal(usage.output_tokens) * r.output) / Decimal(1_000_000)
    return float(dollars * Decimal(1_000_000_000))


def assert_cost_matches_sheet(sheet: PriceSheet, deployment: Deployment, usage: Usage) -> None:
    """The sheet's cost of a call is within 1 % of the hand-worked one, and not zero."""
    got = sheet.cost(deployment, usage)
    want = hand_priced_nanos(sheet, deployment, usage)
    assert got is not None and want > 0
    assert abs(got - want) <= 0.01 * want, f"{deployment.upstream_model}: sheet {got} vs by hand {want}"
