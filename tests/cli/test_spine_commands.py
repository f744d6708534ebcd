"""The spine's commands as a user runs them: ax call, sim load, db, config."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from axtui import locations
from axtui.cli import main

FAST_FLEET = """
[[providers]]
name = "sim"
kind = "sim"
profile = "fast"
models = ["gpt-4o-mini", "gpt-4o"]

[[providers]]
name = "sim2"
kind = "sim"
profile = "fast"
models = ["gpt-4o-mini"]
"""


@pytest.fixture
def fast_fleet(ax_home: Path) -> Path:
    path = locations.config_path()
    path.write_text(FAST_FLEET)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_call_json_prints_the_answer_and_the_record(fast_fleet: Path) -> None:
    code, out, _ = run("call", "What is WAL mode?", "--model", "gpt-4o-mini", "--user", "alice", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["answer"]
    rec = data["record"]
    assert rec["provider"] in ("sim", "sim2") and rec["status"] == "ok" and rec["user"] == "alice"
    assert rec["input_tokens"] > 0 and rec["output_tokens"] > 0 and rec["latency_ms"] >= 0


def test_call_streams_text(fast_fleet: Path) -> None:
    code, out, _ = run("call", "Tell me about Paris", "-m", "gpt-4o", "--stream")
    assert code == 0 and len(out.strip()) > 0


def test_demo_fleet_is_announced_on_stderr(ax_home: Path) -> None:
    code, _, err = run("call", "hi", "--json")
    assert code == 0
    assert "demo fleet" in err and err.count("\n") == 1


def test_unknown_model_exits_2_listing_served_models(fast_fleet: Path) -> None:
    code, _, err = run("call", "hi", "--model", "gpt-9")
    assert code == 2
    assert "gpt-9" in err and "gpt-4o-mini" in err and "Traceback" not in err


def test_broken_config_names_file_line_and_key(ax_home: Path) -> None:
    path = locations.config_path()
    path.write_text('[[providers]]\nname = "x"\nkind = "openai"\ntimeout_s = -3\n')
    code, _, err = run("call", "hi")
    assert code == 2
    assert str(path) in err and "line 4" in err and "timeout_s" in err and "Traceback" not in err


def test_toml_syntax_error_is_one_clear_message(ax_home: Path) -> None:
    path = locations.config_path()
    path.write_text("[cache\nenabled = true\n")
    code, _, err = run("config", "show")
    assert code == 2 and "not valid TOML" in err and "line 1" in err


def test_misspelt_setting_is_named(ax_home: Path) -> None:
    locations.config_path().write_text("[cache]\nenabeld = true\n")
    code, _, err = run("config", "show")
    assert code == 2 and "enabeld" in err and "line 2" in err


def test_config_init_writes_a_valid_example_once(ax_home: Path) -> None:
    assert run("config", "init")[0] == 0
    text = locations.config_path().read_text()
    assert "OPENAI_API_KEY" in text and "ANTHROPIC_API_KEY" in text and "GEMINI_API_KEY" in text
    assert "11434" in text  # Ollama
    code, _, err = run("config", "init")
    assert code == 2 and "--force" in err
    code, out, _ = run("config", "show", "--json")
    assert code == 0
    assert {p["name"] for p in json.loads(out)["providers"]} >= {"openai", "anthropic", "gemini"}


def test_sim_load_count_agrees_with_the_database(fast_fleet: Path) -> None:
    code, out, _ = run("sim", "load", "--rps", "100", "--duration", "1", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["calls"] == 100
    for key in ("ok", "errors", "rate_limited", "cache_hits", "upstream_calls", "p50_ms", "p95_ms", "cost_usd"):
        assert key in data
    code, out, _ = run("db", "path")
    with sqlite3.connect(out.strip()) as conn:
        assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] == 100


def test_db_upgrade_and_backup(ax_home: Path, tmp_path: Path) -> None:
    code, out, _ = run("db", "upgrade")
    assert code == 0 and "database" in out
    code, out, _ = run("db", "upgrade")
    assert "up to date" in out
    code, out, _ = run("db", "backup", str(tmp_path / "b.db"))
    assert code == 0 and (tmp_path / "b.db").exists()


def test_empty_prompt_is_refused(ax_home: Path) -> None:
    code, _, err = run("call", "  ")
    assert code == 2 and "empty" in err
