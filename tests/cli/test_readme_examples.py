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
