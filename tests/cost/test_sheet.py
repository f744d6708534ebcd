"""The price sheet: what it covers, and which price a deployment gets."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from axtui.config import PriceOverride
from axtui.cost.sheet import SHIPPED_PATH, PriceSheet, price_from_json, price_to_json, user_prices_path
from axtui.errors import ConfigError
from axtui.providers.sim.fleet import demo_fleet, demo_price_overrides
from axtui.types import Deployment, Usage

D = Decimal


def dep(provider: str, model: str, upstream: str | None = None) -> Deployment:
    return Deployment(provider=provider, model=model, upstream_model=upstream or model)


def test_shipped_sheet_names_its_sources_and_date() -> None:
    doc = json.loads(SHIPPED_PATH.read_text())
    assert doc["retrieved"] and doc["source"]
    providers = {m["provider"] for m in doc["models"]}
    assert {"openai", "anthropic", "gemini", "mistral", "deepseek", "xai", "groq"} <= providers
    assert set(providers) - {"ollama"} <= set(doc["sources"])


def test_every_demo_fleet_model_has_a_price_and_capabilities(sheet: PriceSheet) -> None:
    for provider in demo_fleet():
        for model in provider.models:
            p = sheet.get(model.name)
            assert p is not None, f"{provider.name}/{model.name} has no price"
            assert p.context_window, model.name
            assert p.tools is not None and p.vision is not None and p.json_mode is not None


def test_every_shipped_entry_round_trips_through_json(sheet: PriceSheet) -> None:
    for p in sheet.entries():
        assert price_from_json(price_to_json(p)) == p


def test_local_models_are_free_but_the_same_model_on_groq_is_not() -> None:
    s = PriceSheet.load(demo_price_overrides(), include_user=False)
    local = s.lookup(dep("local", "llama-3.3-70b-versatile"))
    groq = s.lookup(dep("groq", "llama-3.3-70b-versatile"))
    assert local is not None and local.is_free and local.origin == "config"
    assert groq is not None and groq.rates.input == D("0.59")
    # The override keeps what the model can do.
    assert local.context_window == groq.context_window


def test_lookup_order_deployment_then_model_override_then_sheet() -> None:
    overrides = {
        "gpt-4o": PriceOverride(input=D("1"), output=D("2")),
        "azure/gpt-4o": PriceOverride(input=D("3"), output=D("4")),
    }
    s = PriceSheet.load(overrides, include_user=False)
    assert s.lookup(dep("azure", "gpt-4o")).rates.input == D("3")  # type: ignore[union-attr]
    assert s.lookup(dep("openai", "gpt-4o")).rates.input == D("1")  # type: ignore[union-attr]
    assert s.lookup(dep("openai", "gpt-4o-mini")).rates.input == D("0.15")  # type: ignore[union-attr]


def test_upstream_name_wins_over_logical_name(sheet: PriceSheet) -> None:
    # A logical model served by a dated snapshot is priced as the snapshot's family.
    p = sheet.lookup(dep("anthropic", "smart", "claude-sonnet-4-5-20250929"))
    assert p is not None and p.model == "claude-sonnet-4-5"
    # An in-house name for a known model falls back to the logical name.
    q = sheet.lookup(dep("azure", "gpt-4o", "my-gpt4o-deployment"))
    assert q is not None and q.model == "gpt-4o"


def test_gemini_style_and_dated_names_resolve(sheet: PriceSheet) -> None:
    assert sheet.get("models/gemini-2.5-pro").model == "gemini-2.5-pro"  # type: ignore[union-attr]
    assert sheet.get("gpt-4o-2024-05-13").model == "gpt-4o"  # type: ignore[union-attr]
    assert sheet.get("gpt-4o-mini-2024-07-18").model == "gpt-4o-mini"  # type: ignore[union-attr]


def test_unknown_model_has_no_price_not_a_zero_price(sheet: PriceSheet) -> None:
    d = dep("acme", "mystery-9000")
    assert sheet.lookup(d) is None
    assert sheet.cost(d, Usage(100, 100)) is None
    assert sheet.estimate(d, 100, 100) is None


def test_override_for_a_model_the_sheet_lacks() -> None:
    s = PriceSheet.load({"my-finetune": PriceOverride(input=D("0.8"), output=D("1.6"))}, include_user=False)
    assert s.cost(dep("openai", "my-finetune"), Usage(1_000_000, 0)) == 800_000_000
    listed = {p.model: p for p in s.entries()}
    assert listed["my-finetune"].origin == "config"


def test_estimate_prices_prompt_and_output(sheet: PriceSheet) -> None:
    # gpt-4o-mini: 1,000 × 0.15 + 500 × 0.60 per million.
    assert sheet.estimate(dep("openai", "gpt-4o-mini"), 1000, 500) == 450_000


def test_imported_prices_replace_shipped_ones(tmp_path: Path) -> None:
    path = user_prices_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"models": [{"model": "gpt-4o", "provider": "openai", "input": "9", "output": "9"}]}))
    s = PriceSheet.load()
    p = s.get("gpt-4o")
    assert p is not None and p.origin == "imported" and p.rates.input == D("9")


def test_a_broken_user_price_file_is_a_config_error_naming_it() -> None:
    path = user_prices_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"prices\.json"):
        PriceSheet.load()
    path.write_text(json.dumps({"models": [{"model": "x", "input": "-1", "output": "1"}]}))
    with pytest.raises(ConfigError, match=r"entry 1.*zero or more"):
        PriceSheet.load()


def test_negative_override_is_refused_by_the_config() -> None:
    with pytest.raises(ValueError):
        PriceOverride(input=D("-1"), output=D("1"))
