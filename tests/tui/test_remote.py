"""``--url``: the dashboard over a live ``ax serve`` on 127.0.0.1 (its metrics API and event stream)."""

from __future__ import annotations

import asyncio
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from axtui.cost.budgets import list_budgets
from axtui.errors import InvalidRequest
from axtui.metrics.alerts.storage import list_rules
from axtui.tui.app import AxApp
from axtui.tui.data_remote import RemoteBackend, parse_sse
from axtui.tui.screens.costs import CostsScreen
from axtui.types import Caller, ChatRequest
from tests.server._live import LiveServer, fast_fleet

from .helpers import settle, until


@pytest.fixture
def server() -> Iterator[LiveServer]:
    live = LiveServer(fast_fleet(), no_auth=True).start()
    yield live
    live.stop()


def _traffic(server: LiveServer, n: int = 20) -> None:
    async def calls() -> None:
        for i in range(n):
            request = ChatRequest.model_validate(
                {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {i}?"}]})
            await server.gateway.call(request, Caller(user=f"user-{i % 3}"))

    asyncio.run_coroutine_threadsafe(calls(), server.loop).result(60)
    server.gateway.recorder.flush()  # type: ignore[union-attr]


def test_server_sent_events_are_parsed() -> None:
    assert parse_sse(["event: snapshot", "data: {\"a\": 1}"]) == ("snapshot", "{\"a\": 1}")
    assert parse_sse(["retry: 2000"]) is None
    assert parse_sse([": keep-alive"]) is None


def test_a_url_that_is_not_http_is_refused() -> None:
    from axtui.config import Settings

    with pytest.raises(InvalidRequest, match="not an http"):
        RemoteBackend("127.0.0.1:8787", Settings())


def test_live_numbers_costs_budgets_limits_alerts_and_exports_over_http(server: LiveServer, tmp_path: Path) -> None:
    _traffic(server)
    backend = RemoteBackend(server.url, server.gateway.settings)
    backend.start()
    try:
        view = backend.live(300)
        assert view.snapshot.totals.requests >= 20 or view.snapshot.lifetime.requests >= 20
        deadline = time.monotonic() + 10
        while backend._stream.snapshot is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert backend._stream.connected and backend._stream.snapshot is not None

        costs = backend.costs("1h", "provider")
        assert costs.summary.totals.calls == 20
        assert sum(r.totals.cost_nanos for r in costs.breakdown.rows) == costs.summary.totals.cost_nanos > 0

        backend.add_budget("user:user-1", "day", "3", False)
        budgets = backend.budgets().budgets
        mine = next(b for b in budgets if str(b.budget.scope) == "user:user-1")
        backend.set_budget_amount(mine.budget.id, "4.5")
        backend.toggle_hard(mine.budget.id)
        stored = next(b for b in list_budgets(server.gateway.store) if b.id == mine.budget.id)  # type: ignore[arg-type]
        assert stored.limit_nanos == 4_500_000_000 and stored.hard
        with pytest.raises(InvalidRequest, match="more than zero"):
            backend.set_budget_amount(mine.budget.id, "-1")

        backend.set_limit("user:user-2", "10/minute", None)
        assert any(x.label == "user:user-2" and x.limit == "10/minute" for x in backend.budgets().limits)

        backend.reset_limit("user:user-2")

        rule = backend.add_rule("rps > 1000", "very busy", "info")
        assert rule.rule == "rps > 1000"
        assert [r.name for r in backend.alerts().rules] == ["very busy"]
        with pytest.raises(InvalidRequest, match="column"):
            backend.add_rule("rps >> 1000", None, "info")
        changed = backend.update_rule(rule.id, "rps > 2000", "busier", "critical")
        assert (changed.rule, changed.name, changed.severity) == ("rps > 2000", "busier", "critical")
        assert backend.acknowledge_rule(rule.id).acknowledged_at is not None
        assert backend.silence_rule(rule.id, 600).silenced_until is not None
        assert backend.silence_rule(rule.id, None).silenced_until is None
        (stored_rule,) = list_rules(server.gateway.store)  # type: ignore[arg-type]
        assert stored_rule.rule == "rps > 2000" and stored_rule.acknowledged_at is not None
        backend.remove_rule(rule.id)
        assert list_rules(server.gateway.store) == []  # type: ignore[arg-type]
        view = backend.routing()
        assert view.models and view.health and {h.deployment for h in view.health} >= {"openai/gpt-4o-mini"}
        assert view.config_path.name == "config.toml"
        why = backend.explain("gpt-4o-mini", "alice", 500)
        assert why.chosen is not None and why.chosen.health.deployment == why.chosen.deployment
        with pytest.raises(InvalidRequest, match=r"no-such-model.*gpt-4o-mini"):
            backend.explain("no-such-model", "alice", None)
        staged = backend.settings.routing.model_copy(update={"strategy": "cost"})
        assert backend.save_routing(staged, {"openai/gpt-4o-mini": 2.0}) == view.config_path
        assert server.gateway.router.default_strategy == "cost"  # applied by the server at once
        assert server.gateway.catalog.get("openai/gpt-4o-mini").weight == 2.0
        assert 'strategy = "cost"' in view.config_path.read_text(encoding="utf-8")
        assert backend.routing().strategy == "cost"
        with pytest.raises(InvalidRequest, match="nowhere"):
            backend.save_routing(staged, {"nowhere/model-1": 2.0})

        for fmt in ("csv", "json", "jsonl"):
            target = tmp_path / "exports" / f"calls.{fmt}"
            result = backend.export("calls", fmt, target, time.time() - 3600, None)
            assert result.rows == 20 and result.path == target and target.exists()
            assert stat.S_IMODE(target.stat().st_mode) == 0o600  # calls and users: the owner's only
        assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
        assert backend.export("budgets", "csv", tmp_path / "b.csv", None, None).rows == 1
        with pytest.raises(InvalidRequest, match="before"):
            backend.export("calls", "csv", tmp_path / "x.csv", time.time(), time.time() - 60)
        assert not (tmp_path / "x.csv").exists()
    finally:
        backend.close()


async def test_the_dashboard_over_a_url_shows_costs(server: LiveServer) -> None:
    await asyncio.to_thread(_traffic, server)
    app = AxApp(RemoteBackend(server.url, server.gateway.settings), blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.problem is None
        assert "127.0.0.1" in app.backend.label
        await pilot.press("2")
        await settle(pilot)
        assert isinstance(app.screen, CostsScreen)
        await until(lambda: app.screen.query_one("#breakdown").row_count >= 1, pilot=pilot)
        await pilot.press("5")  # routing: the server's deployments and their live health
        await until(lambda: app.screen.query_one("#health").row_count >= 5, pilot=pilot)
        assert app.problem is None


def test_a_plain_key_sees_its_own_view_and_the_header_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from axtui.server.keys import create_key

    live = LiveServer(fast_fleet()).start()
    try:
        assert live.gateway.store is not None
        raw, _ = create_key(live.gateway.store, "user-1")
        _traffic(live, 9)
        monkeypatch.delenv("AX_ADMIN_KEY", raising=False)
        monkeypatch.setenv("AX_API_KEY", raw)
        backend = RemoteBackend(live.url, live.gateway.settings, stream=False)
        backend.start()
        try:
            assert backend.view == "user:user-1" and "own view (user:user-1)" in backend.label
            snap = backend.live(300).snapshot
            assert {c.user for c in snap.recent} == {"user-1"} and snap.totals.requests == 3
            costs = backend.costs("1h", "provider")  # no per-provider rows for a tenant, and no error
            assert costs.summary.totals.calls == 3 and costs.breakdown.rows == ()
            assert backend.routing().config_path.name  # no path is sent; the view still builds
        finally:
            backend.close()
    finally:
        live.stop()


def test_stream_events_become_the_same_types_the_local_backend_emits() -> None:
    import json
    from dataclasses import asdict

    from axtui.config import Settings
    from axtui.cost.alerts import BudgetAlert
    from axtui.metrics.alerts.model import AlertEvent

    backend = RemoteBackend("http://127.0.0.1:9", Settings())
    got: list[object] = []
    backend.on_alert(got.append)
    alert = AlertEvent(id=7, ts=1.0, rule_id=2, rule_name="slow", rule="p95_latency_ms > 2000", severity="warning",
                       kind="firing", value=2500.0, threshold="2000", labels={"provider": "openai"},
                       message="firing: slow")
    budget = BudgetAlert(event_id=3, budget_id=1, scope="global", period="day", period_start=0, threshold=100,
                         spent_nanos=10, limit_nanos=10, ts=2.0, message="budget #1 at 100%")
    backend._on_event("alert", json.dumps(alert.to_json()))
    backend._on_event("budget", json.dumps(asdict(budget)))
    backend.close()
    assert got == [alert, budget]


def test_remote_budgets_are_the_cost_subsystems_own_types(server: LiveServer) -> None:
    from axtui.cost.budgets import BudgetStatus
    from axtui.ratelimit.limiter import LimitStatus
    from axtui.tui.screens.budgets import budget_cells, limit_cells
    from axtui.tui.widgets.palette import Palette

    backend = RemoteBackend(server.url, server.gateway.settings, stream=False)
    backend.start()
    try:
        backend.add_budget("global", "day", "25", True)
        backend.set_limit("user:user-2", "10/minute", None)
        view = backend.budgets()
        assert all(isinstance(b, BudgetStatus) for b in view.budgets)
        assert all(isinstance(x, LimitStatus) for x in view.limits) and view.limits
        palette = Palette(ok="green", warn="yellow", bad="red", muted="grey50", accent="cyan", primary="blue")
        (status,) = view.budgets
        assert budget_cells(status, time.time(), palette)[6].plain == "hard"
        assert status.remaining_nanos == 25_000_000_000
        assert any(limit_cells(x, palette)[0].plain == "user:user-2" for x in view.limits)
    finally:
        backend.close()


def test_remote_keys_and_teams_are_listed_revoked_and_rotated_through_the_admin_api(server: LiveServer) -> None:
    from axtui.governance.teams import add_user, create_team
    from axtui.server import key_admin
    from axtui.server.keys import find_key, verify_key
    from axtui.tui.screens.keys import key_status

    store = server.gateway.store
    create_team(store, "red", budget_nanos=40_000_000_000, rpm=600, actor="test", via="cli")
    add_user(store, "red", "user-1", actor="test", via="cli")
    _, laptop, _ = key_admin.create(store, "user-1", {"name": "laptop", "models": "gpt-4o*", "budget": "10"},
                                    actor="test", via="cli")
    old_secret, ci, _ = key_admin.create(store, "user-2", {"name": "ci", "rpm": 60}, actor="test", via="cli")
    backend = RemoteBackend(server.url, server.gateway.settings, stream=False)
    backend.start()
    try:
        view = backend.keys()
        got = {k.id: k for k in view.keys}
        assert got[laptop.id].models == ("gpt-4o*",) and got[laptop.id].team == "red"
        assert got[laptop.id].budget_nanos == 10_000_000_000 and got[ci.id].rpm == 60
        assert view.key_standing[laptop.id].budget_used == 0.0
        (team,) = view.teams
        assert team.name == "red" and team.members == ("user-1",) and team.budget_nanos == 40_000_000_000
        assert view.team_standing["red"].budget_used == 0.0

        secret, rotated = backend.rotate_key(ci.id, "1h")
        assert rotated.id == ci.id and rotated.prev_until is not None
        assert verify_key(store, secret) is not None
        within = verify_key(store, old_secret)
        assert within is not None and within.grace_until == rotated.prev_until

        revoked = backend.revoke_key(laptop.id)
        assert key_status(revoked, time.time()) == "revoked"
        assert not find_key(store, laptop.id).active  # type: ignore[union-attr]
        with pytest.raises(InvalidRequest):
            backend.rotate_key(laptop.id, None)  # a revoked key cannot be rotated
    finally:
        backend.close()
