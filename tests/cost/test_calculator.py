"""The calculator: worked examples from the providers' price pages, and its laws."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from axtui.cost.calculator import cost_nanos, cost_usd, itemize, money, plain, usd
from axtui.cost.sheet import ModelPrice, PriceSheet, Rates, Tier
from axtui.providers.anthropic import anthropic_usage
from axtui.providers.gemini import gemini_usage
from axtui.providers.openai import openai_usage
from axtui.types import Usage

D = Decimal


def price(sheet: PriceSheet, name: str) -> ModelPrice:
    p = sheet.get(name)
    assert p is not None, name
    return p


# -- worked examples: each provider's usage report, as its adapter converts it ---------------


def test_openai_cached_tokens_inside_prompt_tokens_are_not_billed_twice(sheet: PriceSheet) -> None:
    # gpt-4o: $2.50 input, $1.25 cached input, $10 output per million.
    usage = openai_usage({"prompt_tokens": 12345, "completion_tokens": 500,
                          "prompt_tokens_details": {"cached_tokens": 2000}})
    bill = itemize(price(sheet, "gpt-4o"), usage)
    # 10,345 fresh × 2.50 + 2,000 cached × 1.25 + 500 × 10, per million.
    assert bill.total_usd == D("0.0333625")
    assert {ln.kind: ln.tokens for ln in bill.lines} == {"input": 10345, "cached_input": 2000, "output": 500}
    assert cost_nanos(price(sheet, "gpt-4o"), usage) == 33_362_500


def test_openai_reasoning_tokens_are_billed_as_output(sheet: PriceSheet) -> None:
    # o4-mini: $1.10 / $4.40; reasoning tokens are part of completion_tokens.
    usage = openai_usage({"prompt_tokens": 1000, "completion_tokens": 3000,
                          "completion_tokens_details": {"reasoning_tokens": 2500}})
    assert cost_usd(price(sheet, "o4-mini"), usage) == D("0.0143")


def test_anthropic_cache_reads_and_5m_1h_writes_beside_input(sheet: PriceSheet) -> None:
    # claude-sonnet-4-5: $3 input, $3.75 5m write, $6 1h write, $0.30 read, $15 output.
    usage = anthropic_usage({
        "input_tokens": 50, "cache_read_input_tokens": 10_000, "cache_creation_input_tokens": 2_000,
        "output_tokens": 400, "cache_creation": {"ephemeral_5m_input_tokens": 1500, "ephemeral_1h_input_tokens": 500},
    })
    assert usage.input_tokens == 12_050
    # 50×3 + 10,000×0.30 + 1,500×3.75 + 500×6 + 400×15 = 17,775 per million.
    assert cost_usd(price(sheet, "claude-sonnet-4-5"), usage) == D("0.017775")


def test_anthropic_long_context_bills_the_whole_call_at_the_higher_rates(sheet: PriceSheet) -> None:
    usage = anthropic_usage({"input_tokens": 150_000, "cache_read_input_tokens": 60_000, "output_tokens": 1_000})
    bill = itemize(price(sheet, "claude-sonnet-4-5"), usage)
    # 210k prompt tokens > 200k: 150,000×6 + 60,000×0.60 + 1,000×22.50.
    assert bill.tier_above == 200_000
    assert bill.total_usd == D("0.9585")


def test_anthropic_haiku_list_price(sheet: PriceSheet) -> None:
    assert cost_usd(price(sheet, "claude-haiku-4-5"), Usage(input_tokens=1000, output_tokens=1000)) == D("0.006")


def test_gemini_cached_tokens_inside_prompt_count_and_thoughts_as_output(sheet: PriceSheet) -> None:
    # gemini-2.5-pro over 200k prompt tokens: $2.50 input, $0.25 cached, $15 output.
    usage = gemini_usage({"promptTokenCount": 250_000, "cachedContentTokenCount": 100_000,
                          "candidatesTokenCount": 2_000, "thoughtsTokenCount": 3_000})
    assert cost_usd(price(sheet, "gemini-2.5-pro"), usage) == D("0.475")
    # gemini-2.5-flash, short prompt: $0.30 input, $2.50 output (thinking included).
    flash = gemini_usage({"promptTokenCount": 1000, "candidatesTokenCount": 200, "thoughtsTokenCount": 800})
    assert cost_usd(price(sheet, "gemini-2.5-flash"), flash) == D("0.0028")


def test_gemini_tier_starts_above_200k_not_at_it(sheet: PriceSheet) -> None:
    p = price(sheet, "gemini-2.5-pro")
    assert itemize(p, Usage(input_tokens=200_000)).total_usd == D("0.25")  # 200k × 1.25
    assert itemize(p, Usage(input_tokens=200_001)).total_usd == D("0.5000025")  # 200,001 × 2.50


def test_deepseek_cache_hits(sheet: PriceSheet) -> None:
    usage = openai_usage({"prompt_tokens": 10_000, "completion_tokens": 1_000, "prompt_cache_hit_tokens": 8_000})
    # 2,000×0.28 + 8,000×0.028 + 1,000×0.42.
    assert cost_usd(price(sheet, "deepseek-chat"), usage) == D("0.001204")


def test_groq_llama_million_tokens_each_way(sheet: PriceSheet) -> None:
    assert cost_usd(price(sheet, "llama-3.3-70b-versatile"), Usage(1_000_000, 1_000_000)) == D("1.38")


def test_batch_discount_halves_the_bill(sheet: PriceSheet) -> None:
    bill = itemize(price(sheet, "gpt-4o"), Usage(1_000_000, 1_000_000), batch=True)
    assert bill.subtotal_usd == D("12.5")
    assert bill.total_usd == D("6.25")


def test_reasoning_priced_apart_when_the_model_says_so() -> None:
    p = ModelPrice("thinker", "x", Rates(D("0.15"), D("0.60"), reasoning=D("3.50")))
    # 200 answer tokens at 0.60 and 800 thinking tokens at 3.50.
    assert cost_usd(p, Usage(input_tokens=0, output_tokens=1000, reasoning_tokens=800)) == D("0.00292")


def test_missing_cache_prices_fall_back_to_input_price() -> None:
    p = ModelPrice("plain", "x", Rates(D("1"), D("2")))
    assert cost_usd(p, Usage(input_tokens=1000, cached_input_tokens=400, cache_write_tokens=100)) == D("0.001")


def test_tier_without_cache_prices_scales_the_base_ones() -> None:
    p = ModelPrice("t", "x", Rates(D("1"), D("2"), cached_input=D("0.1")), tiers=(Tier(10, Rates(D("2"), D("4"))),))
    assert p.rates_for(11).cached_input == D("0.2")


def test_inconsistent_reports_are_clamped_not_negative() -> None:
    p = ModelPrice("plain", "x", Rates(D("1"), D("2"), cached_input=D("0.5")))
    # More cache reads than prompt tokens: bill the prompt as cached, nothing negative.
    bill = itemize(p, Usage(input_tokens=100, cached_input_tokens=500, output_tokens=10, reasoning_tokens=50))
    assert all(ln.tokens >= 0 and ln.usd >= 0 for ln in bill.lines)
    assert bill.total_usd == D("0.00007")


def test_free_model_costs_nothing(sheet: PriceSheet) -> None:
    assert cost_nanos(price(sheet, "llama3.1:8b"), Usage(10_000, 10_000)) == 0


def test_plain_and_usd_never_print_exponents() -> None:
    assert str(plain(D("100.000"))) == "100"
    assert str(usd(100 * 10**9)) == "100"
    assert money(1) == "0.000000001"
    assert money(D("0.0000000010")) == "0.000000001"
    assert money(10**9) == "1"
    assert str(plain(D("1.62750000"))) == "1.6275"


# -- laws ---------------------------------------------------------------------------------------

_SHIPPED = PriceSheet.load(include_user=False)
_CHAT = [p for p in _SHIPPED.entries() if p.kind == "chat"]
counts = st.integers(min_value=0, max_value=400_000)


@st.composite
def usages(draw: st.DrawFn, cap: int = 400_000) -> Usage:
    fresh, cached, w5, w1h, out, reasoning = (draw(st.integers(0, cap)) for _ in range(6))
    return Usage(fresh + cached + w5 + w1h, out + reasoning, cached, w5 + w1h, w1h, reasoning)


@given(p=st.sampled_from(_CHAT), base=usages(), part=st.integers(0, 5), more=st.integers(1, 100_000))
@settings(max_examples=300, deadline=None)
def test_cost_grows_with_every_token_count(p: ModelPrice, base: Usage, part: int, more: int) -> None:
    bigger = Usage(base.input_tokens, base.output_tokens, base.cached_input_tokens, base.cache_write_tokens,
                   base.cache_write_1h_tokens, base.reasoning_tokens)
    if part == 0:
        bigger.input_tokens += more  # fresh input
    elif part == 1:
        bigger.input_tokens += more
        bigger.cached_input_tokens += more
    elif part == 2:
        bigger.input_tokens += more
        bigger.cache_write_tokens += more
    elif part == 3:
        bigger.input_tokens += more
        bigger.cache_write_tokens += more
        bigger.cache_write_1h_tokens += more
    elif part == 4:
        bigger.output_tokens += more
    else:
        bigger.output_tokens += more
        bigger.reasoning_tokens += more
    assert cost_usd(p, bigger) >= cost_usd(p, base) >= 0


@given(p=st.sampled_from(_CHAT), a=usages(cap=12_000), b=usages(cap=12_000))
@settings(max_examples=300, deadline=None)
def test_costs_add_over_calls_within_a_tier(p: ModelPrice, a: Usage, b: Usage) -> None:
    # Both calls and their sum stay under the lowest long-context threshold (100k).
    assert cost_usd(p, a) + cost_usd(p, b) == cost_usd(p, a + b)


@given(p=st.sampled_from(_CHAT), u=usages())
@settings(max_examples=200, deadline=None)
def test_nanos_round_once_per_call(p: ModelPrice, u: Usage) -> None:
    exact = cost_usd(p, u) * 10**9
    assert abs(cost_nanos(p, u) - exact) <= D("0.5")


@given(p=st.sampled_from([m for m in _CHAT if m.batch_discount]), u=usages())
@settings(max_examples=100, deadline=None)
def test_batch_never_costs_more(p: ModelPrice, u: Usage) -> None:
    assert cost_usd(p, u, batch=True) <= cost_usd(p, u)


@pytest.mark.parametrize("name", ["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro", "deepseek-chat", "grok-4"])
def test_cached_tokens_cost_less_than_fresh_ones(sheet: PriceSheet, name: str) -> None:
    p = price(sheet, name)
    assert cost_usd(p, Usage(10_000, 0, cached_input_tokens=10_000)) < cost_usd(p, Usage(10_000, 0))
