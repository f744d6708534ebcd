"""A web page cannot spend through the gateway: Host, Origin, key before body, JSON only."""

from __future__ import annotations

import httpx
import pytest

from axtui.config import Settings
from axtui.server.guard import RequestGuard, host_name, is_loopback
from axtui.server.state import ServerState

from ._live import ADMIN, LiveServer

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


def test_keyless_requests_are_401_whatever_their_body(live: LiveServer) -> None:
    url = live.url
    for path, method in (("/v1/chat/completions", "POST"), ("/v1/embeddings", "POST"), ("/v1/messages", "POST"),
                         ("/api/budgets", "PUT"), ("/api/alerts", "POST"), ("/api/ratelimits", "PUT")):
        for body in (b"{", b'{"amount": "not money", "scope": 7}', b"[]"):
            r = httpx.request(method, url + path, content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 401, (path, body, r.text)
            assert r.json()["error"]["code"] == "invalid_api_key"


def test_the_api_takes_only_json_bodies(live: LiveServer, key: str, open_live: LiveServer) -> None:
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
    for server, headers in ((live, {"Authorization": f"Bearer {key}"}), (open_live, {})):
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x", None):
            sent = dict(headers)
            if content_type is not None:
                sent["Content-Type"] = content_type
            r = httpx.post(f"{server.url}/v1/chat/completions", content=body, headers=sent)
            assert r.status_code == 415, (content_type, r.text)
            assert r.json()["error"]["code"] == "unsupported_media_type"
        put = httpx.put(f"{server.url}/api/budgets", content=b'{"amount": "1"}',
                        headers={**headers, "Content-Type": "text/plain"})
        assert put.status_code == 415
        ok = httpx.post(f"{server.url}/v1/chat/completions", content=body,
                        headers={**headers, "Content-Type": "application/json; charset=utf-8"})
        assert ok.status_code == 200


def test_a_foreign_host_is_421_even_with_a_key(live: LiveServer, key: str, open_live: LiveServer) -> None:
    for server, headers in ((live, {"Authorization": f"Bearer {key}"}), (open_live, {})):
        for host in ("attacker.example", "attacker.example:8787", "127.0.0.1.attacker.example", "10.0.0.5"):
            r = httpx.post(f"{server.url}/v1/chat/completions", json=CHAT, headers={**headers, "Host": host})
            assert r.status_code == 421, host
            assert r.json()["error"]["code"] == "misdirected_request"
            assert httpx.get(f"{server.url}/api/budgets", headers={**headers, "Host": host}).status_code == 421
        for host in ("localhost", f"localhost:{server.port}", "127.0.0.1", "[::1]:80", "app.localhost"):
            r = httpx.post(f"{server.url}/v1/chat/completions", json=CHAT, headers={**headers, "Host": host})
            assert r.status_code == 200, host


def test_a_cross_site_write_is_refused_by_its_origin(open_live: LiveServer) -> None:
    url = open_live.url
    foreign = {"Origin": "https://attacker.example"}
    r = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=foreign)
    assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin"
    # Bodiless writes too: a form can POST nothing at all.
    assert httpx.post(f"{url}/api/ratelimits/user:alice/reset", headers=foreign).status_code == 403
    assert httpx.post(f"{url}/api/ratelimits/user:alice/reset", headers={"Origin": "null"}).status_code == 403
    same = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers={"Origin": url})
    assert same.status_code == 200


def _guard(bind: str | None, allowed: list[str], *, no_auth: bool = False) -> RequestGuard:
    return RequestGuard(ServerState(settings=Settings(), no_auth=no_auth), bind, allowed)


def test_host_rules() -> None:
    assert host_name("[::1]:8787") == "::1" and host_name("Example.COM.:80") == "example.com"
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("LOCALHOST")
    assert not is_loopback("localhost.attacker.example") and not is_loopback("0.0.0.0")
    loop = _guard(None, [])
    assert loop.host_allowed("127.0.0.1:1") and not loop.host_allowed("gateway.internal")
    bound = _guard("10.1.2.3", ["gw.example.com", "*.corp.example"])
    assert bound.host_allowed("10.1.2.3:8787") and bound.host_allowed("gw.example.com")
    assert bound.host_allowed("a.corp.example") and not bound.host_allowed("corp.example.evil")
    assert not bound.host_allowed("10.1.2.4")
    # Bound everywhere with keys: the names are unknown, keys guard; without keys only the listed names.
    assert _guard("0.0.0.0", []).host_allowed("anything.example")
    assert not _guard("0.0.0.0", [], no_auth=True).host_allowed("anything.example")
    assert not _guard("0.0.0.0", ["gw.example.com"]).host_allowed("anything.example")
    assert _guard("127.0.0.1", ["*"]).host_allowed("anything.example")


@pytest.mark.parametrize("short", ["x", "0123456789abcde"])
def test_a_short_admin_key_refuses_to_start(monkeypatch: pytest.MonkeyPatch, short: str) -> None:
    from axtui.errors import ConfigError
    from axtui.server.auth import check_admin_key

    monkeypatch.setenv("AX_ADMIN_KEY", short)
    with pytest.raises(ConfigError, match=r"AX_ADMIN_KEY .* at least 16"):
        check_admin_key("AX_ADMIN_KEY")
    monkeypatch.setenv("AX_ADMIN_KEY", ADMIN)
    check_admin_key("AX_ADMIN_KEY")


def test_client_errors_name_no_server_paths(live: LiveServer, key: str) -> None:
    """A locked store's 503 named the database file; the log keeps it, the answer does not."""
    from sqlalchemy.exc import OperationalError

    from axtui import locations
    from axtui.store._store import explain_operational

    db = str(locations.db_path())
    locked = explain_operational(OperationalError("INSERT", {}, Exception("database is locked")), db)
    assert db in locked.message  # what the log says

    async def refuse(*args: object, **kwargs: object) -> None:
        raise locked

    live.gateway.call = refuse  # type: ignore[method-assign]
    r = httpx.post(f"{live.url}/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
    assert db not in r.text and str(locations.data_dir()) not in r.text and "locked" in r.text
    from axtui.errors import ConfigError
    from axtui.server.errors import error_payload

    _, body, _ = error_payload(ConfigError(f"{locations.config_path()}: line 3: bad value"))
    assert str(locations.config_dir()) not in body["error"]["message"]
    assert "line 3: bad value" in body["error"]["message"]


def test_readiness_names_no_server_path(live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from axtui import locations
    from axtui.server import metrics_api

    def broken(gateway: object) -> None:
        raise OSError(f"unable to open database file {locations.db_path()}")

    monkeypatch.setattr(metrics_api, "_ping", broken)
    r = httpx.get(f"{live.url}/readyz")
    assert r.status_code == 503 and "store" in r.text
    assert str(locations.data_dir()) not in r.text
