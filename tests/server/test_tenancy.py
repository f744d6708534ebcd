"""Tenants are apart: a plain key reads its own user's and key's data under /api, the admin key all."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from axtui.server.keys import create_key
from axtui.store import Store

from ._live import ADMIN, LiveServer
from .conftest import fleet_settings

WEBHOOK = "https://hooks.example.com/services/T0KEN-SECRET-42?sig=abc"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _chat(url: str, token: str, text: str, **extra: Any) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=_auth(token))


def _until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_plain_key_reads_only_its_own_calls_and_spend(admin_live: LiveServer, store: Store) -> None:
    url = admin_live.url
    alice, _ = create_key(store, "alice")
    carol, carol_info = create_key(store, "carol")
    secret_prompt = _chat(url, alice, "alice's private question")
    assert secret_prompt.status_code == 200
    alice_call = secret_prompt.headers["x-ax-request-id"]
    assert _chat(url, carol, "carol asks").status_code == 200

    # The live snapshot: carol sees her calls and none of alice's.
    mine = httpx.get(f"{url}/api/metrics/realtime", headers=_auth(carol)).json()
    assert mine["view"] == "user:carol"
    assert {c["user"] for c in mine["recent"]} == {"carol"}
    assert alice_call not in str(mine)
    assert [u["key"] for u in mine["users"]] == ["carol"]
    assert mine["providers"] == [] and mine["models"] == [] and mine["deployments"] == []
    assert mine["totals"]["requests"] == 1
    everything = httpx.get(f"{url}/api/metrics/realtime", headers=_auth(ADMIN)).json()
    assert everything["view"] == "all" and {c["user"] for c in everything["recent"]} == {"alice", "carol"}
    assert everything["totals"]["requests"] == 2

    # History from the rollups: carol's own, and a 403 for alice's.
    def both_recorded() -> bool:
        rows = httpx.get(f"{url}/api/metrics/history", params={"by": "user"}, headers=_auth(ADMIN)).json()
        return {"alice", "carol"} <= set(rows["keys"])

    _until(both_recorded, "both users' calls in the rollups")
    for by in ("user", "key"):
        hers = httpx.get(f"{url}/api/metrics/history", params={"by": by}, headers=_auth(carol))
        assert hers.status_code == 200
        assert "alice" not in hers.text
    assert carol_info.id in httpx.get(f"{url}/api/metrics/history", params={"by": "key"},
                                      headers=_auth(carol)).text
    refused = httpx.get(f"{url}/api/metrics/history", params={"user": "alice"}, headers=_auth(carol))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_your_data"


def test_budgets_limits_alerts_and_routing_show_a_key_what_applies_to_it(admin_live: LiveServer,
                                                                         store: Store) -> None:
    url = admin_live.url
    carol, carol_info = create_key(store, "carol")
    admin = _auth(ADMIN)
    for scope in ("user:alice", "user:carol", "global", f"key:{carol_info.id}"):
        r = httpx.put(f"{url}/api/budgets", json={"amount": "5", "scope": scope}, headers=admin)
        assert r.status_code == 200, r.text
    assert httpx.put(f"{url}/api/ratelimits", json={"subject": "user:alice", "requests": "9/minute"},
                     headers=admin).status_code == 200
    assert httpx.put(f"{url}/api/ratelimits", json={"subject": "user:carol", "requests": "7/minute"},
                     headers=admin).status_code == 200
    rule = httpx.post(f"{url}/api/alerts", json={"rule": "error_rate > 0.5", "webhook": WEBHOOK}, headers=admin)
    assert rule.status_code == 201, rule.text

    budgets = httpx.get(f"{url}/api/budgets", headers=_auth(carol)).json()
    assert sorted(b["scope"] for b in budgets) == sorted(["user:carol", "global", f"key:{carol_info.id}"])
    assert len(httpx.get(f"{url}/api/budgets", headers=admin).json()) == 4

    limits = httpx.get(f"{url}/api/ratelimits", headers=_auth(carol))
    assert limits.status_code == 200 and "alice" not in limits.text
    assert [s["subject"] for s in limits.json()["stored"]] == ["carol"]
    assert any(lim["subject"] == "carol" for lim in limits.json()["limits"])
    assert httpx.get(f"{url}/api/ratelimits", params={"user": "alice"}, headers=_auth(carol)).status_code == 403
    assert "alice" in httpx.get(f"{url}/api/ratelimits", headers=admin).text

    alerts = httpx.get(f"{url}/api/alerts", headers=_auth(carol))
    assert alerts.status_code == 200 and "T0KEN" not in alerts.text and "services" not in alerts.text
    assert alerts.json()["rules"][0]["webhook"] == "hooks.example.com"
    assert httpx.get(f"{url}/api/alerts", headers=admin).json()["rules"][0]["webhook"] == WEBHOOK

    routing = httpx.get(f"{url}/api/routing", headers=_auth(carol)).json()
    assert routing["config_path"] is None
    assert httpx.get(f"{url}/api/routing", headers=admin).json()["config_path"]
    explain = f"{url}/api/routing/explain"
    assert httpx.get(explain, params={"model": "gpt-4o-mini", "user": "alice"}, headers=_auth(carol)).status_code == 403
    assert httpx.get(explain, params={"model": "gpt-4o-mini", "user": "carol"}, headers=_auth(carol)).status_code == 200

    # Every read a plain key may make: no webhook secret, nothing of alice's, no server path.
    from axtui import locations

    for path in ("/api/alerts", "/api/alerts/events", "/api/budgets", "/api/ratelimits", "/api/routing",
                 "/api/metrics/realtime", "/api/metrics/history", "/v1/models"):
        answer = httpx.get(url + path, headers=_auth(carol))
        assert answer.status_code == 200, (path, answer.text)
        for secret in ("T0KEN", "alice", str(locations.config_dir()), str(locations.data_dir())):
            assert secret not in answer.text, (path, secret)


def test_the_metrics_stream_shows_a_key_its_own_view_and_caps_its_connections(
    monkeypatch: pytest.MonkeyPatch, store: Store
) -> None:
    monkeypatch.setenv("AX_ADMIN_KEY", ADMIN)
    server = LiveServer(fleet_settings(max_streams_per_key=2)).start()
    try:
        url = server.url
        alice, _ = create_key(store, "alice")
        carol, _ = create_key(store, "carol")
        assert _chat(url, alice, "alice's question").status_code == 200
        with httpx.Client(timeout=10) as client:
            streams = [client.stream("GET", f"{url}/api/metrics/stream", params={"interval": 0.2},
                                     headers=_auth(carol)) for _ in range(3)]
            first = streams[0].__enter__()
            second = streams[1].__enter__()
            assert first.status_code == 200 and second.status_code == 200
            lines = first.iter_lines()
            data = next(line for line in lines if line.startswith("data: "))
            assert '"view":"user:carol"' in data and "alice" not in data
            third = streams[2].__enter__()
            third.read()
            assert third.status_code == 429 and third.json()["error"]["code"] == "too_many_streams"
            streams[2].__exit__(None, None, None)
            # Another key has slots of its own; closing one gives carol's back.
            with client.stream("GET", f"{url}/api/metrics/stream", headers=_auth(alice)) as other:
                assert other.status_code == 200
            streams[0].__exit__(None, None, None)
            _until(lambda: server.app.state.streams.get("key:" + carol.split("_")[1], 0) < 2, "the slot back")
            with client.stream("GET", f"{url}/api/metrics/stream", headers=_auth(carol)) as again:
                assert again.status_code == 200
            streams[1].__exit__(None, None, None)
    finally:
        server.stop()


def test_stream_events_about_other_tenants_are_not_sent() -> None:
    from axtui.cost.alerts import BudgetAlert
    from axtui.server.auth import Viewer
    from axtui.server.metrics_api import event_for

    carol = Viewer(admin=False, user="carol", key="k_carol")

    def budget(scope: str) -> BudgetAlert:
        return BudgetAlert(1, 1, scope, "day", 0, 80, 8, 10, 0.0, "80% used", delivery="failed")

    assert event_for(carol, "budget", budget("user:alice")) is None
    assert event_for(carol, "budget", budget("key:k_alice")) is None
    mine = event_for(carol, "budget", budget("user:carol"))
    assert mine is not None and "delivery" not in mine and mine["scope"] == "user:carol"
    assert event_for(carol, "budget", budget("global")) is not None
    assert event_for(Viewer(admin=True), "budget", budget("user:alice"))["delivery"] == "failed"  # type: ignore[index]

    from axtui.metrics.alerts.model import AlertEvent

    def alert(labels: dict[str, str]) -> AlertEvent:
        return AlertEvent(1, 0.0, 1, "r", "error_rate > 0", "warning", "firing", 1.0, "0", labels, "fired")

    assert event_for(carol, "alert", alert({"user": "alice"})) is None
    assert event_for(carol, "alert", alert({"key": "k_alice"})) is None
    assert event_for(carol, "alert", alert({"user": "carol/bob", "model": "m"})) is not None  # her end user's
    assert event_for(carol, "alert", alert({})) is not None


def test_an_alert_about_another_user_is_not_shown_to_a_key(monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    monkeypatch.setenv("AX_ADMIN_KEY", ADMIN)
    data = fleet_settings().model_dump()
    data["alerts"] = {"interval_s": 0.2}
    from axtui.config import Settings

    server = LiveServer(Settings.model_validate(data)).start()
    try:
        url, admin = server.url, _auth(ADMIN)
        alice, _ = create_key(store, "alice")
        carol, _ = create_key(store, "carol")
        for rule in ("error_rate >= 0 where user=alice", "error_rate > 0.5"):
            assert httpx.post(f"{url}/api/alerts", json={"rule": rule}, headers=admin).status_code == 201
        assert _chat(url, alice, "alice asks").status_code == 200
        _until(lambda: "alice" in httpx.get(f"{url}/api/alerts/events", headers=admin).text, "alice's alert")
        _until(lambda: any(a["rule"].endswith("user=alice") for a in httpx.get(
            f"{url}/api/alerts", headers=admin).json()["active"]), "alice's alert active")
        # alice reads her rule, its state and its events; carol reads only the rule that watches everyone.
        assert "user=alice" in httpx.get(f"{url}/api/alerts", headers=_auth(alice)).text
        assert "user=alice" in httpx.get(f"{url}/api/alerts/events", headers=_auth(alice)).text
        for path in ("/api/alerts", "/api/alerts/events", "/api/metrics/realtime"):
            answer = httpx.get(url + path, headers=_auth(carol))
            assert answer.status_code == 200 and "alice" not in answer.text, (path, answer.text)
        assert [r["rule"] for r in httpx.get(f"{url}/api/alerts", headers=_auth(carol)).json()["rules"]] == [
            "error_rate > 0.5"]
    finally:
        server.stop()
