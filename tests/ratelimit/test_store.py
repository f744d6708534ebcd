"""The store backend: one limit for every ax process on the machine."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from axtui.clock import FakeClock
from axtui.config import RateLimitConfig
from axtui.errors import RateLimited
from axtui.ratelimit.backends.store import StoreBackend
from axtui.ratelimit.limiter import RateLimiter
from axtui.store import Store
from axtui.store.tables_ratelimit import StateTable
from tests.ratelimit.test_redis import replicas


@pytest.mark.parametrize("algorithm", ["token-bucket", "sliding-window"])
def test_four_processes_on_one_database_admit_the_limit_exactly(tmp_path: Path, algorithm: str) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    Store.open(url).close()  # migrated once, as the first ax process would
    got = replicas(url, algorithm, "requests", "300/day", count=4, backend="store")
    assert sum(g["admitted"] for g in got) == 300, got


def test_four_processes_share_a_token_limit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    Store.open(url).close()
    got = replicas(url, "token-bucket", "tokens", "30000/day", count=4, backend="store")
    assert 29_700 <= sum(g["tokens"] for g in got) <= 30_000, got


async def test_two_stores_on_one_file_see_each_others_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    clock = FakeClock()
    a_store, b_store = Store.open(url), Store.open(url)
    config = RateLimitConfig(user_requests="3/minute")
    a = RateLimiter(StoreBackend(a_store, clock=clock), config, store=a_store, clock=clock)
    b = RateLimiter(StoreBackend(b_store, clock=clock), config, store=b_store, clock=clock)
    try:
        await a.admit([("user", "alice")], 1)
        await b.admit([("user", "alice")], 1)
        await a.admit([("user", "alice")], 1)
        with pytest.raises(RateLimited):
            await b.admit([("user", "alice")], 1)
        await b.reset("alice")  # from "the dashboard"
        await a.admit([("user", "alice")], 1)
    finally:
        for limiter, store in ((a, a_store), (b, b_store)):
            await limiter.aclose()
            store.close()


async def test_expired_state_is_pruned(store: Store, make_limiter: Callable[..., RateLimiter], clock: FakeClock) -> None:
    limiter = make_limiter("store", user_requests="10/minute")
    for i in range(20):
        await limiter.admit([("user", f"u{i}")], 1)
    table = StateTable(store)
    keys = [slot.key for i in range(20) for slot in limiter.book.slots(("user", f"u{i}"))]
    assert len(table.read(keys)) == 20
    assert table.prune(clock.now()) == 0
    clock.advance(61)
    assert table.prune(clock.now()) == 20
    table.close()


async def test_an_in_memory_database_uses_the_portable_path(clock: FakeClock) -> None:
    store = Store.open("sqlite://")
    limiter = RateLimiter(StoreBackend(store, clock=clock), RateLimitConfig(user_requests="2/minute", user_tokens="500/minute"),
                          store=store, clock=clock)
    try:
        ticket = await limiter.admit([("user", "alice")], 400)
        await limiter.settle(ticket, 100)
        await limiter.admit([("user", "alice")], 400)
        with pytest.raises(RateLimited):
            await limiter.admit([("user", "alice")], 1)
    finally:
        await limiter.aclose()
        store.close()


@pytest.mark.postgres
async def test_postgresql_holds_the_limit_with_row_locks(clock: FakeClock) -> None:
    url = os.environ.get("AX_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL for tests: set AX_TEST_POSTGRES_URL=postgresql://user:pass@host/db")
    store = Store.open(url)
    limiter = RateLimiter(StoreBackend(store, clock=clock), RateLimitConfig(global_requests="5/hour"), store=store, clock=clock)
    try:
        await limiter.reset("global")
        import asyncio

        async def one() -> bool:
            try:
                await limiter.admit([("global", "*")], 1)
                return True
            except RateLimited:
                return False

        assert sum(await asyncio.gather(*(one() for _ in range(20)))) == 5
        await limiter.reset("global")
    finally:
        await limiter.aclose()
        store.close()
