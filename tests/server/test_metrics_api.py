"""The metrics and admin API: live snapshot, history, stream, alerts, budgets, limits, Prometheus."""

from __future__ import annotations

import time

import httpx

from axtui.bus import AlertChanged
from axtui.metrics.alerts.model import AlertEvent

from ._live import ADMIN, LiveServer

HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_reads_need_a_key_and_writes_the_admin_key(admin_live: LiveServer, key: str) -> None:
    url = admin_live.url
    assert httpx.get(f"{url}/api/budgets").status_code == 401
    assert httpx.get(f"{url}/api/budgets", headers=_auth(key)).status_code == 200
    assert httpx.get(f"{url}/api/budgets", headers=_auth(ADMIN)).status_code == 200
    body = {"amount": "5", "scope": "user:alice", "period": "day", "hard": True}
    refused = httpx.put(f"{url}/api/budgets", json=body, headers=_auth(key))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_key_required"
    # The admin key manages ax; it is told to call models with a gateway key, not that it is not valid.
    for path, call in (("/v1/chat/completions", HELLO), ("/v1/messages", {**HELLO, "max_tokens": 5})):
        admin_call = httpx.post(f"{url}{path}", json=call, headers=_auth(ADMIN))
        assert admin_call.status_code == 403, admin_call.text
        assert admin_call.json()["error"]["code"] == "gateway_key_required"
        assert "ax keys create" in admin_call.json()["error"]["message"]
    made = httpx.put(f"{url}/api/budgets", json=body, headers=_auth(ADMIN))
    assert made.status_code == 200 and made.json()["created"] is True
    assert made.json()["budget"]["limit_usd"] == "5" and made.json()["budget"]["scope"] == "user:alice"
    listed = httpx.get(f"{url}/api/budgets", headers=_auth(key)).json()
    assert [(b["scope"], b["hard"], b["spent_usd"]) for b in listed] == [("user:alice", True, "0")]
    gone = httpx.delete(f"{url}/api/budgets/{made.json()['budget']['id']}", headers=_auth(ADMIN))
    assert gone.status_code == 200
    assert httpx.delete(f"{url}/api/budgets/999", headers=_auth(ADMIN)).status_code == 404


def test_writes_without_an_admin_key_configured_say_how_to_set_one(live: LiveServer, key: str) -> None:
    r = httpx.post(f"{live.url}/api/alerts", json={"rule": "error_rate > 0.5"}, headers=_auth(key))
    assert r.status_code == 403 and "AX_ADMIN_KEY" in r.json()["error"]["message"]


def test_budget_set_over_http_refuses_the_next_call(admin_live: LiveServer, key: str) -> None:
    body = {"amount": "0.000000001", "scope": "user:alice", "period": "day", "hard": True}
    assert httpx.put(f"{admin_live.url}/api/budgets", json=body, headers=_auth(ADMIN)).status_code == 200
    r = httpx.post(f"{admin_live.url}/v1/chat/completions", json=HELLO, headers=_auth(key))
    assert r.status_code == 402 and r.json()["error"]["code"] == "budget_exceeded"


def test_rate_limit_set_over_http_applies_to_the_keys_user(admin_live: LiveServer, key: str) -> None:
    put = httpx.put(f"{admin_live.url}/api/ratelimits", json={"subject": "user:alice", "requests": "2/minute"},
                    headers=_auth(ADMIN))
    assert put.status_code == 200 and put.json()["requests"] == "2/minute"
    codes = [httpx.post(f"{admin_live.url}/v1/chat/completions", json=HELLO, headers=_auth(key)).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
    limits = httpx.get(f"{admin_live.url}/api/ratelimits", params={"user": "alice"}, headers=_auth(key)).json()
    alice = [lim for lim in limits["limits"] if lim["subject"] == "alice" and lim["unit"] == "requests"]
    assert alice and alice[0]["remaining"] == 0
    assert httpx.post(f"{admin_live.url}/api/ratelimits/user:alice/reset", headers=_auth(key)).status_code == 403
    reset = httpx.post(f"{admin_live.url}/api/ratelimits/user:alice/reset", headers=_auth(ADMIN))
    assert reset.status_code == 200 and reset.json() == {"reset": "user:alice"}
    assert httpx.post(f"{admin_live.url}/v1/chat/completions", json=HELLO, headers=_auth(key)).status_code == 200
    bad = httpx.put(f"{admin_live.url}/api/ratelimits", json={"subject": "alice", "requests": "2/minut"},
                    headers=_auth(ADMIN))
    assert bad.status_code == 400 and "minute" in bad.json()["error"]["message"]


def test_alert_rules_over_http(admin_live: LiveServer, key: str) -> None:
    url = admin_live.url
    made = httpx.post(f"{url}/api/alerts", json={"rule": "error_rate > 0.5 for 1m", "severity": "critical"},
                      headers=_auth(ADMIN))
    assert made.status_code == 201 and made.json()["severity"] == "critical"
    bad = httpx.post(f"{url}/api/alerts", json={"rule": "error_rate >> 0.5"}, headers=_auth(ADMIN))
    assert bad.status_code == 400 and "column" in bad.json()["error"]["message"]
    listed = httpx.get(f"{url}/api/alerts", headers=_auth(key)).json()
    assert [r["rule"] for r in listed["rules"]] == ["error_rate > 0.5 for 1m"]
    assert httpx.get(f"{url}/api/alerts/events", headers=_auth(key)).status_code == 200
    rule = f"{url}/api/alerts/{made.json()['id']}"
    changed = httpx.patch(rule, json={"rule": "error_rate > 0.6 for 1m", "severity": "warning"}, headers=_auth(ADMIN))
    assert changed.status_code == 200
    assert (changed.json()["rule"], changed.json()["severity"]) == ("error_rate > 0.6 for 1m", "warning")
    assert httpx.patch(rule, json={"rule": "error_rate >"}, headers=_auth(ADMIN)).status_code == 400
    # A field the API does not take is refused by name, not dropped while the answer says 200.
    ignored = httpx.patch(rule, json={"enabled": False}, headers=_auth(ADMIN))
    assert ignored.status_code == 400 and "enabled" in ignored.json()["error"]["message"]
    for body in ({"amount": "5", "bogus": 1}, {"amount": "5", "hard": "yes"}, {"amount": "5", "scope": "user:a b"},
                 {"amount": "5", "scope": "user:\u001b[31m"}):
        assert httpx.put(f"{url}/api/budgets", json=body, headers=_auth(ADMIN)).status_code == 400, body
    assert httpx.post(f"{url}/api/ratelimits/%00/reset", headers=_auth(ADMIN)).status_code == 400
    assert httpx.post(f"{rule}/acknowledge", headers=_auth(key)).status_code == 403
    seen = httpx.post(f"{rule}/acknowledge", headers=_auth(ADMIN))
    assert seen.status_code == 200 and seen.json()["acknowledged_at"] is not None
    quiet = httpx.post(f"{rule}/silence", json={"seconds": 600}, headers=_auth(ADMIN)).json()
    assert quiet["silenced_until"] is not None and quiet["silenced_until"] > time.time() + 500
    # Python's JSON reads Infinity and NaN; no setting can hold them.
    for raw in ('{"seconds": Infinity}', '{"seconds": NaN}'):
        forever = httpx.post(f"{rule}/silence", content=raw, headers={**_auth(ADMIN), "Content-Type": "application/json"})
        assert forever.status_code == 400 and "finite" in forever.json()["error"]["message"], forever.text
    loud = httpx.post(f"{rule}/silence", json={"seconds": None}, headers=_auth(ADMIN)).json()
    assert loud["silenced_until"] is None
    assert httpx.post(f"{url}/api/alerts/999/acknowledge", headers=_auth(ADMIN)).status_code == 404
    assert httpx.delete(f"{url}/api/alerts/{made.json()['id']}", headers=_auth(ADMIN)).status_code == 200
    assert httpx.delete(f"{url}/api/alerts/{made.json()['id']}", headers=_auth(ADMIN)).status_code == 404


def test_realtime_history_and_prometheus_count_served_calls(live: LiveServer, key: str) -> None:
    for i in range(3):
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {i}"}]}
        assert httpx.post(f"{live.url}/v1/chat/completions", json=body, headers=_auth(key)).status_code == 200
    snap = httpx.get(f"{live.url}/api/metrics/realtime", headers=_auth(key)).json()
    assert snap["totals"]["requests"] == 3 and snap["totals"]["ok"] == 3
    # A key's own view: its user's calls, not the fleet's per-provider traffic (the admin's view has that).
    assert snap["view"] == "user:alice" and snap["providers"] == [] and len(snap["recent"]) == 3
    assert live.gateway.recorder is not None
    live.gateway.recorder.flush()
    hist = httpx.get(f"{live.url}/api/metrics/history", params={"range": "1h", "by": "user"},
                     headers=_auth(key))
    assert hist.status_code == 200
    assert sum(p["calls"] for p in hist.json()["points"]) == 3
    # Per provider covers every tenant's calls: the admin's to read.
    assert httpx.get(f"{live.url}/api/metrics/history", params={"by": "provider"},
                     headers=_auth(key)).status_code == 403
    bad = httpx.get(f"{live.url}/api/metrics/history", params={"range": "yesterday-ish"}, headers=_auth(key))
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "range"
    prom = httpx.get(f"{live.url}/metrics")
    assert prom.status_code == 200 and prom.headers["content-type"].startswith("text/plain")
    served = [line for line in prom.text.splitlines()
              if line.startswith("ax_requests_total{") and 'model="gpt-4o-mini"' in line and 'status="ok"' in line]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in served) == 3
    # The response cache's own figures: the three answers are held, and its semantic worker never failed.
    figures = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in prom.text.splitlines()
               if line.startswith("ax_cache_")}
    assert figures['ax_cache_entries{tier="memory"}'] == 3
    assert figures["ax_cache_worker_restarts_total"] == 0 and figures["ax_cache_dropped_writes_total"] == 0


def test_stream_sends_snapshots_and_alert_events(live: LiveServer, key: str) -> None:
    events: list[str] = []
    with httpx.stream("GET", f"{live.url}/api/metrics/stream", params={"interval": 0.2},
                      headers=_auth(key), timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event:"):
                events.append(line.split(":", 1)[1].strip())
                if len(events) == 1:
                    event = AlertEvent(id=1, ts=0.0, rule_id=1, rule_name="test", rule="errors > 0",
                                       severity="warning", kind="firing", value=1.0, threshold="0", labels={},
                                       message="firing")
                    live.loop.call_soon_threadsafe(live.gateway.bus.publish, AlertChanged(event))
            if "alert" in events and len(events) >= 3:
                break
    assert events[0] == "snapshot" and "alert" in events


def test_health_and_readiness(live: LiveServer) -> None:
    assert httpx.get(f"{live.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{live.url}/readyz").json()
    assert ready["status"] == "ready" and ready["checks"]["store"] == "ok"


def test_export_streams_every_call_to_the_admin_only(admin_live: LiveServer, key: str) -> None:
    import csv
    import io
    import json

    url = admin_live.url
    for i in range(5):
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {i}"}]}
        assert httpx.post(f"{url}/v1/chat/completions", json=body, headers=_auth(key)).status_code == 200
    admin_live.gateway.recorder.flush()  # type: ignore[union-attr]
    assert httpx.get(f"{url}/api/export", headers=_auth(key)).status_code == 403
    got = httpx.get(f"{url}/api/export", params={"what": "calls", "since": "1h"}, headers=_auth(ADMIN))
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert 'filename="ax-calls.csv"' in got.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert len(rows) == 5 and {r["user"] for r in rows} == {"alice"} and all(r["status"] == "ok" for r in rows)
    lines = httpx.get(f"{url}/api/export", params={"format": "jsonl"}, headers=_auth(ADMIN)).text.splitlines()
    assert [json.loads(line)["requested_model"] for line in lines] == ["gpt-4o-mini"] * 5
    budgets = httpx.get(f"{url}/api/export", params={"what": "budgets", "format": "json"}, headers=_auth(ADMIN))
    assert budgets.json() == []
    bad = httpx.get(f"{url}/api/export", params={"since": "1h", "until": "2h"}, headers=_auth(ADMIN))
    assert bad.status_code == 400 and "before" in bad.json()["error"]["message"]
    assert httpx.get(f"{url}/api/export", params={"since": "soon"}, headers=_auth(ADMIN)).status_code == 400
