"""`/api/keys`, `/api/teams` and `/api/audit`: the admin key only, secrets shown once, every change audited."""

from __future__ import annotations

import httpx

from axtui.server.keys import create_key
from axtui.store import Store

from ._live import ADMIN, LiveServer

_CHAT = {"messages": [{"role": "user", "content": "hello"}]}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_keys_and_teams_over_the_api(admin_live: LiveServer) -> None:
    url, admin = admin_live.url, _auth(ADMIN)
    r = httpx.post(f"{url}/api/teams", json={"name": "red", "budget": "50", "period": "month", "hard": True,
                                             "models": "gpt-4o*"}, headers=admin)
    assert r.status_code == 201, r.text
    r = httpx.post(f"{url}/api/keys", json={"user": "alice", "team": "red", "models": "gpt-4o-mini", "rpm": 100,
                                            "tags": "app"}, headers=admin)
    assert r.status_code == 201, r.text
    made = r.json()
    secret, key_id = made["key"], made["id"]
    assert made["models"] == ["gpt-4o-mini"] and made["team"] == "red"
    # The secret is never shown again.
    listed = httpx.get(f"{url}/api/keys", headers=admin)
    assert listed.status_code == 200 and secret not in listed.text and key_id in listed.text
    ok = httpx.post(f"{url}/v1/chat/completions", json={"model": "gpt-4o-mini", **_CHAT}, headers=_auth(secret))
    assert ok.status_code == 200, ok.text
    barred = httpx.post(f"{url}/v1/chat/completions", json={"model": "gpt-4o", **_CHAT}, headers=_auth(secret))
    assert barred.status_code == 403 and barred.json()["error"]["code"] == "model_not_allowed"
    # Widen the key's list: the team's still holds.
    r = httpx.patch(f"{url}/api/keys/{key_id}", json={"models": ""}, headers=admin)
    assert r.status_code == 200 and r.json()["models"] is None
    assert httpx.post(f"{url}/v1/chat/completions", json={"model": "gpt-4o", **_CHAT},
                      headers=_auth(secret)).status_code == 200
    claude = httpx.post(f"{url}/v1/chat/completions", json={"model": "claude-haiku-4-5", **_CHAT},
                        headers=_auth(secret))
    assert claude.status_code == 403 and "team red" in claude.json()["error"]["message"]
    # A grace that is not a time is refused, and the secret is not changed.
    json_headers = {**admin, "Content-Type": "application/json"}
    for raw in ('{"grace": -60}', '{"grace": Infinity}', '{"grace": NaN}', '{"grace": "forever"}'):
        r = httpx.post(f"{url}/api/keys/{key_id}/rotate", content=raw, headers=json_headers)
        assert r.status_code == 400 and "grace" in r.text, (raw, r.text)
    assert httpx.get(f"{url}/v1/models", headers=_auth(secret)).status_code == 200
    # Rotate without grace: the old secret stops at once in this worker.
    r = httpx.post(f"{url}/api/keys/{key_id}/rotate", json={}, headers=admin)
    assert r.status_code == 200, r.text
    new = r.json()["key"]
    assert httpx.get(f"{url}/v1/models", headers=_auth(secret)).status_code == 401
    assert httpx.get(f"{url}/v1/models", headers=_auth(new)).status_code == 200
    r = httpx.post(f"{url}/api/teams/red/members", json={"user": "bob"}, headers=admin)
    assert r.status_code == 200 and r.json()["members"] == ["bob"]
    assert httpx.delete(f"{url}/api/teams/red/members/bob", headers=admin).json()["members"] == []
    # A team with an active key is not deleted; revoke it, then it is.
    assert httpx.delete(f"{url}/api/teams/red", headers=admin).status_code == 400
    r = httpx.delete(f"{url}/api/keys/{key_id}", headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False
    assert httpx.get(f"{url}/v1/models", headers=_auth(new)).status_code == 401
    assert httpx.delete(f"{url}/api/teams/red", headers=admin).status_code == 200
    trail = httpx.get(f"{url}/api/audit", params={"since": "1h"}, headers=admin)
    assert trail.status_code == 200
    entries = trail.json()
    # The team's budget and the key's rate limit are audited too, as what they are.
    assert {"budget.set", "ratelimit.set", "budget.delete"} <= {e["action"] for e in entries}
    assert [e["action"] for e in reversed(entries) if e["action"].startswith(("key.", "team."))] == [
        "team.create", "key.create", "key.update", "key.rotate", "team.add_user", "team.remove_user",
        "key.revoke", "team.delete"]
    assert all(e["actor"] == "admin" and e["via"] == "api" for e in entries)
    assert secret not in trail.text and new not in trail.text


def test_only_the_admin_key_manages_keys_teams_and_audit(admin_live: LiveServer, store: Store) -> None:
    url = admin_live.url
    plain, info = create_key(store, "alice")
    for method, path, body in [("GET", "/api/keys", None), ("POST", "/api/keys", {"user": "mallory"}),
                               ("POST", f"/api/keys/{info.id}/rotate", {}), ("DELETE", f"/api/keys/{info.id}", None),
                               ("PATCH", f"/api/keys/{info.id}", {"models": "*"}), ("GET", "/api/teams", None),
                               ("POST", "/api/teams", {"name": "x"}), ("GET", "/api/audit", None)]:
        r = httpx.request(method, url + path, json=body, headers=_auth(plain))
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["code"] == "admin_key_required"
    assert httpx.get(url + "/api/keys").status_code == 401
    # Hostile input is refused by its field.
    admin = _auth(ADMIN)
    for body in ({"user": "a b"}, {"user": "acme/alice"}, {"user": "a", "models": "x;rm"}, {"user": "a", "rpm": 0},
                 {"user": "a", "expires": "yesterday"}, {"user": "a", "team": "ghosts"},
                 {"user": "a", "period": "decade"}, {"user": "a", "trusted": "yes"}):
        r = httpx.post(url + "/api/keys", json=body, headers=admin)
        assert r.status_code == 400, (body, r.text)
    assert httpx.delete(url + "/api/keys/not-an-id", headers=admin).status_code == 400
    for method, path in [("DELETE", "/api/keys/0123456789ab"), ("POST", "/api/keys/0123456789ab/rotate"),
                         ("PATCH", "/api/keys/0123456789ab"), ("DELETE", "/api/teams/ghosts"),
                         ("POST", "/api/teams/ghosts/members")]:
        body = {"user": "x"} if path.endswith("members") else {}
        r = httpx.request(method, url + path, json=body, headers=admin)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (method, path, r.text)


def test_the_openapi_document_describes_the_governance_routes(admin_live: LiveServer) -> None:
    spec = httpx.get(admin_live.url + "/openapi.json").json()
    for path in ("/api/keys", "/api/keys/{key_id}", "/api/keys/{key_id}/rotate", "/api/teams",
                 "/api/teams/{name}", "/api/teams/{name}/members", "/api/audit"):
        assert path in spec["paths"], path


def test_a_teams_member_sees_the_teams_budget_and_others_do_not(admin_live: LiveServer, store: Store) -> None:
    url, admin = admin_live.url, _auth(ADMIN)
    assert httpx.post(f"{url}/api/teams", json={"name": "red", "budget": "50"}, headers=admin).status_code == 201
    assert httpx.post(f"{url}/api/teams/red/members", json={"user": "alice"}, headers=admin).status_code == 200
    alice, _ = create_key(store, "alice")
    carol, _ = create_key(store, "carol")
    seen = {b["scope"] for b in httpx.get(f"{url}/api/budgets", headers=_auth(alice)).json()}
    assert "team:red" in seen
    assert "team:red" not in {b["scope"] for b in httpx.get(f"{url}/api/budgets", headers=_auth(carol)).json()}
