"""``ax ratelimit`` as a user runs it, and limits holding across ``ax call`` processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from axtui.cli import main


def ax(*args: str) -> tuple[int, str]:
    """Run ``ax ARGS``; the output with rich's line wrapping undone."""
    result = CliRunner().invoke(main, list(args))
    text = result.output
    return result.exit_code, text if text.lstrip().startswith(("{", "[")) else " ".join(text.split())


def test_set_then_status_shows_the_limit_and_its_use() -> None:
    code, out = ax("ratelimit", "set", "alice", "60/minute", "--tokens", "100000/minute")
    assert code == 0, out
    assert "user:alice: 60/minute requests" in out and "100000/minute tokens" in out
    code, out = ax("ratelimit", "status", "--user", "alice", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["backend"] == "store"
    rows = {(r["label"], r["unit"]): r for r in data["limits"]}
    assert rows[("user:alice", "requests")]["remaining"] == 60
    assert rows[("user:alice", "tokens")]["limit"] == "100000/minute"
    assert rows[("user:alice", "requests")]["source"] == "stored"


def test_status_without_any_limit_says_how_to_set_one() -> None:
    code, out = ax("ratelimit", "status")
    assert code == 0 and "ax ratelimit set alice 60/minute" in out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["alice", "60/minut"], "unknown period 'minut'"),
        (["alice", "0/minute"], "at least 1"),
        (["alice", "-3/minute"], "at least 1"),
        (["org:eng", "5/minute"], "unknown scope 'org'"),
        (["alice", "5/minute", "--algorithm", "sliding-window", "--burst", "3"], "--burst applies to token-bucket"),
        (["alice", "5/minute", "--tokens", "lots"], "--tokens: invalid limit 'lots'"),
    ],
)
def test_bad_input_is_refused_with_the_valid_forms_and_nothing_is_written(args: list[str], says: str) -> None:
    code, out = ax("ratelimit", "set", *args)
    assert code == 2
    assert says in out
    assert "Traceback" not in out
    code, out = ax("ratelimit", "status", "--json")
    assert json.loads(out)["limits"] == []


def test_an_unknown_scope_option_lists_the_valid_ones() -> None:
    code, out = ax("ratelimit", "set", "alice", "5/minute", "--scope", "team")
    assert code == 2 and "'user', 'key', 'provider', 'global'" in out


def test_reset_gives_the_quota_back_and_delete_restores_the_default() -> None:
    assert ax("ratelimit", "config", "--user-requests", "100/minute")[0] == 0
    assert ax("ratelimit", "set", "provider:openai", "3/hour")[0] == 0
    code, out = ax("ratelimit", "reset", "provider:openai")
    assert code == 0 and "provider:openai: usage reset" in out
    code, out = ax("ratelimit", "delete", "provider:openai")
    assert code == 0 and "limit removed" in out
    code, out = ax("ratelimit", "delete", "provider:openai")
    assert code == 0 and "had no limit of its own" in out


def test_config_shows_and_edits_the_defaults() -> None:
    code, out = ax("ratelimit", "config", "--user-requests", "60/minute", "--provider-requests", "openai=500/minute",
                   "--algorithm", "sliding-window")
    assert code == 0, out
    assert "Saved to" in out and "60/minute" in out and "provider openai: requests 500/minute" in out
    code, out = ax("ratelimit", "config", "--json")
    data = json.loads(out)
    assert data["defaults"]["user_requests"] == "60/minute"
    assert data["algorithm"] == "sliding-window" and data["backend"] == "store"
    assert data["provider_requests"] == {"openai": "500/minute"}
    # "unlimited" removes a default.
    assert ax("ratelimit", "config", "--provider-requests", "openai=unlimited")[0] == 0
    assert json.loads(ax("ratelimit", "config", "--json")[1])["provider_requests"] == {}


def test_config_refuses_a_bad_value_and_saves_nothing() -> None:
    from axtui import locations

    assert ax("ratelimit", "config", "--user-requests", "60/minute")[0] == 0
    before = locations.config_path().read_text()
    code, out = ax("ratelimit", "config", "--user-tokens", "100/minut", "--key-requests", "5/minute")
    assert code == 2 and "unknown period 'minut'" in out and "nothing was saved" in out
    code, out = ax("ratelimit", "config", "--backend", "redis")
    assert code == 2 and "needs a Redis URL" in out
    code, out = ax("ratelimit", "config", "--provider-requests", "openai")
    assert code == 2 and "NAME=LIMIT" in out
    after = json.loads(ax("ratelimit", "config", "--json")[1])
    assert after["defaults"]["key_requests"] is None and after["backend"] == "store"
    assert locations.config_path().read_text() == before


FAST_FLEET = """
[[providers]]
name = "openai"
kind = "sim"
profile = "fast"
models = ["gpt-4o-mini"]
"""


def ax_call(user: str, prompt: str) -> subprocess.CompletedProcess[str]:
    """One ``ax call`` in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "axtui", "call", "--user", user, "--model", "gpt-4o-mini", prompt],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.processes
def test_five_of_seven_ax_call_processes_are_served_and_two_are_told_to_wait() -> None:
    from axtui import locations

    config = locations.config_path()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(FAST_FLEET, encoding="utf-8")
    started = time.monotonic()
    warmup = ax_call("someone-else", "warm up")
    assert warmup.returncode == 0, warmup.stderr
    # Seven processes must fit in the limit's window for "five of seven" to
    # hold; a machine too busy for that gets the same test over an hour.
    window = "minute" if (time.monotonic() - started) * 7 < 45 else "hour"
    code, out = ax("ratelimit", "set", "alice", f"5/{window}", "--algorithm", "sliding-window")
    assert code == 0, out
    runs = [ax_call("alice", f"question {i}") for i in range(7)]
    assert [p.returncode for p in runs] == [0] * 5 + [3] * 2, [p.stderr[-300:] for p in runs]
    for p in runs[5:]:
        message = " ".join(p.stderr.split())
        assert "rate limit reached for user:alice" in message and "retry in" in message
