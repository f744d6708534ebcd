"""The cache's bounds: an index cap shared with the memory tier, bounded queues, start-up from a snapshot,
work off the event loop, and no state kept between a lookup and the store that follows it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from axtui.cache import AnswerCache, BuiltinEmbedder, invalidate
from axtui.cache.entry import Entry
from axtui.cache.persist import StoreTier
from axtui.clock import FakeClock
from axtui.config import CacheConfig
from axtui.ports import CacheDirective
from axtui.store import Store
from axtui.types import Caller

from .helpers import answer, request

Make = Callable[..., AnswerCache]
ALICE = Caller(user="alice")
PLAIN = CacheDirective()

QUESTIONS = (
    "How do I reverse a list in Python?",
    "What causes the seasons on Earth?",
    "Why is the sky blue?",
    "How does compound interest work?",
)


async def put(cache: AnswerCache, text: str, reply: str, caller: Caller = ALICE) -> None:
    await cache.store(request(text), caller, answer(reply), 1_000, PLAIN)
    await cache.drain()


async def test_a_full_index_drops_the_least_recently_used_from_the_memory_tier_too(make_cache: Make) -> None:
    cache = make_cache(persistent=False, index_entries=3)
    for q in QUESTIONS[:3]:
        await put(cache, q, f"answer: {q}")
    assert await cache.lookup(request("how do i reverse a list in python"), ALICE, PLAIN) is not None
    await put(cache, QUESTIONS[3], "answer: interest")
    # "seasons" was the least recently used: it left the index and the memory tier together.
    assert len(cache.index) == 3
    assert await cache.lookup(request(QUESTIONS[1]), ALICE, PLAIN) is None
    assert await cache.lookup(request("What causes the seasons on Earth"), ALICE, PLAIN) is None
    for q in (QUESTIONS[0], QUESTIONS[2], QUESTIONS[3]):
        hit = await cache.lookup(request(q.lower().rstrip("?")), ALICE, PLAIN)
        assert hit is not None and hit.kind == "semantic"
    figures = cache.snapshot()
    assert figures["index_evictions"] == 1 and figures["index_entries"] == 3
    assert figures["index_bytes_per_entry"] > 256 * 4  # at least the vector itself


async def test_with_a_store_an_entry_that_left_the_index_is_still_an_exact_hit(make_cache: Make) -> None:
    cache = make_cache(index_entries=1, memory_entries=1)
    await put(cache, QUESTIONS[0], "first")
    await put(cache, QUESTIONS[1], "second")
    hit = await cache.lookup(request(QUESTIONS[0]), ALICE, PLAIN)
    assert hit is not None and hit.kind == "exact" and hit.response.content == "first"


async def test_the_write_queue_is_bounded_and_counts_what_it_drops(store: Store, clock: FakeClock) -> None:
    tier = StoreTier(store, clock=clock, max_bytes=0, max_queue=3, autostart=False)
    entries = [Entry(f"k{i}", "p", "user:alice", "alice", "m", answer(), 1, 1.0, 0.0) for i in range(5)]
    for entry in entries:
        tier.put(entry, None, None)  # never blocks, whatever the queue holds
    tier.touch("k0", 2.0)
    tier.delete(["k4"], "invalidated")  # deletes are always kept
    assert tier.dropped == 3
    tier.flush()
    assert tier.get("k0") is not None and tier.get("k2") is not None and tier.get("k3") is None
    tier.close()


async def test_dropped_writes_are_reported_and_answers_still_served(store: Store, clock: FakeClock) -> None:
    cache = AnswerCache(CacheConfig(write_queue=1), store, clock=clock, embedder=BuiltinEmbedder(), start_writer=False)
    try:
        for q in QUESTIONS:  # the writer has not started: the queue fills at one
            await cache.store(request(q), ALICE, answer(q), 1, PLAIN)
        await asyncio.gather(*list(cache._tasks))
        assert cache.snapshot()["dropped_writes"] == len(QUESTIONS) - 1
        hit = await cache.lookup(request(QUESTIONS[3]), ALICE, PLAIN)  # from the memory tier
        assert hit is not None and hit.response.content == QUESTIONS[3]
    finally:
        await cache.aclose()


async def test_start_up_loads_the_snapshot_and_drops_what_the_store_lost(make_cache: Make, store: Store) -> None:
    first = make_cache()
    await put(first, "Is it safe to eat raw eggs?", "Mostly.")
    await put(first, "Why is the sky blue?", "Rayleigh scattering.", caller=Caller(user="bob"))
    await first.aclose()
    assert first.snapshot_path is not None and first.snapshot_path.exists()
    assert invalidate(store, user="bob") == 1  # gone from the store after the snapshot was written

    second = make_cache()
    assert second.tier is not None
    await asyncio.to_thread(second.tier.wait_loaded, 30)
    assert len(second.index) == 1
    hit = await second.lookup(request("is it safe to eat raw eggs"), ALICE, PLAIN)
    assert hit is not None and hit.kind == "semantic" and hit.response.content == "Mostly."
    assert await second.lookup(request("why is the sky blue"), Caller(user="bob"), PLAIN) is None


async def test_a_corrupt_snapshot_is_rebuilt_from_the_store(make_cache: Make) -> None:
    first = make_cache()
    await put(first, "Is it safe to eat raw eggs?", "Mostly.")
    await first.aclose()
    assert first.snapshot_path is not None
    first.snapshot_path.write_bytes(b"garbage")
    second = make_cache()
    await second.drain()
    hit = await second.lookup(request("is it safe to eat raw eggs"), ALICE, PLAIN)
    assert hit is not None and hit.kind == "semantic"


async def test_adding_runs_off_the_event_loop_and_a_busy_index_never_holds_up_a_lookup(make_cache: Make) -> None:
    # The index in the gateway's own process (an embedder other than the built-in one keeps it there).
    cache = make_cache(persistent=False, semantic_process=False)
    loop_thread = threading.current_thread()
    adders: list[threading.Thread] = []
    real_add = cache.index.add

    def add(*args: Any, **kwargs: Any) -> Any:
        adders.append(threading.current_thread())
        return real_add(*args, **kwargs)

    cache.index.add = add  # type: ignore[method-assign]
    for q in QUESTIONS:
        await cache.store(request(q), ALICE, answer(q), 1, PLAIN)
    await cache.drain()
    assert len(adders) == len(QUESTIONS) and loop_thread not in adders

    # Another thread holds the index (a long add): the loop goes on, the search waits its turn off the loop.
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with cache.index._lock:
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    lookup = asyncio.ensure_future(cache.lookup(request("why is the sky blue"), ALICE, PLAIN))
    ticks = 0
    while not lookup.done() and ticks < 20:
        await asyncio.sleep(0.01)  # the loop is free while the index is busy
        ticks += 1
    assert not lookup.done()
    release.set()
    hit = await lookup
    holder.join()
    assert hit is not None and hit.response.content == "Why is the sky blue?"


async def test_concurrent_lookups_and_stores_in_any_order_keep_answers_apart(make_cache: Make) -> None:
    # Nothing passes from a lookup to its store: interleaved calls cannot swap answers.
    cache = make_cache(persistent=False)
    callers = [Caller(user=f"u{i}") for i in range(len(QUESTIONS))]
    requests = [request(q) for q in QUESTIONS]
    assert not any(await asyncio.gather(*(cache.lookup(r, c, PLAIN) for r, c in zip(requests, callers, strict=True))))
    for i in reversed(range(len(QUESTIONS))):
        await cache.store(request(QUESTIONS[i]), callers[i], answer(f"for {i}"), 1, PLAIN)
    await cache.drain()
    for i, q in enumerate(QUESTIONS):
        hit = await cache.lookup(request(q.lower().rstrip("?")), callers[i], PLAIN)
        assert hit is not None and hit.response.content == f"for {i}"
        other = callers[(i + 1) % len(callers)]
        assert await cache.lookup(request(q), other, PLAIN) is None
