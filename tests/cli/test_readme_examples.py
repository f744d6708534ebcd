"""README examples that once failed on the demo fleet, run as the README writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from axtui.cli import main


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_cache_eval_with_a_served_embedding_model(tmp_path: Path) -> None:
    """`ax cache eval pairs.jsonl --embedder text-embedding-3-small` (the demo fleet serves that model)."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"a": "What is WAL?", "b": "Explain WAL mode", "same": true}\n'
                     '{"a": "Capital of France?", "b": "Capital of Germany?", "same": false}\n')
    code, out, err = run("cache", "eval", str(pairs), "--embedder", "text-embedding-3-small", "--json")
    assert code == 0, err
    assert json.loads(out)["embedder"].endswith("text-embedding-3-small")


@pytest.mark.parametrize("form", ["id", "whole key"])
def test_keys_revoke_takes_what_keys_list_and_create_show(form: str) -> None:
    code, out, _ = run("keys", "create", "--user", "alice", "--json")
    made = json.loads(out)
    code, out, err = run("keys", "revoke", made["id"] if form == "id" else made["key"])
    assert code == 0, err
    code, out, _ = run("keys", "list", "--active", "--json")
    assert json.loads(out) == []


def test_the_readme_region_rule_keeps_eu_users_in_the_demo_fleets_eu(ax_home: Path) -> None:
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rule = re.search(r'\[\[routing\.rules\]\][^\[]*?region = "([^"]+)"', readme)
    assert rule is not None
    (ax_home / "config.toml").write_text(f'[[routing.rules]]\nname = "eu"\nuser = "eu-*"\nregion = "{rule.group(1)}"\n'
                                         "require_region = true\n")
    code, out, err = run("route", "explain", "gpt-4o", "--user", "eu-anna", "--json")
    assert code == 0, err
    chosen = [c["deployment"] for c in json.loads(out)["candidates"] if c["status"] == "chosen"]
    assert chosen == ["azure/gpt-4o"]
