"""``ax cache stats|clear|invalidate|eval`` as a user runs them."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from axtui.cli import main
from axtui.config import ProviderConfig, Settings
from axtui.engine.compose import build_gateway
from axtui.providers.sim import fleet
from axtui.types import Caller

from .helpers import request

PAIRS = Path(__file__).with_name("pairs.jsonl")


def ax(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


async def serve_some_calls() -> None:
    """Six calls on the instant simulated fleet: three misses, two exact hits, one semantic hit."""
    providers = [ProviderConfig(name=p.name, kind="sim", profile="fast", region=p.region, models=p.model_names)
                 for p in fleet.demo_fleet()]
    async with await build_gateway(Settings(providers=providers)) as gw:
        alice, bob = Caller(user="alice"), Caller(user="bob")
        for text, who in [
            ("What is the capital of France?", alice),
            ("What is the capital of France?", alice),
            ("What is the capital of France?", alice),
            ("What is the capital of France?", bob),
            ("Why is the sky blue?", alice),
        ]:
            await gw.call(request(text, model="gpt-4o-mini"), who)
        await gw.cache.drain()  # type: ignore[attr-defined]
        await gw.call(request("why is the sky blue", model="gpt-4o-mini"), alice)


async def test_stats_json_counts_hits_misses_and_savings() -> None:
    await serve_some_calls()
    code, out = ax("cache", "stats", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert (data["hits"], data["exact_hits"], data["semantic_hits"], data["misses"]) == (3, 2, 1, 3)
    assert data["hit_rate"] == 0.5
    assert Decimal(data["saved_usd"]) > 0
    assert data["entries"] == 3 and data["bytes"] > 0
    assert {"evictions", "expirations", "invalidated"} <= data.keys()
    # The gateway saved its semantic index on close: its size per entry is reported.
    assert data["index_entries"] == 3 and data["index_bytes_per_entry"] > 256 * 4
    code, out = ax("cache", "stats")
    assert code == 0 and "hit rate" in out and "50.0%" in out and "gpt-4o-mini" in out
    assert "semantic index" in out and "3 entries" in out


async def test_invalidate_and_clear() -> None:
    await serve_some_calls()
    code, out = ax("cache", "invalidate", "--user", "bob")
    assert code == 0 and "removed 1 cached answer" in out
    code, out = ax("cache", "invalidate", "--model", "gpt-4o-mini", "--older-than", "1h")
    assert code == 0 and "removed 0 cached answers" in out
    code, out = ax("cache", "clear")
    assert code == 0 and "removed 2 cached answers" in out
    assert "running gateways stop serving them from their next call" in " ".join(out.split())
    assert json.loads(ax("cache", "stats", "--json")[1])["entries"] == 0


async def test_a_running_gateway_stops_serving_what_was_cleared_from_its_next_call() -> None:
    providers = [ProviderConfig(name=p.name, kind="sim", profile="fast", region=p.region, models=p.model_names)
                 for p in fleet.demo_fleet()]
    alice = Caller(user="alice")

    async def ask(gw: Any, text: str) -> str:
        return str((await gw.call(request(text, model="gpt-4o-mini"), alice)).record.cache)

    async with await build_gateway(Settings(providers=providers)) as gw:
        await ask(gw, "What is the capital of France?")
        await ask(gw, "Why is the sky blue?")
        await gw.cache.drain()  # type: ignore[attr-defined]
        assert (await ask(gw, "What is the capital of France?"), await ask(gw, "why is the sky blue")) == (
            "exact", "semantic")
        assert ax("cache", "invalidate", "--user", "alice")[0] == 0
        # At once: the gateway's store poll (once a second) has not run since.
        assert (await ask(gw, "What is the capital of France?"), await ask(gw, "why is the sky blue")) == (
            "miss", "miss")
        # What is answered after the invalidation is kept as usual.
        await gw.cache.drain()  # type: ignore[attr-defined]
        assert await ask(gw, "What is the capital of France?") == "exact"
        assert ax("cache", "clear")[0] == 0
        assert await ask(gw, "What is the capital of France?") == "miss"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cache", "invalidate"], "say which entries to invalidate"),
        (["cache", "invalidate", "--older-than", "soon"], "is not a duration"),
        (["cache", "invalidate", "--older-than=-5"], "is negative"),
        (["cache", "stats", "--since=-500"], "is negative"),
        (["cache", "invalidate", "--key", "xyz"], "not 8 to 64 hexadecimal digits"),
        (["cache", "eval", "missing.jsonl"], "does not exist"),
        (["cache", "eval", str(PAIRS), "--threshold", "1.5"], "1.5"),
    ],
)
def test_bad_input_is_explained_with_exit_code_2(args: list[str], message: str) -> None:
    code, out = ax(*args)
    assert code == 2
    assert message in out


def test_eval_on_the_shipped_pairs_has_no_false_hit() -> None:
    code, out = ax("cache", "eval", str(PAIRS), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["pairs"] >= 60
    assert data["false_hits"] == 0 and data["precision"] == 1.0
    assert data["recall"] >= 0.8
    assert data["embedder"].startswith("builtin")
    assert [row["threshold"] for row in data["sweep"]] == sorted(row["threshold"] for row in data["sweep"])
    loose = next(row for row in data["sweep"] if row["threshold"] == 0.7)
    assert loose["false_hits_without_guards"] > loose["false_hits"]  # the guards earn their keep


def test_eval_prints_a_sweep_and_names_false_hits(tmp_path: Path) -> None:
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(
        '{"a": "How do I sort a list in Python?", "b": "how do i sort a list in python", "same": true}\n'
        '{"a": "How do I sort a list in Python?", "b": "How do I sort a dict in Python?", "same": false}\n'
    )
    code, out = ax("cache", "eval", str(pairs), "--threshold", "0.5")
    assert code == 0, out
    assert "threshold sweep" in out and "false hits at 0.5" in out and "line 2" in out
    assert "suggested threshold" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "line 1: not JSON"),
        ('{"a": "x", "b": "y"}\n', 'needs the fields "a", "b" and "same"'),
        ('{"a": "x", "b": "y", "same": "yes"}\n', '"same" must be true or false'),
        ('{"a": 3, "b": "y", "same": true}\n', "must be a string or a non-empty list"),
        ("\n", "holds no pairs"),
    ],
)
def test_a_malformed_pairs_file_names_the_line(tmp_path: Path, content: str, message: str) -> None:
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(content)
    code, out = ax("cache", "eval", str(pairs))
    assert code == 2
    assert message in out
