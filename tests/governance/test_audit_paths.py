"""Every write path lands in the audit trail: the CLI, the admin API and the dashboard; secrets never."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from axtui.cli import main
from axtui.clock import SYSTEM_CLOCK
from axtui.cost.budgets import Scope, set_budget
from axtui.store import Store, audit
from axtui.store.audit import cli_actor, list_audit, scrub

ADMIN = "admin-secret-for-tests-0123456789"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def actions() -> list[tuple[str, str, str, str]]:
    store = Store.open()
    try:
        return [(e.action, e.target, e.actor, e.via) for e in reversed(list_audit(store))]
    finally:
        store.close()


@pytest.mark.parametrize(("commands", "expected"), [
    ([["cost", "budget", "set", "10", "--scope", "user:alice", "--period", "day"],
      ["cost", "budget", "set", "20", "--scope", "user:alice", "--period", "day"],
      ["cost", "budget", "delete", "1"]],
     [("budget.set", "budget:1"), ("budget.set", "budget:1"), ("budget.delete", "budget:1")]),
    ([["ratelimit", "set", "alice", "60/minute", "--tokens", "1000/minute"], ["ratelimit", "delete", "alice"]],
     [("ratelimit.set", "user:alice"), ("ratelimit.remove", "user:alice")]),
    ([["monitor", "alerts", "add", "p95_latency_ms > 2000 for 5m"], ["monitor", "alerts", "remove", "1"]],
     [("alert_rule.add", "alert_rule:1"), ("alert_rule.remove", "alert_rule:1")]),
])
def test_each_cli_write_path_is_audited(commands: list[list[str]], expected: list[tuple[str, str]]) -> None:
    for args in commands:
        code, _, err = run(*args)
        assert code == 0, (args, err)
    got = actions()
    assert [(a, t) for a, t, _, _ in got] == expected
    assert all(actor == cli_actor() and via == "cli" for _, _, actor, via in got)


def test_a_budget_change_keeps_before_and_after() -> None:
    run("cost", "budget", "set", "10", "--scope", "team:red", "--period", "week", "--hard")
    run("cost", "budget", "set", "25", "--scope", "team:red", "--period", "week", "--hard")
    store = Store.open()
    try:
        change = list_audit(store)[0]
    finally:
        store.close()
    assert change.before is not None and change.after is not None
    assert change.before["limit_nanos"] == 10 * 10**9 and change.after["limit_nanos"] == 25 * 10**9
    assert change.after["scope"] == "team:red"


def test_a_price_import_is_audited(tmp_path: Path) -> None:
    file = tmp_path / "prices.json"
    file.write_text(json.dumps({"my-model": {"input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002,
                                             "litellm_provider": "openai", "mode": "chat"}}))
    code, _, err = run("cost", "prices", "import", str(file))
    assert code == 0, err
    store = Store.open()
    try:
        (entry,) = list_audit(store)
    finally:
        store.close()
    assert entry.action == "prices.import" and entry.after is not None and entry.after["changed"] == ["my-model"]


def test_the_dashboards_changes_are_audited_as_the_dashboards() -> None:
    store = Store.open()
    try:
        with audit.acting("someone", "dashboard"):
            set_budget(store, Scope("global"), "month", 10**9, now=SYSTEM_CLOCK.now())
        (entry,) = list_audit(store)
    finally:
        store.close()
    assert (entry.actor, entry.via, entry.action) == ("someone", "dashboard", "budget.set")


def test_secrets_never_reach_the_trail() -> None:
    raw = "axk_0123456789ab_" + "s" * 43
    cleaned = scrub({"salt": "x", "digest": "y", "key": raw, "note": f"made {raw}",
                     "webhook": "https://hooks.example.com/T0/secret-token?sig=1", "nested": [{"secret": "z"}]})
    text = json.dumps(cleaned)
    assert raw not in text and "secret-token" not in text and '"salt"' not in text and '"z"' not in text
    assert cleaned["webhook"] == "https://hooks.example.com/…"
    assert scrub({"redis_url": "redis://:hunter2@cache.internal:6379/0"}) == {"redis_url": "redis://cache.internal:6379/…"}


def test_config_defaults_changed_from_the_cli_are_audited() -> None:
    code, _, err = run("ratelimit", "config", "--user-requests", "60/minute")
    assert code == 0, err
    code, _, err = run("cost", "alerts", "configure", "--at", "50,90")
    assert code == 0, err
    store = Store.open()
    try:
        entries = list(reversed(list_audit(store)))
    finally:
        store.close()
    assert [e.action for e in entries] == ["ratelimit.config", "budget_alerts.configure"]
    assert entries[0].after is not None and entries[0].after["user_requests"] == "60/minute"
    assert entries[1].after == {"thresholds": [50, 90], "webhook": None}


def test_ax_audit_and_the_export() -> None:
    run("teams", "create", "red")
    code, out, err = run("audit", "--json")
    assert code == 0, err
    (entry,) = json.loads(out)
    assert entry["action"] == "team.create" and entry["via"] == "cli"
    code, out, _ = run("audit")
    assert "team.create" in out and "team:red" in out
    code, out, _ = run("audit", "--since", "all")
    assert "team.create" in out
    code, out, err = run("monitor", "export", "--what", "audit", "--format", "csv")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split(",")[:6] == ["ts", "id", "actor", "via", "action", "target"]
    assert "team.create" in lines[1]


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_the_audit_export_gives_before_and_after_as_ax_audit_does(fmt: str) -> None:
    run("teams", "create", "red")
    run("teams", "delete", "red")
    _, out, _ = run("audit", "--json")
    shown = {e["action"]: e for e in json.loads(out)}
    code, out, err = run("monitor", "export", "--what", "audit", "--format", fmt)
    assert code == 0, err
    if fmt == "json":
        rows = json.loads(out)
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in out.splitlines()]
    else:
        import csv
        import io

        rows = [{**r, **{k: json.loads(r[k]) if r[k] else r[k] for k in ("before", "after")}}
                for r in csv.DictReader(io.StringIO(out))]
    exported = {r["action"]: r for r in rows}
    assert set(exported) == set(shown) == {"team.create", "team.delete"}
    none = "" if fmt == "csv" else None  # a CSV cell is empty for none; JSON says null
    made, removed = exported["team.create"], exported["team.delete"]
    assert made["before"] == none and removed["after"] == none
    assert made["after"] == shown["team.create"]["after"] and isinstance(made["after"], dict)
    assert removed["before"] == shown["team.delete"]["before"] and removed["before"]["name"] == "red"


@pytest.fixture
def admin_live(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from tests.server._live import LiveServer
    from tests.server.conftest import fleet_settings

    monkeypatch.setenv("AX_ADMIN_KEY", ADMIN)
    server = LiveServer(fleet_settings()).start()
    yield server.url
    server.stop()


def test_each_api_write_path_is_audited_as_admin(admin_live: str) -> None:
    url, headers = admin_live, {"Authorization": f"Bearer {ADMIN}"}
    steps = [
        ("PUT", "/api/budgets", {"amount": "10", "scope": "team:red", "period": "day"}),
        ("DELETE", "/api/budgets/1", None),
        ("PUT", "/api/ratelimits", {"subject": "team:red", "requests": "60/minute"}),
        ("DELETE", "/api/ratelimits/team:red", None),
        ("POST", "/api/alerts", {"rule": "error_rate > 0.5 for 1m"}),
        ("POST", "/api/alerts/1/silence", {"seconds": 60}),
        ("DELETE", "/api/alerts/1", None),
    ]
    for method, path, body in steps:
        r = httpx.request(method, url + path, json=body, headers=headers)
        assert r.status_code < 300, (method, path, r.text)
    routing = httpx.get(url + "/api/routing", headers=headers).json()
    r = httpx.put(url + "/api/routing", json={"routing": {**routing["routing"], "strategy": "cost"}},
                  headers=headers)
    assert r.status_code == 200, r.text
    got = actions()
    assert [a for a, _, _, _ in got] == ["budget.set", "budget.delete", "ratelimit.set", "ratelimit.remove",
                                         "alert_rule.add", "alert_rule.silence", "alert_rule.remove", "routing.save"]
    assert all(actor == "admin" and via == "api" for _, _, actor, via in got)
    trail = httpx.get(url + "/api/audit", headers=headers).json()
    routing_change = trail[0]
    assert routing_change["before"]["routing"]["strategy"] != "cost"
    assert routing_change["after"]["routing"]["strategy"] == "cost"


def test_a_routing_save_into_a_broken_config_names_the_file_but_not_its_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tomllib

    from tests.server._live import LiveServer
    from tests.server.conftest import fleet_settings

    config = tmp_path / "somewhere" / "gateway.toml"  # AX_CONFIG: outside ax's own folders
    config.parent.mkdir()
    config.write_text("")
    monkeypatch.setenv("AX_CONFIG", str(config))
    monkeypatch.setenv("AX_ADMIN_KEY", ADMIN)
    server = LiveServer(fleet_settings()).start()
    try:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        routing = httpx.get(server.url + "/api/routing", headers=headers).json()
        config.write_text("[routing\n")
        r = httpx.put(server.url + "/api/routing", json={"routing": routing["routing"]}, headers=headers)
        assert r.status_code == 400 and "gateway.toml" in r.text, r.text
        assert str(config.parent) not in r.text, r.text
        with pytest.raises(tomllib.TOMLDecodeError):
            tomllib.loads(config.read_text())  # nothing was written
    finally:
        server.stop()


def test_ax_audit_shows_what_each_change_changed() -> None:
    from axtui.cli.audit import changes_text

    assert changes_text({"models": ["a"], "rpm": 5}, {"models": None, "rpm": 5}) == 'models: ["a"] → null'
    assert changes_text(None, {"name": "red", "models": None, "rpm": 5}) == 'made {"name": "red", "rpm": 5}'
    assert changes_text({"name": "red"}, None) == 'removed {"name": "red"}'
    assert len(changes_text(None, {"x": "y" * 500})) == 160
