"""Importing LiteLLM's cost map (``model_prices_and_context_window.json``).

The community keeps that file current; `ax cost prices import FILE` reads
it so users refresh prices without waiting for an ax release. Each entry is
keyed by the model name as its provider spells it (``gpt-4o``,
``groq/llama-3.3-70b-versatile``) and prices tokens in dollars per token:

| LiteLLM field                                   | ax                    |
| ----------------------------------------------- | --------------------- |
| ``input_cost_per_token``                        | input                 |
| ``output_cost_per_token``                       | output                |
| ``cache_read_input_token_cost``                 | cached input          |
| ``cache_creation_input_token_cost``             | cache write (5 min)   |
| ``cache_creation_input_token_cost_above_1hr``   | cache write (1 hour)  |
| ``output_cost_per_reasoning_token``             | reasoning             |
| ``*_above_<N>k_tokens``                         | a tier above N·1000   |
| ``input_cost_per_token_batches``                | batch discount        |
| ``max_input_tokens`` / ``max_output_tokens``    | context / max output  |
| ``supports_function_calling`` / ``_vision`` / ``_response_schema`` | capabilities |

Entries for images, audio, rerank and the like (priced per image, second
or query) are skipped, not failed: ax prices tokens only.

Cloud entries are named as ax's cloud kinds look them up:

| LiteLLM key (``litellm_provider``)                               | ax name (provider)                          |
| ---------------------------------------------------------------- | ------------------------------------------- |
| ``azure/gpt-4o`` (``azure``)                                      | ``azure/gpt-4o`` (azure): a provider named ``azure`` finds it by deployment id; others fall back to OpenAI's ``gpt-4o`` |
| ``anthropic.claude-…-v1:0``, ``bedrock/us.amazon.nova-pro-v1:0``, ``bedrock/converse/…`` (``bedrock``, ``bedrock_converse``) | the model id or inference profile (bedrock) |
| ``bedrock/us-east-1/…`` (one region's price)                      | skipped: ax keeps one price per model id    |
| ``vertex_ai/claude-…@…``, ``gemini-2.0-flash-001`` (``vertex_ai-*``) | the bare model name (vertex)             |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from axtui.cost.sheet import ModelPrice, Rates, Tier

__all__ = ["ImportResult", "parse_litellm"]

_TOKEN_MODES = {"chat", "completion", "responses", "embedding", None}
_TIER_FIELD = re.compile(r"^(?P<what>.+)_above_(?P<k>\d+)k_tokens$")
_MILLION = Decimal(1_000_000)
_AWS_REGION = re.compile(r"^[a-z]{2}(?:-gov)?-[a-z]+-\d+$")


def _cloud_name(name: str, provider: str) -> tuple[str, str] | str:
    """(ax name, ax provider) of a cloud entry, its name and provider unchanged otherwise, or why it is skipped."""
    if provider.startswith("bedrock") or name.startswith("bedrock/"):
        rest = name.removeprefix("bedrock/")
        for route in ("converse/", "invoke/"):
            rest = rest.removeprefix(route)
        first, _, tail = rest.partition("/")
        if tail and _AWS_REGION.match(first):
            return f"a price for the region {first} only; ax keeps the model id's general price"
        return rest, "bedrock"
    if provider.startswith("vertex_ai") or name.startswith("vertex_ai/"):
        return name.removeprefix("vertex_ai/"), "vertex"
    if provider == "azure" or name.startswith("azure/"):
        return name, "azure"
    return name, provider


@dataclass(slots=True)
class ImportResult:
    """What an import found: prices to keep, entries refused and entries skipped."""

    prices: list[ModelPrice] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _per_million(entry: Mapping[str, Any], key: str) -> Decimal | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValueError(f"{key} must be a number of dollars per token, not {value!r}")
    try:
        dollars = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{key} must be a number of dollars per token, not {value!r}") from None
    if not dollars.is_finite() or dollars < 0:
        raise ValueError(f"{key} must be zero or more, not {value!r}")
    # Per token to per million, normalised so 2.5E-6 reads back as 2.5.
    out = (dollars * _MILLION).normalize()
    return out.quantize(Decimal(1)) if out == out.to_integral_value() else out


def _tokens(entry: Mapping[str, Any], key: str) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or value < 0 or value != int(value):
        raise ValueError(f"{key} must be a whole number of tokens, not {value!r}")
    return int(value)


def _flag(entry: Mapping[str, Any], key: str) -> bool | None:
    value = entry.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"{key} must be true or false, not {value!r}")


def _tiers(entry: Mapping[str, Any], base: Rates) -> tuple[Tier, ...]:
    by_k: dict[int, dict[str, Decimal | None]] = {}
    for key in entry:
        m = _TIER_FIELD.match(key)
        if m is None:
            continue
        by_k.setdefault(int(m["k"]), {})[m["what"]] = _per_million(entry, key)
    tiers = []
    for k, fields in sorted(by_k.items()):
        tier_input = fields.get("input_cost_per_token")
        tier_output = fields.get("output_cost_per_token")
        tiers.append(
            Tier(
                k * 1000,
                Rates(
                    input=tier_input if tier_input is not None else base.input,
                    output=tier_output if tier_output is not None else base.output,
                    cached_input=fields.get("cache_read_input_token_cost"),
                    cache_write=fields.get("cache_creation_input_token_cost"),
                    cache_write_1h=fields.get("cache_creation_input_token_cost_above_1hr"),
                ),
            )
        )
    return tuple(tiers)


def _entry(name: str, entry: Mapping[str, Any]) -> ModelPrice:
    inp = _per_million(entry, "input_cost_per_token")
    if inp is None:
        raise ValueError("input_cost_per_token is missing")
    out = _per_million(entry, "output_cost_per_token")
    mode = entry.get("mode")
    if out is None and mode != "embedding":
        raise ValueError("output_cost_per_token is missing")
    rates = Rates(
        input=inp,
        output=out if out is not None else Decimal(0),
        cached_input=_per_million(entry, "cache_read_input_token_cost"),
        cache_write=_per_million(entry, "cache_creation_input_token_cost"),
        cache_write_1h=_per_million(entry, "cache_creation_input_token_cost_above_1hr"),
        reasoning=_per_million(entry, "output_cost_per_reasoning_token"),
    )
    batch_in = _per_million(entry, "input_cost_per_token_batches")
    discount = Decimal(0)
    if batch_in is not None and inp > 0 and batch_in < inp:
        discount = (1 - batch_in / inp).quantize(Decimal("0.0001")).normalize()
    streaming = _flag(entry, "supports_native_streaming")
    return ModelPrice(
        model=name,
        provider=str(entry.get("litellm_provider") or (name.split("/", 1)[0] if "/" in name else "")),
        rates=rates,
        tiers=_tiers(entry, rates),
        batch_discount=discount,
        kind="embedding" if mode == "embedding" else "chat",
        context_window=_tokens(entry, "max_input_tokens"),
        max_output=_tokens(entry, "max_output_tokens") or _tokens(entry, "max_tokens"),
        tools=_flag(entry, "supports_function_calling"),
        vision=_flag(entry, "supports_vision"),
        json_mode=_flag(entry, "supports_response_schema"),
        streaming=streaming if streaming is not None else (mode != "embedding"),
        origin="imported",
    )


def parse_litellm(data: Any) -> ImportResult:
    """Prices from a parsed LiteLLM cost map (parse it with ``parse_float=Decimal`` to stay exact).

    Raises:
        ValueError: the document is not a JSON object of entries at all.
    """
    if not isinstance(data, Mapping):
        raise ValueError(
            "not LiteLLM's cost map: expected a JSON object mapping model names to their prices "
            "(like model_prices_and_context_window.json)"
        )
    result = ImportResult()
    for name, entry in data.items():
        if name == "sample_spec":
            continue  # LiteLLM's documentation of the format, not a model
        if not isinstance(name, str) or not name.strip():
            result.invalid.append((str(name), "the model name is empty"))
            continue
        if not isinstance(entry, Mapping):
            result.invalid.append((name, f"the entry must be an object, not {type(entry).__name__}"))
            continue
        mode = entry.get("mode")
        if not (mode is None or isinstance(mode, str)) or mode not in _TOKEN_MODES:
            result.skipped.append((name, f"mode {mode!r} is not priced per token"))
            continue
        provider = str(entry.get("litellm_provider") or "")
        cloud = _cloud_name(name, provider)
        if isinstance(cloud, str):
            result.skipped.append((name, cloud))
            continue
        try:
            price = _entry(cloud[0], entry)
        except ValueError as exc:
            result.invalid.append((name, str(exc)))
            continue
        if cloud[1]:
            price = replace(price, provider=cloud[1])
        result.prices.append(price)
    return result
