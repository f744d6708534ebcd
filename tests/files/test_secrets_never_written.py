"""A planted provider key and webhook token appear in nothing ax writes.

The key is in the environment (the provider reads it by name) and an
upstream echoes it back in an error; the token is in the path and query of
the alert rule's, the default alert's and the budget's webhooks, one of
which fails. Then every artefact is searched: the store's files (database
and WAL), the logs, every export, ``/metrics``, and every answer the API
gives a plain key.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from aiohttp import web

from axtui import locations
from axtui.config import Settings
from axtui.cost.budgets import Scope, set_budget
from axtui.metrics.alerts.storage import add_rule, list_events
from axtui.metrics.export import COLUMNS, FORMATS, ExportQuery, export
from axtui.server.keys import create_key
from axtui.store import Store
from tests.server._live import LiveServer


class Upstream:
    """An OpenAI-compatible upstream that answers, and echoes the caller's key in its errors."""

    def __init__(self) -> None:
        self.url = ""
        self.keys_seen: list[str] = []
        self.runner: web.AppRunner | None = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def chat(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.keys_seen.append(auth)
        body = await request.json()
        text = body["messages"][-1]["content"]
        if "echo" in text:
            return web.json_response({"error": {"message": f"invalid request for {auth}", "type": "server_error"}},
                                     status=500)  # fmt: skip
        return web.json_response({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        })  # fmt: skip

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    def start(self) -> Upstream:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Hooks(Upstream):
    """A webhook receiver: ``/ok/…`` answers 200, ``/fail/…`` 500."""

    def __init__(self) -> None:
        super().__init__()
        self.hits: list[str] = []

    async def hook(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return web.Response(status=500 if request.path.startswith("/fail/") else 200, text="receiver says no")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.hook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str, Upstream, Hooks]]:
    key = "sk-proj-" + secrets.token_hex(24)
    token = "whsec_" + secrets.token_hex(16)
    monkeypatch.setenv("AX_PLANTED_PROVIDER_KEY", key)
    upstream, hooks = Upstream().start(), Hooks().start()
    yield key, token, upstream, hooks
    upstream.stop()
    hooks.stop()


def _stored_values(store: Store, *, allowed: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """Every value in every table of the store as text, but the ``(table, column)`` pairs ``allowed``."""
    from sqlalchemy import inspect, text

    out = []
    with store.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                for column, value in row._mapping.items():
                    if (table, column) not in allowed and value is not None:
                        out.append((f"{table}.{column}", value.decode(errors="replace") if isinstance(value, bytes)
                                    else str(value)))  # fmt: skip
    assert any(where.startswith("calls.") for where, _ in out)
    return out


def _wait(check: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the gateway")
        time.sleep(0.05)


def test_a_planted_key_and_webhook_token_are_in_no_artefact(
    planted: tuple[str, str, Upstream, Hooks], caplog: pytest.LogCaptureFixture
) -> None:
    key, token, upstream, hooks = planted
    settings = Settings.model_validate({
        "providers": [{"name": "up", "kind": "openai", "base_url": f"{upstream.url}/v1",
                       "api_key_env": "AX_PLANTED_PROVIDER_KEY", "models": ["gpt-4o-mini"], "max_retries": 0}],
        "cache": {"enabled": False},
        "alerts": {"interval_s": 0.05, "webhook": f"{hooks.url}/ok/default/{token}?token={token}",
                   "webhook_attempts": 2},
        "budgets": {"webhook": f"{hooks.url}/fail/budget/{token}?sig={token}", "webhook_attempts": 2},
        "webhooks": {"allow_loopback": True},
        "server": {"key_cache_s": 0},
    })  # fmt: skip
    store = Store.open()
    plain, _ = create_key(store, "alice", name="alice's app")
    add_rule(store, "requests >= 1", now=time.time(), name="any traffic", webhook=f"{hooks.url}/fail/rule/{token}")
    add_rule(store, "errors >= 1", now=time.time(), name="any error")  # delivered to the default webhook
    set_budget(store, Scope("global"), "month", 1, now=time.time())  # one nano-dollar: the first call crosses it
    server = LiveServer(settings).start()
    answers: dict[str, str] = {}
    try:
        with caplog.at_level(logging.DEBUG), httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {plain}"}, timeout=30
        ) as client:
            for i in range(3):
                r = client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [
                    {"role": "user", "content": f"question {i}"}]})  # fmt: skip
                assert r.status_code == 200, r.text
            r = client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [
                {"role": "user", "content": "please echo"}]})  # fmt: skip
            answers["POST /v1/chat/completions (upstream error)"] = r.text
            assert r.status_code >= 400
            # Every alert and budget delivery has finished (ok or failed).
            _wait(lambda: len({e.rule_id for e in list_events(store) if e.kind == "firing"
                               and e.delivery in ("ok", "failed")}) == 2)  # fmt: skip
            _wait(lambda: any(h.startswith("/fail/budget/") for h in hooks.hits))
            time.sleep(0.3)  # the budget alert's outcome is recorded after its last try
            paths = server.app.api.openapi()["paths"]
            for path, operations in paths.items():
                if "get" in operations and "{" not in path and path != "/api/metrics/stream":
                    answers[f"GET {path}"] = client.get(path).text
            for what in COLUMNS:
                answers[f"GET /api/export?what={what}"] = client.get("/api/export", params={"what": what}).text
            answers["GET /metrics"] = httpx.get(f"{server.url}/metrics").text
    finally:
        server.stop()
    assert upstream.keys_seen and all(key in k for k in upstream.keys_seen)  # the key was really used
    assert {"/ok/default", "/fail/rule", "/fail/budget"} <= {"/".join(h.split("/")[:3]) for h in hooks.hits}

    exports = {}
    for what in COLUMNS:
        for fmt in FORMATS:
            out = io.StringIO()
            export(store, out, fmt, ExportQuery(what=what))  # type: ignore[arg-type]
            exports[f"export {what} {fmt}"] = out.getvalue()
    assert "failed" in exports["export alerts csv"]  # the failed deliveries are there, with their reasons
    # The token's one rightful place is the webhook setting itself; every other stored value is searched.
    stored = _stored_values(store, allowed={("monitor_alert_rules", "webhook"), ("cost_budgets", "webhook")})
    store.close()
    for where, value in stored:
        assert token not in value and key not in value, f"{where} holds a planted secret"

    files = {p.name: p.read_bytes() for p in locations.data_dir().rglob("*") if p.is_file()}
    assert any(name.endswith(".db") for name in files)
    artefacts = {**answers, **exports, "logs": caplog.text}
    for secret in (key, token):
        for name, text in artefacts.items():
            assert secret not in text, f"{name} holds a planted secret"
    for name, data in files.items():  # the key is nowhere on disk, not even in a freed page
        assert key.encode() not in data, f"the store's file {name} holds the provider key"
    assert answers["GET /metrics"].startswith("#") and "ax_requests_total" in answers["GET /metrics"]
    assert len([a for a in answers if a.startswith("GET /api/")]) >= 10
    assert json.loads(answers["GET /api/metrics/realtime"])  # a real answer was searched, not an error
