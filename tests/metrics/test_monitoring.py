"""Monitoring attached to a real gateway on the simulated fleet: the issue's "done when", in process."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from axtui.cli import main
from axtui.clock import FakeClock
from axtui.config import AlertsConfig, Settings, WebhooksConfig
from axtui.cost.reports import summary
from axtui.engine.compose import build_gateway
from axtui.metrics import attach_monitoring
from axtui.metrics.alerts.grammar import parse_rule
from axtui.metrics.alerts.state import Transition
from axtui.metrics.alerts.storage import add_rule, get_rule, list_events, record_transition
from axtui.metrics.snapshot import Snapshot
from axtui.store import Store
from axtui.types import Caller, ChatRequest

from ..support import until


@pytest.fixture
async def hook() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/hook", received
    await runner.cleanup()


async def test_calls_are_seen_a_low_threshold_alert_fires_resolves_and_the_export_adds_up(
    hook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = hook
    clock = FakeClock()
    # The receiver is on this machine: the operator allows loopback webhooks.
    settings = Settings(alerts=AlertsConfig(interval_s=0.02, resolve_after_s=20, cooldown_s=0),
                        webhooks=WebhooksConfig(allow_loopback=True))  # fmt: skip
    store = Store.open()
    gateway = await build_gateway(settings, store=store, clock=clock)
    rule = add_rule(store, "requests >= 5", now=clock.now(), name="deliberately low", webhook=url)
    monitoring = attach_monitoring(gateway)
    n = 12
    for i in range(n):
        await gateway.call(
            ChatRequest(model="fast", messages=[{"role": "user", "content": f"question {i}"}]),  # type: ignore[list-item]
            Caller(user=f"user{i % 3}"),
        )
    snap = monitoring.snapshot()
    assert snap.lifetime.requests == n
    assert Snapshot.from_json(snap.dumps()).lifetime.requests == n
    assert sum(r.requests for r in snap.users) == snap.totals.requests

    # The rule fires, is stored with its event, reaches the webhook.
    try:
        await until(lambda: any(e.kind == "firing" for e in list_events(store)))
    except AssertionError as exc:
        ev = monitoring.evaluator
        assert ev is not None
        parsed = parse_rule(rule.rule)
        shared = ev.sources.shared
        raise AssertionError(
            f"{exc}; evaluations={ev.evaluations} last_error={ev.last_error} value={ev.sources.current(parsed)} "
            f"local={monitoring.live.stats(None, 60).requests} now={clock.now()} "
            f"shared_seen={shared and sorted(shared._seen.items())} polled_at={shared and shared._polled_at} "
            f"events={list_events(store)} rule={get_rule(store, rule.id)}"
        ) from None
    await until(lambda: len(received) == 1)
    assert received[0]["state"] == "firing" and received[0]["name"] == "deliberately low"
    assert get_rule(store, rule.id).state == "firing"  # type: ignore[union-attr]
    assert [a.state for a in monitoring.snapshot().alerts] == ["firing"]

    # Traffic stops: the minute empties, the condition clears, the rule resolves.
    await until(lambda: any(e.kind == "resolved" for e in list_events(store)), step=lambda: clock.advance(5))
    await until(lambda: len(received) == 2)
    assert received[1]["state"] == "resolved"
    assert monitoring.snapshot().alerts == []

    await gateway.aclose()
    store.close()

    # One exported row per recorded call; their costs add up to `ax cost summary`'s total.
    result = CliRunner().invoke(main, ["monitor", "export", "--format", "csv"])
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == n
    exported = sum((Decimal(r["cost_usd"]) for r in rows if r["cost_usd"]), Decimal(0))
    store = Store.open()
    try:
        total = summary(store, clock.now() - 86400, clock.now() + 1).total_usd
    finally:
        store.close()
    assert exported == total and total > 0


async def test_a_store_sourced_view_sees_another_process_calls() -> None:
    """Two gateways on one database (two workers): a store-sourced view counts both."""
    clock = FakeClock()
    settings = Settings()
    store = Store.open()
    a = await build_gateway(settings, store=store, clock=clock)
    b = await build_gateway(settings, store=store, clock=clock)
    attach_monitoring(a, alerts=False)  # each worker writes its per-second rollups
    attach_monitoring(b, alerts=False)
    for gw, who in ((a, "alice"), (b, "bob"), (b, "bob")):
        await gw.call(ChatRequest(model="fast", messages=[{"role": "user", "content": who}]), Caller(user=who))  # type: ignore[list-item]
    a.recorder.flush()  # type: ignore[union-attr]
    b.recorder.flush()  # type: ignore[union-attr]
    rule = add_rule(store, "requests > 0", now=clock.now())
    t = Transition("firing", "ok", "firing", clock.now(), 3.0)
    store.run(lambda conn: record_transition(conn, rule, parse_rule(rule.rule), t, "fired elsewhere", "none"))
    viewer = await build_gateway(settings, store=store, clock=clock, record=False)
    shared = attach_monitoring(viewer, source="store", alerts=False, prometheus=False)
    await until(lambda: shared.snapshot().lifetime.requests == 3)
    users = {u.key: u.requests for u in shared.snapshot().users}
    assert users == {"alice": 1, "bob": 2}
    # Without an evaluator of its own, it shows the rules another worker fired.
    await until(lambda: [a.rule_id for a in shared.snapshot().alerts] == [rule.id])
    for gw in (viewer, a, b):
        await gw.aclose()
    store.close()


async def test_processes_sharing_a_store_measure_a_rule_alike_so_it_does_not_flap() -> None:
    """Replicas (or `ax sim load` beside `ax serve`) each evaluate the rules: on every process's calls, not their own.

    Measured on its own calls, the idle one took back every transition of the busy one (pending, cancelled,
    pending…), so a rule with ``for`` never fired and the event log filled with noise.
    """
    clock = FakeClock()
    settings = Settings(alerts=AlertsConfig(interval_s=0.05))
    store = Store.open()
    busy = await build_gateway(settings, store=store, clock=clock)
    idle = await build_gateway(settings, store=store, clock=clock)
    add_rule(store, "requests >= 3 for 30m", now=clock.now())
    attach_monitoring(busy)
    attach_monitoring(idle)
    for i in range(4):
        await busy.call(ChatRequest(model="fast", messages=[{"role": "user", "content": f"busy {i}"}]),  # type: ignore[list-item]
                        Caller(user="u"))
    await until(lambda: any(e.kind == "pending" for e in list_events(store)))
    await asyncio.sleep(1.0)  # each evaluator runs about twenty times meanwhile
    assert [e.kind for e in list_events(store)] == ["pending"]
    for gw in (busy, idle):
        await gw.aclose()
    store.close()
