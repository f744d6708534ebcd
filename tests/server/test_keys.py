"""`ax keys`: keys are shown once, stored hashed, listed and revoked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from axtui import locations
from axtui.cli import main
from axtui.server.keys import create_key, hash_secret, parse_key, verify_key
from axtui.store import Store
from axtui.store.tables_ratelimit import read_limits


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def db_bytes() -> bytes:
    base = locations.db_path()
    return b"".join(p.read_bytes() for p in (base, Path(f"{base}-wal")) if p.exists())


def test_create_prints_the_key_once_and_stores_only_its_hash() -> None:
    code, out, err = run("keys", "create", "--user", "alice", "--name", "laptop")
    assert code == 0, err
    raw = out.strip()
    parsed = parse_key(raw)
    assert parsed is not None
    key_id, secret = parsed
    assert "only time" in err
    data = db_bytes()
    assert raw.encode() not in data and secret.encode() not in data
    assert key_id.encode() in data  # the public id is how a key is found
    code, out, _ = run("keys", "list", "--json")
    (listed,) = json.loads(out)
    assert listed["id"] == key_id and listed["user"] == "alice" and listed["name"] == "laptop"
    assert listed["active"] and listed["prefix"].startswith(f"axk_{key_id}")
    assert raw not in out and secret not in out


def test_revoke_by_id_or_prefix() -> None:
    _, out, _ = run("keys", "create", "--user", "bob", "--json")
    made = json.loads(out)
    store = Store.open()
    assert verify_key(store, made["key"]) is not None
    code, out, _ = run("keys", "revoke", made["prefix"])
    assert code == 0 and made["id"] in out
    info = verify_key(store, made["key"])
    assert info is not None and not info.active
    code, out, _ = run("keys", "list")
    assert "revoked" in out
    code, out, _ = run("keys", "list", "--active", "--json")
    assert json.loads(out) == []
    store.close()


def test_revoke_unknown_key_is_a_usage_error() -> None:
    code, _, err = run("keys", "revoke", "deadbeef0000")
    assert code == 2 and "ax keys list" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--user", "has space"], "user"),
        # The slash writes a trusted key's end user: a key's own user with one would share their cache,
        # limits and budgets (acme's end user alice is acme/alice).
        (["--user", "acme/alice"], "slashes"),
        (["--user", "\x1b[31mred"], "control characters"),  # a name reaches terminals (ax cost breakdown)
        (["--user", "a", "--rpm", "0"], "--rpm"),
        (["--user", "a", "--budget", "-3"], "--budget"),
        (["--user", "a", "--budget", "lots"], "--budget"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(args: list[str], needle: str) -> None:
    code, _, err = run("keys", "create", *args)
    assert code == 2 and needle in err
    _, out, _ = run("keys", "list", "--json")
    assert json.loads(out) == []


def test_budget_becomes_a_hard_monthly_budget_of_the_key() -> None:
    code, out, err = run("keys", "create", "--user", "team", "--budget", "12.50", "--json")
    assert code == 0, err
    made = json.loads(out)
    assert made["budget_usd"] == "12.5"
    from axtui.cost.budgets import list_budgets

    store = Store.open()
    (budget,) = list_budgets(store)
    store.close()
    assert str(budget.scope) == f"key:{made['id']}" and budget.hard and budget.period == "month"
    assert budget.limit_nanos == 12_500_000_000


def test_a_budget_raised_since_survives_a_change_of_the_keys_rate_limit_and_is_listed() -> None:
    made = json.loads(run("keys", "create", "--user", "frank", "--budget", "0.000001", "--json")[1])
    code, out, err = run("cost", "budget", "set", "1", "--scope", f"key:{made['id']}", "--period", "month", "--hard")
    assert code == 0, err
    code, out, err = run("keys", "update", made["id"], "--rpm", "30")
    assert code == 0, err
    assert "budget" not in out  # only the rate limit was applied
    from axtui.cost.budgets import list_budgets

    store = Store.open()
    (budget,) = list_budgets(store)
    store.close()
    assert budget.limit_nanos == 1_000_000_000
    (listed,) = json.loads(run("keys", "list", "--json")[1])
    assert listed["budget_usd"] == "1" and listed["rpm"] == 30
    # A budget given with the key itself is applied again.
    assert run("keys", "update", made["id"], "--budget", "2")[0] == 0
    assert json.loads(run("keys", "list", "--json")[1])[0]["budget_usd"] == "2"


def test_trusted_flag_is_kept() -> None:
    _, out, _ = run("keys", "create", "--user", "app", "--trusted", "--json")
    assert json.loads(out)["trusted"] is True


def test_a_wrong_secret_never_verifies() -> None:
    store = Store.open()
    raw, info = create_key(store, "carol")
    assert verify_key(store, raw) == info
    assert verify_key(store, raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    assert verify_key(store, "axk_" + info.id) is None
    store.close()


@given(st.text(min_size=1, max_size=64), st.text(min_size=1, max_size=64))
def test_salted_hashes_differ_per_salt(secret: str, other: str) -> None:
    salt_a, salt_b = "00" * 16, "11" * 16
    assert hash_secret(salt_a, secret) != hash_secret(salt_b, secret)
    if secret != other:
        assert hash_secret(salt_a, secret) != hash_secret(salt_a, other)


def test_rpm_becomes_a_limit_the_gateway_enforces_on_the_key() -> None:
    import httpx

    from ._live import LiveServer
    from .conftest import fleet_settings

    code, out, err = run("keys", "create", "--user", "dave", "--rpm", "2", "--json")
    assert code == 0, err
    made = json.loads(out)
    assert made["rpm"] == 2 and any("2 requests/minute" in line for line in made["applied"])
    live = LiveServer(fleet_settings()).start()
    try:
        headers = {"Authorization": f"Bearer {made['key']}"}
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        responses = [httpx.post(f"{live.url}/v1/chat/completions", json=body, headers=headers) for _ in range(3)]
    finally:
        live.stop()
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[1].headers["x-ratelimit-remaining-requests"] == "0"
    refused = responses[2]
    assert refused.headers["x-ratelimit-limit"] == "2" and int(refused.headers["retry-after"]) >= 1
    assert made["id"] in refused.json()["error"]["message"]


@pytest.mark.parametrize("command", [
    ["keys", "create", "--user", "q", "--budget", "5", "--rpm", "5"],
    ["teams", "create", "blue", "--budget", "7", "--rpm", "10"],
])
def test_a_config_that_cannot_be_read_changes_nothing(command: list[str]) -> None:
    locations.config_path().parent.mkdir(parents=True, exist_ok=True)
    locations.config_path().write_text('[budgets]\ntimezone = "Mars/Base"\n', encoding="utf-8")
    code, out, err = run(*command)
    assert code == 2 and "Mars/Base" in err and "axk_" not in out
    # Nothing half made: no key whose secret was never shown, no team, no limit left behind.
    locations.config_path().unlink()
    assert json.loads(run("keys", "list", "--json")[1]) == []
    assert json.loads(run("teams", "list", "--json")[1]) == []
    store = Store.open()
    try:
        assert read_limits(store) == []
    finally:
        store.close()
