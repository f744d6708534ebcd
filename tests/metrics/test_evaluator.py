"""The alert evaluator end to end: rules in the store, live windows, events, the bus, webhooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from axtui.bus import AlertChanged, EventBus
from axtui.clock import FakeClock
from axtui.config import AlertsConfig, Settings
from axtui.cost.budgets import Scope, set_budget
from axtui.errors import InvalidRequest
from axtui.metrics.alerts.delivery import AddressPolicy, WebhookSender
from axtui.metrics.alerts.evaluator import AlertEvaluator
from axtui.metrics.alerts.model import AlertEvent
from axtui.metrics.alerts.storage import add_rule, get_rule, list_events, silence_rule, update_rule
from axtui.metrics.live import LiveMetrics
from axtui.store import Store
from tests.metrics.conftest import call, record_calls


class Hook:
    """A local webhook receiver that fails its first ``fail`` requests with ``status``."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail = 0
        self.status = 503
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.fail > 0:
            self.fail -= 1
            return web.Response(status=self.status, text="not now")
        self.received.append(body)
        return web.json_response({"ok": True})


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    h = Hook()
    app = web.Application()
    app.router.add_post("/hook", h.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    h.url = f"http://127.0.0.1:{port}/hook"
    yield h
    await runner.cleanup()


def make(
    store: Store, clock: FakeClock, bus: EventBus | None = None, **alerts: Any
) -> tuple[AlertEvaluator, LiveMetrics]:
    settings = Settings(alerts=AlertsConfig(**{"resolve_after_s": 10, "cooldown_s": 0, **alerts}))
    live = LiveMetrics(settings.metrics, clock=clock)
    sender = WebhookSender(attempts=settings.alerts.webhook_attempts, backoff_s=0.5, clock=clock, timeout_s=5,
                           policy=AddressPolicy(allow_loopback=True))  # the receiver runs on this machine
    return AlertEvaluator(store, live, settings, bus=bus, clock=clock, sender=sender), live


def errors(live: LiveMetrics, clock: FakeClock, n: int, **kw: Any) -> None:
    for _ in range(n):
        live.observe(call(clock.now(), status="error", **kw))


async def test_a_rule_fires_is_stored_published_and_posted_then_resolves(
    store: Store, clock: FakeClock, hook: Hook
) -> None:
    bus = EventBus()
    seen: list[AlertEvent] = []
    bus.subscribe(lambda e: seen.append(e.event) if isinstance(e, AlertChanged) else None)
    ev, live = make(store, clock, bus)
    rule = add_rule(store, "error_rate > 20% where provider=openai", now=clock.now(), name="openai failing",
                    severity="critical", webhook=hook.url)  # fmt: skip
    live.observe(call(clock.now()))
    errors(live, clock, 3)
    errors(live, clock, 5, provider="groq")  # another provider's errors do not count
    fired = await ev.evaluate_once()
    await ev.drain()
    assert [e.kind for e in fired] == ["firing"]
    assert fired[0].value == pytest.approx(0.75)
    assert "openai failing" in fired[0].message and "75%" in fired[0].message
    assert [e.kind for e in seen] == ["firing"]
    assert [h["state"] for h in hook.received] == ["firing"]
    assert hook.received[0]["labels"] == {"provider": "openai"} and hook.received[0]["severity"] == "critical"
    stored = get_rule(store, rule.id)
    assert stored is not None and stored.state == "firing" and stored.last_fired_at == clock.now()
    # Still failing: no second notification.
    clock.advance(5)
    assert await ev.evaluate_once() == []
    # Traffic turns healthy: the minute's error rate falls, and after resolve_after (10 s) it resolves.
    clock.advance(61)
    for _ in range(50):
        live.observe(call(clock.now()))
    assert await ev.evaluate_once() == []
    clock.advance(10)
    resolved = await ev.evaluate_once()
    await ev.drain()
    assert [e.kind for e in resolved] == ["resolved"]
    assert [h["state"] for h in hook.received] == ["firing", "resolved"]
    events = list_events(store)
    assert [(e.kind, e.delivery) for e in events] == [("firing", "ok"), ("resolved", "ok")]
    assert get_rule(store, rule.id).state == "ok"  # type: ignore[union-attr]
    await ev.aclose()


async def test_a_webhook_that_fails_then_recovers_is_retried_until_delivered(
    store: Store, clock: FakeClock, hook: Hook
) -> None:
    ev, live = make(store, clock, webhook_attempts=4)
    add_rule(store, "errors > 0", now=clock.now(), webhook=hook.url)
    hook.fail = 2
    errors(live, clock, 1)
    await ev.evaluate_once()
    await ev.drain()
    assert len(hook.received) == 1
    [event] = list_events(store)
    assert (event.delivery, event.attempts, event.delivery_error) == ("ok", 3, None)
    await ev.aclose()


async def test_a_webhook_that_stays_down_is_recorded_as_failed_and_alerting_goes_on(
    store: Store, clock: FakeClock, hook: Hook
) -> None:
    ev, live = make(store, clock, webhook_attempts=3)
    add_rule(store, "errors > 0", now=clock.now(), webhook=hook.url)
    hook.fail = 100
    errors(live, clock, 1)
    assert [e.kind for e in await ev.evaluate_once()] == ["firing"]
    await ev.drain()
    [event] = list_events(store)
    assert event.delivery == "failed" and event.attempts == 3
    assert event.delivery_error is not None and "HTTP 503" in event.delivery_error
    # A receiver that refuses the payload (4xx) is not retried.
    hook.fail, hook.status = 100, 400
    add_rule(store, "requests > 0", now=clock.now(), webhook=hook.url)
    assert [e.kind for e in await ev.evaluate_once()] == ["firing"]
    await ev.drain()
    last = list_events(store)[-1]
    assert (last.delivery, last.attempts) == ("failed", 1)
    await ev.aclose()


async def test_an_unreachable_webhook_is_not_fatal(store: Store, clock: FakeClock) -> None:
    ev, live = make(store, clock, webhook_attempts=2)
    add_rule(store, "errors > 0", now=clock.now(), webhook="http://127.0.0.1:9/nothing-listens")
    errors(live, clock, 1)
    await ev.evaluate_once()
    await ev.drain()
    [event] = list_events(store)
    assert event.delivery == "failed" and event.attempts == 2 and event.delivery_error


async def test_two_evaluators_announce_a_transition_once(store: Store, clock: FakeClock) -> None:
    """Two processes (two gateway workers) evaluating the same rules: one event per transition."""
    bus = EventBus()
    seen: list[AlertEvent] = []
    bus.subscribe(lambda e: seen.append(e.event) if isinstance(e, AlertChanged) else None)
    a, live_a = make(store, clock, bus)
    b, live_b = make(store, clock, bus)
    add_rule(store, "errors > 0", now=clock.now())
    errors(live_a, clock, 2)
    errors(live_b, clock, 2)
    await a.evaluate_once()
    await b.evaluate_once()
    assert [e.kind for e in seen] == ["firing"]
    assert [e.kind for e in list_events(store)] == ["firing"]
    # b adopted the stored state: once clear, one of them resolves it, once.
    clock.advance(120)
    for _ in range(3):
        await a.evaluate_once()
        await b.evaluate_once()
        clock.advance(10)
    assert [e.kind for e in list_events(store)] == ["firing", "resolved"]


async def test_a_pending_rule_fires_after_its_duration(store: Store, clock: FakeClock) -> None:
    ev, live = make(store, clock)
    add_rule(store, "rps > 1 for 30s", now=clock.now())
    kinds = []
    for _ in range(10):
        for _ in range(20):
            live.observe(call(clock.now()))
            clock.advance(0.25)
        kinds += [e.kind for e in await ev.evaluate_once()]
    assert kinds == ["pending", "firing"]


async def test_a_silenced_rule_changes_state_but_sends_nothing(store: Store, clock: FakeClock, hook: Hook) -> None:
    ev, live = make(store, clock)
    rule = add_rule(store, "errors > 0", now=clock.now(), webhook=hook.url)
    silence_rule(store, rule.id, clock.now() + 3600)
    errors(live, clock, 1)
    assert [e.kind for e in await ev.evaluate_once()] == ["firing"]
    await ev.drain()
    assert hook.received == []
    assert list_events(store)[0].delivery == "silenced"


async def test_a_spend_rule_reads_todays_spend_from_the_rollups(store: Store, clock: FakeClock) -> None:
    ev, _live = make(store, clock, spend_refresh_s=30)
    add_rule(store, "spend_usd > 0.01 per day where user=alice", now=clock.now())
    record_calls(store, [call(clock.now() - 86400, cost_nanos=90_000_000)])  # yesterday: not today's spend
    record_calls(store, [call(clock.now() - 60, cost_nanos=6_000_000)])
    record_calls(store, [call(clock.now() - 60, cost_nanos=50_000_000, user="bob")])
    assert await ev.evaluate_once() == []  # alice: $0.006 today
    record_calls(store, [call(clock.now() - 30, cost_nanos=6_000_000)])
    clock.advance(31)  # past the spend cache
    [event] = await ev.evaluate_once()
    assert event.kind == "firing" and event.value == pytest.approx(0.012)
    assert "$0.012" in event.message


async def test_a_budget_rule_reads_the_budgets_standing(store: Store, clock: FakeClock) -> None:
    ev, _live = make(store, clock)
    add_rule(store, "budget_used_pct >= 50 where user=alice", now=clock.now())
    add_rule(store, "budget_used_pct >= 50 where user=bob", now=clock.now())
    record_calls(store, [call(clock.now() - 60, cost_nanos=12_000_000)])
    set_budget(store, Scope("user", "alice"), "day", 20_000_000, now=clock.now())
    set_budget(store, Scope("user", "bob"), "day", 20_000_000, now=clock.now())
    [event] = await ev.evaluate_once()
    assert event.kind == "firing" and event.labels == {"user": "alice"}
    assert event.value == pytest.approx(60.0)


async def test_the_evaluator_runs_on_its_own_and_stops(store: Store) -> None:
    """With the real clock: started, it evaluates every interval until closed."""
    settings = Settings(alerts=AlertsConfig(interval_s=0.05))
    live = LiveMetrics(settings.metrics)
    ev = AlertEvaluator(store, live, settings)
    add_rule(store, "requests >= 0", now=0)
    ev.start()
    for _ in range(200):
        if ev.evaluations >= 3:
            break
        await asyncio.sleep(0.02)
    await ev.aclose()
    assert ev.evaluations >= 3
    assert [e.kind for e in list_events(store)] == ["firing"]


def test_a_rule_name_that_would_drive_a_terminal_is_refused(store: Store, clock: FakeClock) -> None:
    # Rule names are printed in terminals (`ax alerts`, the dashboard): an escape sequence would run there.
    with pytest.raises(InvalidRequest, match="control character") as info:
        add_rule(store, "errors > 0", now=clock.now(), name="\x1b[2Jdisk full")
    assert info.value.param == "name"
    rule = add_rule(store, "errors > 0", now=clock.now(), name="errors · any ✓")
    with pytest.raises(InvalidRequest, match="control character"):
        update_rule(store, rule.id, now=clock.now(), name="ok\x9b31m")
    assert get_rule(store, rule.id).name == "errors · any ✓"
