"""Importing LiteLLM's cost map, as a library call and as `ax cost prices import`."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from axtui.cli import main
from axtui.cost.calculator import cost_usd
from axtui.cost.litellm import parse_litellm
from axtui.cost.sheet import PriceSheet, user_prices_path
from axtui.types import Usage

D = Decimal

# A slice of model_prices_and_context_window.json, in its own shape.
FIXTURE = {
    "sample_spec": {"max_tokens": "LEGACY parameter", "input_cost_per_token": 0.0, "mode": "one of: chat, embedding"},
    "gpt-4o": {
        "max_tokens": 16384, "max_input_tokens": 128000, "max_output_tokens": 16384,
        "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 1.25e-06,
        "input_cost_per_token_batches": 1.25e-06, "output_cost_per_token_batches": 5e-06,
        "litellm_provider": "openai", "mode": "chat", "supports_function_calling": True, "supports_vision": True,
        "supports_response_schema": True,
    },
    "claude-sonnet-4-5": {
        "max_input_tokens": 200000, "max_output_tokens": 64000,
        "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
        "input_cost_per_token_above_200k_tokens": 6e-06, "output_cost_per_token_above_200k_tokens": 2.25e-05,
        "cache_creation_input_token_cost": 3.75e-06, "cache_read_input_token_cost": 3e-07,
        "cache_creation_input_token_cost_above_1hr": 6e-06,
        "cache_creation_input_token_cost_above_200k_tokens": 7.5e-06,
        "cache_read_input_token_cost_above_200k_tokens": 6e-07,
        "litellm_provider": "anthropic", "mode": "chat", "supports_function_calling": True, "supports_vision": True,
    },
    "groq/brand-new-model": {
        "max_input_tokens": 131072, "max_output_tokens": 8192, "input_cost_per_token": 1e-07,
        "output_cost_per_token": 2e-07, "litellm_provider": "groq", "mode": "chat",
    },
    "text-embedding-3-large": {"input_cost_per_token": 1.3e-07, "output_cost_per_token": 0.0, "mode": "embedding",
                               "litellm_provider": "openai", "max_input_tokens": 8191},
    "dall-e-3": {"mode": "image_generation", "output_cost_per_image": 0.04},
    "broken-negative": {"input_cost_per_token": -1e-06, "output_cost_per_token": 1e-06, "mode": "chat"},
    "broken-text": {"input_cost_per_token": "cheap", "output_cost_per_token": 1e-06, "mode": "chat"},
    "broken-missing": {"output_cost_per_token": 1e-06, "mode": "chat"},
    "broken-shape": [1, 2, 3],
}


def parsed() -> object:
    return json.loads(json.dumps(FIXTURE), parse_float=Decimal)


def test_fields_map_to_per_million_prices() -> None:
    result = parse_litellm(parsed())
    by = {p.model: p for p in result.prices}
    gpt = by["gpt-4o"]
    assert (gpt.rates.input, gpt.rates.output, gpt.rates.cached_input) == (D("2.5"), D("10"), D("1.25"))
    assert gpt.batch_discount == D("0.5")
    assert (gpt.context_window, gpt.max_output, gpt.tools, gpt.vision, gpt.json_mode) == (128000, 16384, True, True, True)
    claude = by["claude-sonnet-4-5"]
    assert claude.rates.cache_write == D("3.75") and claude.rates.cache_write_1h == D("6")
    (tier,) = claude.tiers
    assert tier.above_tokens == 200_000
    assert (tier.rates.input, tier.rates.output, tier.rates.cached_input, tier.rates.cache_write) == (
        D("6"), D("22.5"), D("0.6"), D("7.5"))
    assert by["text-embedding-3-large"].kind == "embedding"
    assert by["groq/brand-new-model"].provider == "groq"


def test_imported_long_context_prices_match_the_shipped_ones() -> None:
    imported = {p.model: p for p in parse_litellm(parsed()).prices}["claude-sonnet-4-5"]
    shipped = PriceSheet.load(include_user=False).get("claude-sonnet-4-5")
    assert shipped is not None
    for usage in (Usage(150_000, 1000, cached_input_tokens=60_000), Usage(10_000, 500, cache_write_tokens=2000)):
        assert cost_usd(imported, usage) == cost_usd(shipped, usage)


def test_invalid_entries_are_reported_and_others_kept() -> None:
    result = parse_litellm(parsed())
    assert {n for n, _ in result.invalid} == {"broken-negative", "broken-text", "broken-missing", "broken-shape"}
    reasons = dict(result.invalid)
    assert "zero or more" in reasons["broken-negative"]
    assert "input_cost_per_token is missing" in reasons["broken-missing"]
    assert [n for n, _ in result.skipped] == ["dall-e-3"]
    assert len(result.prices) == 4


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "model_prices_and_context_window.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_cli_import_persists_reports_and_fails_on_invalid_entries(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["cost", "prices", "import", str(write(tmp_path, FIXTURE))])
    assert result.exit_code == 1, result.output
    assert "broken-negative" in result.output and "imported 4 prices" in result.output
    sheet = PriceSheet.load()
    assert sheet.get("groq/brand-new-model") is not None
    assert sheet.get("gpt-4o").origin == "imported"  # type: ignore[union-attr]
    # A second import of only valid entries succeeds and keeps the first import's prices.
    clean = {k: v for k, v in FIXTURE.items() if k == "dall-e-3" or k == "claude-sonnet-4-5"}
    again = CliRunner().invoke(main, ["cost", "prices", "import", str(write(tmp_path, clean))])
    assert again.exit_code == 0, again.output
    assert PriceSheet.load().get("groq/brand-new-model") is not None


def test_cli_import_of_a_malformed_file_writes_nothing(tmp_path: Path) -> None:
    for content in ("{oops", "[1, 2]", "42"):
        result = CliRunner().invoke(main, ["cost", "prices", "import", str(write(tmp_path, content))])
        assert result.exit_code == 2, result.output
        assert "nothing was imported" in result.output
        assert not user_prices_path().exists()
    missing = CliRunner().invoke(main, ["cost", "prices", "import", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_cli_import_where_every_entry_is_invalid_is_a_usage_error(tmp_path: Path) -> None:
    broken = {"gpt-x": {"input_cost_per_token": "abc", "output_cost_per_token": 1, "mode": "chat"},
              "gpt-y": {"input_cost_per_token": -1, "output_cost_per_token": 1, "mode": "chat"}}
    result = CliRunner().invoke(main, ["cost", "prices", "import", str(write(tmp_path, broken))])
    assert result.exit_code == 2, result.output
    assert "gpt-x" in result.output and "2 entries were invalid" in result.output
    assert not user_prices_path().exists()


def test_imported_price_is_what_calls_are_billed_at(tmp_path: Path) -> None:
    CliRunner().invoke(main, ["cost", "prices", "import", str(write(tmp_path, FIXTURE))])
    result = CliRunner().invoke(main, ["cost", "estimate", "groq/brand-new-model", "--input", "1000000",
                                       "--output", "1000000", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["cost_usd"] == "0.3"


# LiteLLM's cloud entries, in the shapes its cost map uses for them.
CLOUD = {
    "azure/gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05, "litellm_provider": "azure",
                     "mode": "chat"},
    "anthropic.claude-3-5-sonnet-20240620-v1:0": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                                                  "litellm_provider": "bedrock", "mode": "chat"},
    "bedrock/us.amazon.nova-pro-v1:0": {"input_cost_per_token": 8e-07, "output_cost_per_token": 3.2e-06,
                                        "litellm_provider": "bedrock_converse", "mode": "chat"},
    "bedrock/us-west-2/meta.llama3-1-70b-instruct-v1:0": {"input_cost_per_token": 9.9e-07,
                                                           "output_cost_per_token": 9.9e-07,
                                                           "litellm_provider": "bedrock", "mode": "chat"},
    "vertex_ai/claude-3-7-sonnet@20250219": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                                             "litellm_provider": "vertex_ai-anthropic_models", "mode": "chat"},
    "gemini-2.0-flash-001": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07,
                             "litellm_provider": "vertex_ai-language-models", "mode": "chat"},
}


def test_cloud_entries_are_named_as_the_cloud_kinds_look_them_up() -> None:
    result = parse_litellm(CLOUD)
    by = {p.model: p for p in result.prices}
    assert {name: p.provider for name, p in by.items()} == {
        "azure/gpt-4o": "azure",
        "anthropic.claude-3-5-sonnet-20240620-v1:0": "bedrock",
        "us.amazon.nova-pro-v1:0": "bedrock",
        "claude-3-7-sonnet@20250219": "vertex",
        "gemini-2.0-flash-001": "vertex",
    }
    assert by["us.amazon.nova-pro-v1:0"].rates.input == D("0.8")
    assert [name for name, _ in result.skipped] == ["bedrock/us-west-2/meta.llama3-1-70b-instruct-v1:0"]
    assert "region us-west-2 only" in result.skipped[0][1]
