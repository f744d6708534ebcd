"""Budgets enforced in the engine: reserve, settle, release, under concurrency and across processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from axtui.bus import BudgetCrossed, EventBus
from axtui.clock import FakeClock
from axtui.config import BudgetsConfig, PriceOverride, ProviderConfig, Settings
from axtui.cost import enforcement
from axtui.cost.alerts import AlertNotifier, BudgetAlert, alert_events
from axtui.cost.budgets import Scope, budget_status, set_budget
from axtui.cost.enforcement import BudgetBook
from axtui.cost.sheet import PriceSheet
from axtui.engine.compose import build_gateway
from axtui.errors import BudgetExceeded
from axtui.providers.base import Provider
from axtui.store import Store
from axtui.store.tables_cost import BudgetWindow
from axtui.tokens import estimate_prompt_tokens
from axtui.types import Caller, ChatRequest, ChatResponse, Chunk, Deployment, EmbeddingResponse, Usage
from axtui.webhooks import AddressPolicy
from tests.webhooks.receiver import receiver

USD = 10**9
DEP = Deployment("openai", "gpt-4o-mini", "gpt-4o-mini")
ALICE = Caller("alice")


def windows(store: Store) -> list[tuple[int, int, int]]:
    t = BudgetWindow.__table__  # type: ignore[attr-defined]
    return [tuple(r) for r in store.run(lambda c: c.execute(
        select(t.c.budget_id, t.c.spent_nanos, t.c.reserved_nanos).order_by(t.c.budget_id)).all())]


# -- the BudgetBook on its own --------------------------------------------------------------------


async def test_hard_budget_reserves_settles_and_refuses(store: Store) -> None:
    clock = FakeClock()
    set_budget(store, Scope("global"), "day", 10 * USD, hard=True, now=clock.now())
    book = BudgetBook(store, clock=clock)
    r1 = await book.reserve(ALICE, DEP, 6 * USD)
    assert windows(store)[0][1:] == (0, 6 * USD)
    with pytest.raises(BudgetExceeded, match=r"budget #1 \(global, \$10.00/day, hard\) has no room") as exc:
        await book.reserve(ALICE, DEP, 5 * USD)
    assert exc.value.budget_id == 1 and exc.value.retry_after is not None and exc.value.retry_after > 0
    await book.settle(r1, 4 * USD)  # cheaper than estimated: the room comes back
    await book.flush()
    assert windows(store)[0][1:] == (4 * USD, 0)
    r2 = await book.reserve(ALICE, DEP, 5 * USD)
    await book.release(r2)  # failed call: nothing spent
    await book.flush()
    assert windows(store)[0][1:] == (4 * USD, 0)
    await book.settle(r2, 5 * USD)  # a settle after release does nothing
    await book.flush()
    assert windows(store)[0][1:] == (4 * USD, 0)


async def test_free_and_unknown_price_calls_are_never_refused(store: Store) -> None:
    clock = FakeClock()
    set_budget(store, Scope("global"), "day", 1 * USD, hard=True, now=clock.now())
    book = BudgetBook(store, clock=clock)
    await book.settle(await book.reserve(ALICE, DEP, USD), USD)  # budget used up
    await book.flush()
    with pytest.raises(BudgetExceeded):
        await book.reserve(ALICE, DEP, 1)
    assert await book.reserve(ALICE, DEP, 0) is not None  # a $0 model
    assert await book.reserve(ALICE, DEP, None) is not None  # unknown price


async def test_soft_budgets_count_but_never_refuse(store: Store) -> None:
    clock = FakeClock()
    set_budget(store, Scope.parse("user:alice"), "day", 1 * USD, now=clock.now())
    book = BudgetBook(store, clock=clock)
    for _ in range(3):
        await book.settle(await book.reserve(ALICE, DEP, USD), USD)
    await book.flush()
    assert windows(store)[0][1:] == (3 * USD, 0)
    assert await book.reserve(Caller("bob"), DEP, USD) is None  # bob is not in scope


async def test_a_new_period_starts_from_zero(store: Store) -> None:
    clock = FakeClock(1_795_822_200.0)  # 23:30 UTC
    set_budget(store, Scope("global"), "day", 1 * USD, hard=True, now=clock.now())
    book = BudgetBook(store, clock=clock)
    await book.settle(await book.reserve(ALICE, DEP, USD), USD)
    await book.flush()
    with pytest.raises(BudgetExceeded):
        await book.reserve(ALICE, DEP, 1)
    clock.advance(3600)  # past midnight
    assert await book.reserve(ALICE, DEP, USD) is not None


async def test_one_refusing_budget_reserves_nothing_anywhere(store: Store) -> None:
    clock = FakeClock()
    set_budget(store, Scope("global"), "day", 10 * USD, hard=True, now=clock.now())
    set_budget(store, Scope.parse("user:alice"), "day", 1 * USD, hard=True, now=clock.now())
    book = BudgetBook(store, clock=clock)
    with pytest.raises(BudgetExceeded, match="user:alice"):
        await book.reserve(ALICE, DEP, 2 * USD)
    assert all(reserved == 0 for _, _, reserved in windows(store))


async def test_calls_within_a_claim_never_wait_for_the_database(store: Store) -> None:
    clock = FakeClock()
    set_budget(store, Scope("global"), "day", 100 * USD, hard=True, now=clock.now())
    book = BudgetBook(store, clock=clock)
    estimate = USD // 1000
    held = [await book.reserve(ALICE, DEP, estimate)]  # claims room for about 64 calls
    assert store.path is not None
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the database
    try:
        for _ in range(30):
            held.append(await asyncio.wait_for(book.reserve(ALICE, DEP, estimate), timeout=5))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    for r in held:
        await book.settle(r, estimate)
    await book.flush()
    assert windows(store)[0][1:] == (31 * estimate, 0)
    await book.aclose()


async def test_room_another_process_holds_unused_comes_back(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(enforcement, "_IDLE_S", 3600.0)  # only `flush` gives room back here
    clock = FakeClock()
    set_budget(store, Scope("global"), "day", 1000, hard=True, now=clock.now())
    a, b = BudgetBook(store, clock=clock), BudgetBook(store, clock=clock)
    in_flight = await a.reserve(ALICE, DEP, 1)  # a claims a few calls' room ahead

    async def spend_all(book: BudgetBook) -> int:
        calls = 0
        while True:
            try:
                await book.settle(await book.reserve(ALICE, DEP, 1), 1)
            except BudgetExceeded:
                return calls
            calls += 1

    assert await spend_all(b) == 1000 - 7  # all but what a holds: its call and 6 more (1/128 of the limit)
    await a.flush()  # a gives back what it does not use
    assert await spend_all(b) == 6  # with a's call under way: exactly the limit, never more
    await a.settle(in_flight, 1)
    for book in (a, b):
        await book.aclose()
    assert windows(store)[0][1:] == (1000, 0)


async def test_unused_room_goes_back_after_a_second_without_calls(store: Store) -> None:
    clock = FakeClock()
    set_budget(store, Scope("global"), "day", 100 * USD, hard=True, now=clock.now())
    book = BudgetBook(store, clock=clock)
    await book.settle(await book.reserve(ALICE, DEP, USD // 1000), USD // 1000)
    assert windows(store)[0][2] > 0  # room claimed ahead for the next calls
    for _ in range(100):
        await asyncio.sleep(0.05)
        if windows(store)[0][1:] == (USD // 1000, 0):
            break
    else:
        pytest.fail(f"the unused room was not given back: {windows(store)}")
    await book.aclose()


# -- alerts ----------------------------------------------------------------------------------------


async def test_thresholds_fire_once_per_period_on_log_bus_and_store(store: Store) -> None:
    clock = FakeClock()
    bus = EventBus()
    seen: list[BudgetAlert] = []
    bus.subscribe(lambda event: seen.append(event.alert) if isinstance(event, BudgetCrossed) else None)
    set_budget(store, Scope("global"), "month", 10 * USD, now=clock.now())
    # Two books stand for two processes settling against the same budget.
    a, b = BudgetBook(store, clock=clock, bus=bus), BudgetBook(store, clock=clock, bus=bus)
    await a.settle(await a.reserve(ALICE, DEP, 6 * USD), 6 * USD)  # 60 %: the 50 % alert
    await a.flush()
    await b.settle(await b.reserve(ALICE, DEP, 1 * USD), 1 * USD)  # 70 %: nothing new
    await b.flush()
    await b.settle(await b.reserve(ALICE, DEP, 2 * USD), 2 * USD)  # 90 %: 80 %
    await b.flush()
    await a.settle(await a.reserve(ALICE, DEP, 1 * USD), 1 * USD)  # 100 %: 100 %
    await a.flush()
    await a.settle(await a.reserve(ALICE, DEP, 1 * USD), 1 * USD)  # 110 %: already fired
    await a.flush()
    assert [e.threshold for e in seen] == [50, 80, 100]
    assert sorted(e.threshold for e in alert_events(store)) == [50, 80, 100]
    assert "reached 100% of $10.00" in seen[-1].message


async def test_a_hard_budget_that_refuses_is_used_up_once_though_spend_is_under_its_limit(store: Store) -> None:
    clock = FakeClock()
    bus = EventBus()
    seen: list[BudgetAlert] = []
    bus.subscribe(lambda event: seen.append(event.alert) if isinstance(event, BudgetCrossed) else None)
    set_budget(store, Scope("global"), "day", 10 * USD, hard=True, now=clock.now())
    book = BudgetBook(store, clock=clock, bus=bus)
    await book.settle(await book.reserve(ALICE, DEP, 9 * USD), 9 * USD)  # 90 %: 50 and 80 fire
    await book.flush()
    for _ in range(3):  # 9 + 2 does not fit: refused, three times
        with pytest.raises(BudgetExceeded):
            await book.reserve(ALICE, DEP, 2 * USD)
    await book.flush()
    assert sorted(e.threshold for e in alert_events(store)) == [50, 80, 100], "one 100 % event, not three"
    used_up = next(e for e in seen if e.threshold == 100)
    assert "is used up" in used_up.message and "calls are now refused" in used_up.message
    assert used_up.spent_nanos == 9 * USD



async def test_webhook_retries_then_records_the_outcome(store: Store) -> None:
    clock = FakeClock()
    async with receiver(replies=[500, 503, 200, 500, 500, 500]) as hook:
        notifier = AlertNotifier(store, clock=clock, attempts=3, policy=AddressPolicy(allow_loopback=True))
        config = BudgetsConfig(webhook=f"{hook.base}/ax", thresholds=[50, 100])
        set_budget(store, Scope("global"), "month", 10 * USD, now=clock.now())
        book = BudgetBook(store, config, clock=clock, notifier=notifier)
        await book.settle(await book.reserve(ALICE, DEP, 5 * USD), 5 * USD)
        await book.aclose()
        await book.settle(await book.reserve(ALICE, DEP, 5 * USD), 5 * USD)
        await book.aclose()
    events = {e.threshold: e for e in alert_events(store)}
    assert events[50].delivery == "ok" and events[100].delivery == "failed"
    bodies = [body for _, body in hook.hits]
    assert len(bodies) == 6 and b'"threshold_percent":50' in bodies[0].replace(b" ", b"")


async def test_unreachable_webhook_is_recorded_not_raised(store: Store) -> None:
    clock = FakeClock()
    async with receiver() as hook:
        closed = hook.base  # nothing listens there once the receiver is gone
    notifier = AlertNotifier(store, clock=clock, attempts=2, policy=AddressPolicy(allow_loopback=True))
    set_budget(store, Scope("global"), "month", 1 * USD, now=clock.now())
    book = BudgetBook(store, BudgetsConfig(webhook=f"{closed}/h"), clock=clock, notifier=notifier)
    await book.settle(await book.reserve(ALICE, DEP, USD), USD)
    await book.aclose()
    assert {e.delivery for e in alert_events(store)} == {"failed"}


# -- through the real gateway -----------------------------------------------------------------------


class ExactProvider(Provider):
    """Bills exactly what the engine estimates: prompt as estimated, max_tokens of output."""

    kind = "exact"

    def __init__(self, name: str, models: list[str], delay: float = 0.0) -> None:
        super().__init__(ProviderConfig(name=name, kind="openai", models=models, max_retries=0))
        self.delay = delay

    async def chat(self, request: ChatRequest, deployment: Deployment) -> ChatResponse:
        for _ in range(3):  # let other calls interleave
            await asyncio.sleep(0)
        if self.delay:
            await asyncio.sleep(self.delay)
        usage = Usage(input_tokens=estimate_prompt_tokens(request), output_tokens=request.output_limit or 0)
        return ChatResponse(content="ok", model=deployment.upstream_model, usage=usage)

    async def stream(self, request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:  # type: ignore[override]
        yield Chunk(delta="ok")

    async def embed(self, inputs: list[str], model: str) -> EmbeddingResponse:
        return EmbeddingResponse([[0.0] for _ in inputs], model, Usage())

    async def list_models(self) -> list[str]:
        return list(self.config.models)

    async def aclose(self) -> None:
        return None


def request(i: int, max_tokens: int = 100) -> ChatRequest:
    return ChatRequest(model="gpt-4o-mini", max_tokens=max_tokens,
                       messages=[{"role": "user", "content": f"question number {i:04d}"}])  # type: ignore[list-item]


def exact_settings() -> Settings:
    s = Settings(providers=[ProviderConfig(name="openai", kind="openai", models=["gpt-4o-mini"])])
    s.cache.enabled = False
    return s


async def test_200_concurrent_calls_never_overshoot_a_hard_budget(store: Store) -> None:
    sheet = PriceSheet.load(include_user=False)
    estimate = sheet.estimate(DEP, estimate_prompt_tokens(request(0)), 100)
    assert estimate
    limit = 37 * estimate + estimate // 2  # room for 37 calls and a half
    set_budget(store, Scope("global"), "day", limit, hard=True, now=FakeClock().now())
    gw = await build_gateway(exact_settings(), store=store, clock=FakeClock(),
                             providers={"openai": ExactProvider("openai", ["gpt-4o-mini"])})
    async with gw:
        results = await asyncio.gather(*(gw.call(request(i), ALICE) for i in range(200)), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(ok) == 37 and len(refused) == 163
    spent = sum(r.record.cost_nanos for r in ok)
    assert spent <= limit
    (status,) = budget_status(store, FakeClock().now())
    assert status.spent_nanos == spent and status.reserved_nanos == 0


async def test_200_concurrent_sim_calls_overshoot_at_most_the_estimate_error(store: Store) -> None:
    settings = Settings(providers=[ProviderConfig(name="openai", kind="sim", profile="fast", models=["gpt-4o-mini"])])
    settings.cache.enabled = False
    sheet = PriceSheet.load(include_user=False)
    limit = 20 * sheet.estimate(DEP, estimate_prompt_tokens(request(0)), 300)  # type: ignore[operator]
    clock = FakeClock()
    set_budget(store, Scope("global"), "month", limit, hard=True, now=clock.now())
    gw = await build_gateway(settings, store=store, clock=clock)
    async with gw:
        results = await asyncio.gather(*(gw.call(request(i, 300), ALICE) for i in range(200)),
                                       return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    assert ok and all(isinstance(r, BudgetExceeded) for r in results if isinstance(r, BaseException))
    spent = sum(r.record.cost_nanos for r in ok)
    error = sum(max(0, r.record.cost_nanos - sheet.estimate(DEP, estimate_prompt_tokens(request(0)), 300))  # type: ignore[operator]
                for r in ok)
    assert spent <= limit + error


async def test_a_free_deployment_still_serves_when_the_budget_is_spent(store: Store) -> None:
    settings = Settings(
        providers=[ProviderConfig(name="openai", kind="openai", models=["gpt-4o-mini"]),
                   ProviderConfig(name="local", kind="openai", models=["gpt-4o-mini"])],
        prices={"local/gpt-4o-mini": PriceOverride(input=Decimal(0), output=Decimal(0))},
    )
    settings.cache.enabled = False
    set_budget(store, Scope("global"), "day", 1, hard=True, now=FakeClock().now())  # one nano-dollar
    gw = await build_gateway(settings, store=store, clock=FakeClock(), providers={
        "openai": ExactProvider("openai", ["gpt-4o-mini"]), "local": ExactProvider("local", ["gpt-4o-mini"])})
    async with gw:
        result = await gw.call(request(1), ALICE)
    assert result.record.provider == "local" and result.record.cost_nanos == 0


async def test_an_unknown_price_neither_blocks_nor_counts_as_free(store: Store) -> None:
    settings = Settings(providers=[ProviderConfig(name="acme", kind="openai", models=["mystery-9000"])])
    settings.cache.enabled = False
    set_budget(store, Scope("global"), "day", 1, hard=True, now=FakeClock().now())
    gw = await build_gateway(settings, store=store, clock=FakeClock(),
                             providers={"acme": ExactProvider("acme", ["mystery-9000"])})
    async with gw:
        req = request(1)
        req.model = "mystery-9000"
        result = await gw.call(req, ALICE)
    assert result.record.status == "ok" and result.record.cost_nanos is None


# -- across processes ---------------------------------------------------------------------------------


def _reserve_many(url: str, n: int, estimate: int) -> int:
    store = Store.open(url)
    book = BudgetBook(store, clock=FakeClock())

    async def run() -> int:
        admitted = 0
        for _ in range(n):
            try:
                res = await book.reserve(ALICE, DEP, estimate)
            except BudgetExceeded:
                continue
            admitted += 1
            await book.settle(res, estimate)
        await book.aclose()
        return admitted

    try:
        return asyncio.run(run())
    finally:
        store.close()


@pytest.mark.processes
def test_processes_sharing_one_database_cannot_overshoot(store: Store, ax_home: Path) -> None:
    estimate = 1_000_000
    set_budget(store, Scope("global"), "day", 50 * estimate, hard=True, now=FakeClock().now())
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        admitted = pool.starmap(_reserve_many, [(store.url, 30, estimate)] * 3)
    assert sum(admitted) == 50
    assert windows(store)[0][1:] == (50 * estimate, 0)


async def test_a_budget_set_by_another_process_is_enforced_within_the_refresh(store: Store) -> None:
    clock = FakeClock()
    book = BudgetBook(store, BudgetsConfig(refresh_s=2.0), clock=clock)
    assert await book.reserve(ALICE, DEP, USD) is None  # no budgets yet
    set_budget(store, Scope("global"), "day", 1, hard=True, now=clock.now())  # `ax cost budget set` elsewhere
    clock.advance(2.0)
    for _ in range(200):
        try:
            await book.reserve(ALICE, DEP, USD)
        except BudgetExceeded:
            break
        await asyncio.sleep(0.005)
    else:
        pytest.fail("the new budget was never enforced")


async def test_recorded_spend_the_counter_missed_still_counts(store: Store) -> None:
    from axtui.types import CallRecord

    from .conftest import record_calls

    clock = FakeClock()
    set_budget(store, Scope.parse("user:alice"), "day", 10 * USD, hard=True, now=clock.now())
    book = BudgetBook(store, clock=clock)
    await book.settle(await book.reserve(ALICE, DEP, USD), USD)
    await book.flush()
    # Another process, which had not seen the budget yet, recorded $9.50 of alice's calls.
    record_calls(store, [CallRecord(ts=clock.now(), user="alice", requested_model="m", cost_nanos=9_500_000_000)])
    book.refresh()
    with pytest.raises(BudgetExceeded):
        await book.reserve(ALICE, DEP, USD)
