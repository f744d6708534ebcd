"""The cache's persistent tier on PostgreSQL (CI starts one; skipped without AX_TEST_POSTGRES_URL)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from sqlalchemy import text, update

from axtui.cache import AnswerCache, BuiltinEmbedder, clear, invalidate, stats
from axtui.clock import FakeClock
from axtui.config import CacheConfig
from axtui.ports import CacheDirective
from axtui.store import Store
from axtui.store.tables_cache import CacheEntry
from axtui.types import Caller

from .helpers import answer, request

pytestmark = pytest.mark.postgres
ALICE = Caller(user="alice")
PLAIN = CacheDirective()


@pytest.fixture
def pg() -> Iterator[Store]:
    url = os.environ.get("AX_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL: set AX_TEST_POSTGRES_URL (CI starts one)")
    store = Store.open(url)
    with store.connect() as conn:
        conn.execute(text("DELETE FROM cache_entries"))
        conn.execute(text("DELETE FROM cache_counters"))
    yield store
    store.close()


async def test_entries_counters_and_invalidation_on_postgresql(pg: Store) -> None:
    clock = FakeClock()

    def cache() -> AnswerCache:
        return AnswerCache(CacheConfig(ttl_s=60), pg, clock=clock, embedder=BuiltinEmbedder())

    first = cache()
    try:
        await first.store(request("In Git, how do I undo the last commit?"), ALICE, answer("git reset"), 5, PLAIN)
        await first.store(request("second question"), ALICE, answer("two"), 5, PLAIN)
        await first.store(request("second question"), ALICE, answer("two, again"), 5, PLAIN)  # an upsert
        await first.drain()
        assert (await first.lookup(request("second question"), ALICE, PLAIN)) is not None
        await first.drain()
    finally:
        await first.aclose()

    second = cache()
    try:
        await second.drain()
        near = await second.lookup(request("How do I undo the last commit in Git?"), ALICE, PLAIN)
        assert near is not None and near.kind == "semantic" and near.response.content == "git reset"
        again = await second.lookup(request("second question"), ALICE, PLAIN)
        assert again is not None and again.response.content == "two, again"
        with pg.connect() as conn:
            conn.execute(update(CacheEntry.__table__).values(body=b"\x00broken"))  # type: ignore[attr-defined]
        second.forget_local()
        assert await second.lookup(request("second question"), ALICE, PLAIN) is None
        await second.drain()
        assert second.tier is not None
        clock.advance(61)
        assert await asyncio.to_thread(second.tier.purge_expired) == 1
    finally:
        await second.aclose()
    figures = stats(pg)
    assert (figures.entries, figures.corrupt, figures.expirations) == (0, 1, 1)
    assert invalidate(pg, user="alice") == 0
    assert clear(pg) == 0
    assert stats(pg).invalidated == 0


@pytest.mark.parametrize("during", [False, True], ids=["before-the-write", "during-the-write"])
async def test_an_answer_queued_before_a_clear_never_comes_back_on_postgresql(
        pg: Store, monkeypatch: pytest.MonkeyPatch, during: bool) -> None:
    from .test_cache import race_a_clear_with_the_writer

    cache = AnswerCache(CacheConfig(), pg, clock=FakeClock(), embedder=BuiltinEmbedder())
    try:
        await race_a_clear_with_the_writer(cache, pg, monkeypatch, during=during)
    finally:
        await cache.aclose()
