"""The cache as the engine uses it: hits, scopes, semantic matching, TTL, eviction, corruption."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update

from axtui.cache import AnswerCache, clear, invalidate, stats
from axtui.clock import FakeClock
from axtui.ports import CacheDirective
from axtui.store import Store
from axtui.store.markers import ChangeMarker
from axtui.store.tables_cache import CacheEntry
from axtui.types import Caller

from .helpers import answer, conversation, request

Make = Callable[..., AnswerCache]
ALICE, BOB = Caller(user="alice"), Caller(user="bob")
PLAIN = CacheDirective()


async def put(cache: AnswerCache, req: object, text: str = "Paris.", caller: Caller = ALICE, cost: int | None = 1_000,
              directive: CacheDirective = PLAIN) -> None:
    await cache.store(req, caller, answer(text), cost, directive)  # type: ignore[arg-type]
    await cache.drain()


async def test_the_same_question_twice_is_paid_once(make_cache: Make) -> None:
    cache = make_cache()
    assert await cache.lookup(request(), ALICE, PLAIN) is None
    await put(cache, request(), cost=4_200)
    hit = await cache.lookup(request(stream=True, user="x"), ALICE, PLAIN)
    assert hit is not None
    assert (hit.kind, hit.similarity, hit.saved_nanos, hit.response.content) == ("exact", None, 4_200, "Paris.")
    assert hit.response.provider == "p" and hit.response.model == "m-1"


async def test_a_hit_is_a_copy_the_engine_may_change(make_cache: Make) -> None:
    cache = make_cache()
    await put(cache, request())
    first = await cache.lookup(request(), ALICE, PLAIN)
    assert first is not None
    first.response.content, first.response.id = "changed", "chatcmpl-1"
    again = await cache.lookup(request(), ALICE, PLAIN)
    assert again is not None and again.response.content == "Paris." and again.response.id == ""


async def test_user_scope_by_default(make_cache: Make) -> None:
    cache = make_cache()
    await put(cache, request())
    assert await cache.lookup(request(), BOB, PLAIN) is None
    assert await cache.lookup(request("what is the capital of france"), BOB, PLAIN) is None


async def test_key_and_global_scopes(make_cache: Make) -> None:
    cache = make_cache(models={"shared": {"scope": "global"}, "team": {"scope": "key"}})
    await put(cache, request(model="shared"))
    assert await cache.lookup(request(model="shared"), BOB, PLAIN) is not None
    await put(cache, request(model="team"), caller=Caller(user="alice", key="k1"))
    assert await cache.lookup(request(model="team"), Caller(user="bob", key="k1"), PLAIN) is not None
    assert await cache.lookup(request(model="team"), Caller(user="alice", key="k2"), PLAIN) is None


async def test_a_near_duplicate_is_a_semantic_hit_with_its_similarity(make_cache: Make) -> None:
    cache = make_cache()
    await put(cache, request("In Python, how do I read a file line by line?"), cost=77)
    hit = await cache.lookup(request("How do I read a file line by line in Python?"), ALICE, PLAIN)
    assert hit is not None and hit.kind == "semantic"
    assert hit.similarity is not None and 0.9 <= hit.similarity < 1.0
    assert hit.saved_nanos == 77


@pytest.mark.parametrize(
    "other",
    [
        {"model": "n"},
        {"temperature": 0.5},
        {"max_tokens": 10},
    ],
)
async def test_semantic_matching_never_crosses_models_or_parameters(make_cache: Make, other: dict[str, object]) -> None:
    cache = make_cache()
    await put(cache, request("What is the capital of France?"))
    assert await cache.lookup(request("what's the capital of france", **other), ALICE, PLAIN) is None


async def test_guards_hold_whatever_the_threshold(make_cache: Make) -> None:
    cache = make_cache(threshold=0.2)
    await put(cache, request("What is the capital of France?"))
    await put(cache, request("Is it safe to eat raw eggs?"), text="Mostly.")
    await put(cache, request("Convert 100 Fahrenheit to Celsius"), text="37.8")
    assert await cache.lookup(request("What is the capital of Germany?"), ALICE, PLAIN) is None
    assert await cache.lookup(request("Is it not safe to eat raw eggs?"), ALICE, PLAIN) is None
    assert await cache.lookup(request("Convert 200 Fahrenheit to Celsius"), ALICE, PLAIN) is None
    # Numbers and negations are part of the partition: those two were never
    # even compared; the name guard blocked the third.
    assert cache.counters.guard_blocks == 1


async def test_the_whole_conversation_is_matched_not_only_the_last_turn(make_cache: Make) -> None:
    cache = make_cache()
    stored = conversation(("system", "Answer in one word."), ("user", "What is the capital of France?"))
    await put(cache, stored)
    essay = conversation(("system", "Write a long essay with the history of each place."),
                         ("user", "what is the capital of france"))
    assert await cache.lookup(essay, ALICE, PLAIN) is None
    same = conversation(("system", "answer in one word"), ("user", "what is the capital of france"))
    hit = await cache.lookup(same, ALICE, PLAIN)
    assert hit is not None and hit.kind == "semantic"
    assert await cache.lookup(request("What is the capital of France?"), ALICE, PLAIN) is None


async def test_ttl_with_a_fake_clock(make_cache: Make, clock: FakeClock) -> None:
    cache = make_cache(ttl_s=60)
    await put(cache, request())
    clock.advance(59)
    assert await cache.lookup(request(), ALICE, PLAIN) is not None
    clock.advance(2)
    assert await cache.lookup(request(), ALICE, PLAIN) is None
    assert await cache.lookup(request("what is the capital of france"), ALICE, PLAIN) is None
    fresh = make_cache(ttl_s=60)  # nothing in memory: the stored row has expired too
    assert await fresh.lookup(request(), ALICE, PLAIN) is None


async def test_expired_rows_are_purged_and_counted(make_cache: Make, clock: FakeClock, store: Store) -> None:
    cache = make_cache(ttl_s=1000)
    await put(cache, request("a question"), directive=CacheDirective.parse("ttl=10"))
    await put(cache, request("another question"))
    clock.advance(11)
    assert cache.tier is not None
    assert await asyncio.to_thread(cache.tier.purge_expired) == 1
    figures = stats(store)
    assert (figures.entries, figures.expirations) == (1, 1)


async def test_zero_ttl_keeps_entries_until_evicted(make_cache: Make, clock: FakeClock) -> None:
    cache = make_cache(ttl_s=0)
    await put(cache, request())
    clock.advance(10 * 365 * 86400)
    assert await cache.lookup(request(), ALICE, PLAIN) is not None


async def test_a_request_ttl_bounds_the_age_of_what_it_accepts(make_cache: Make, clock: FakeClock) -> None:
    cache = make_cache()
    await put(cache, request())
    clock.advance(100)
    assert await cache.lookup(request(), ALICE, CacheDirective.parse("ttl=50")) is None
    assert await cache.lookup(request("what is the capital of france"), ALICE, CacheDirective.parse("ttl=50")) is None
    assert await cache.lookup(request(), ALICE, CacheDirective.parse("ttl=200")) is not None


async def test_no_cache_and_no_store(make_cache: Make) -> None:
    cache = make_cache()
    await put(cache, request("q1"), directive=CacheDirective.parse("no-store"))
    assert await cache.lookup(request("q1"), ALICE, PLAIN) is None
    await put(cache, request("q2"), directive=CacheDirective.parse("no-cache"))
    assert await cache.lookup(request("q2"), ALICE, CacheDirective.parse("no-cache")) is None
    assert await cache.lookup(request("q2"), ALICE, PLAIN) is not None


async def test_a_request_object_sent_again_changed_is_keyed_as_it_is_now(make_cache: Make) -> None:
    # An agent that keeps one request object and appends to it between calls, in one task.
    cache = make_cache(semantic=False)
    agent = request("What is the capital of France?")
    assert await cache.lookup(agent, ALICE, PLAIN) is None
    await put(cache, agent, "Paris.")
    agent.messages[0].content = "What is the capital of Italy?"
    assert await cache.lookup(agent, ALICE, PLAIN) is None
    await put(cache, agent, "Rome.")
    agent.messages[0].content = "What is the capital of Spain?"
    await put(cache, agent, "Madrid.", directive=CacheDirective.parse("no-cache"))  # a store without a lookup
    for question, expected in (("France", "Paris."), ("Italy", "Rome."), ("Spain", "Madrid.")):
        hit = await cache.lookup(request(f"What is the capital of {question}?"), ALICE, PLAIN)
        assert hit is not None and hit.response.content == expected


async def test_a_disabled_model_and_a_temperature_ceiling_bypass_the_cache(make_cache: Make) -> None:
    cache = make_cache(max_temperature=0.3, models={"off": {"enabled": False}})
    await put(cache, request(model="off"))
    assert await cache.lookup(request(model="off"), ALICE, PLAIN) is None
    await put(cache, request(temperature=0.9))
    assert await cache.lookup(request(temperature=0.9), ALICE, PLAIN) is None


async def test_the_memory_tier_is_bounded_by_entries_and_bytes(make_cache: Make) -> None:
    cache = make_cache(persistent=False, memory_entries=2)
    for q in ("one", "two", "three"):
        await put(cache, request(f"question {q}"))
    assert await cache.lookup(request("question one"), ALICE, PLAIN) is None
    assert await cache.lookup(request("question three"), ALICE, PLAIN) is not None
    assert cache.memory.evictions == 1
    small = make_cache(persistent=False, memory_bytes=2_500)
    for q in ("one", "two", "three", "four"):
        await put(small, request(f"question {q}"), text="x" * 700)
    assert small.memory.bytes <= 2_500
    assert await small.lookup(request("question one"), ALICE, PLAIN) is None
    assert await small.lookup(request("question four"), ALICE, PLAIN) is not None


def noise(seed: str, n: int = 1_000) -> str:
    """Text that does not compress, so each entry's stored size is predictable."""
    out, h = "", seed.encode()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h.hex()
    return out[:n]


async def test_the_store_tier_evicts_the_least_recently_hit_first(make_cache: Make, clock: FakeClock,
                                                                  store: Store) -> None:
    probe = make_cache(semantic=False)
    await put(probe, request("tell me about zulu"), text=noise("zulu"))
    row = stats(store).bytes  # every row below is this size, give or take a byte
    clear(store)
    bound = int(row * 3.5)  # three rows fit, a fourth does not
    cache = make_cache(store_bytes=bound, semantic=False, memory_entries=1)
    for name in ("alpha", "bravo", "charlie"):
        clock.advance(10)
        await put(cache, request(f"tell me about {name}"), text=noise(name))
    clock.advance(10)
    assert await cache.lookup(request("tell me about alpha"), ALICE, PLAIN) is not None  # a hit spares alpha
    await cache.drain()
    clock.advance(10)
    await put(cache, request("tell me about delta"), text=noise("delta"))
    figures = stats(store)
    assert (figures.entries, figures.evictions) == (3, 1)
    assert figures.bytes <= bound
    assert await cache.lookup(request("tell me about bravo"), ALICE, PLAIN) is None
    for name in ("alpha", "charlie", "delta"):
        assert await cache.lookup(request(f"tell me about {name}"), ALICE, PLAIN) is not None


async def test_answers_outlive_the_process(make_cache: Make) -> None:
    first = make_cache()
    await put(first, request("In Git, how do I undo the last commit?"), text="git reset HEAD~1")
    second = make_cache()
    await second.drain()  # the stored vectors are loaded into the new process's index
    exact = await second.lookup(request("In Git, how do I undo the last commit?"), ALICE, PLAIN)
    assert exact is not None and exact.kind == "exact"
    near = await second.lookup(request("How do I undo the last commit in Git?"), ALICE, PLAIN)
    assert near is not None and near.kind == "semantic" and near.response.content == "git reset HEAD~1"


async def test_the_stop_sequence_that_ended_an_answer_is_kept_in_memory_and_in_the_store(make_cache: Make) -> None:
    stopped = answer("Tides follow the moon, ")
    stopped.stop_sequence = "to"
    first = make_cache()
    await first.store(request(), ALICE, stopped, 1_000, PLAIN)
    await first.drain()
    hit = await first.lookup(request(), ALICE, PLAIN)
    again = await make_cache().lookup(request(), ALICE, PLAIN)  # another process reads the store's copy
    assert hit is not None and again is not None
    assert hit.response.stop_sequence == again.response.stop_sequence == "to"


async def test_a_corrupt_entry_is_a_miss_removed_and_logged(make_cache: Make, store: Store,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    await put(make_cache(), request())
    with store.engine.begin() as conn:
        conn.execute(update(CacheEntry.__table__).values(body=b"not zlib at all"))  # type: ignore[attr-defined]
    fresh = make_cache()
    with caplog.at_level(logging.WARNING, logger="axtui.cache"):
        assert await fresh.lookup(request(), ALICE, PLAIN) is None
    assert "corrupt" in caplog.text
    await fresh.drain()
    figures = stats(store)
    assert (figures.entries, figures.corrupt) == (0, 1)


async def test_an_invalidation_on_this_machine_applies_to_the_next_lookup(make_cache: Make, store: Store) -> None:
    cache = make_cache()
    await put(cache, request("question for alice"))
    await put(cache, request("question for bob"), caller=BOB)
    assert await cache.lookup(request("question for alice"), ALICE, PLAIN) is not None  # held in memory
    assert invalidate(store, user="alice") == 1
    # No poll of the store came between (it runs once a second): the marker says it at once.
    assert await cache.lookup(request("question for alice"), ALICE, PLAIN) is None
    assert await cache.lookup(request("Question for Alice!"), ALICE, PLAIN) is None
    assert await cache.lookup(request("question for bob"), BOB, PLAIN) is not None
    assert clear(store) == 1
    assert await cache.lookup(request("question for bob"), BOB, PLAIN) is None
    assert await cache.lookup(request("Question for Bob!"), BOB, PLAIN) is None


async def test_invalidation_elsewhere_reaches_a_running_cache(make_cache: Make, store: Store,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Another machine: the marker beside the store is not seen there, the store's poll finds the change.
    monkeypatch.setattr(ChangeMarker, "moved", lambda self: None)
    cache = make_cache()
    await put(cache, request("question for alice"))
    await put(cache, request("question for bob"), caller=BOB)
    assert invalidate(store, user="alice") == 1
    assert cache.tier is not None
    assert await asyncio.to_thread(cache.tier.check_generation)
    assert await cache.lookup(request("question for alice"), ALICE, PLAIN) is None
    assert await cache.lookup(request("Question for Alice!"), ALICE, PLAIN) is None
    assert await cache.lookup(request("question for bob"), BOB, PLAIN) is not None


async def test_a_failing_embedder_leaves_exact_hits_working(make_cache: Make) -> None:
    from axtui.cache import ProviderEmbedder
    from axtui.errors import ProviderServerError

    async def down(texts: list[str], caller: Caller) -> list[list[float]]:
        raise ProviderServerError("embedding model is down", provider="x")

    cache = make_cache(embedder=ProviderEmbedder("emb", down))
    await put(cache, request())
    assert await cache.lookup(request(), ALICE, PLAIN) is not None
    assert await cache.lookup(request("what is the capital of france"), ALICE, PLAIN) is None
    assert cache.counters.embed_errors >= 1


async def test_a_write_that_fails_is_logged_and_the_writer_goes_on(make_cache: Make,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    cache = make_cache()
    odd = answer("uses a tool")
    odd.tool_calls = [{"id": "c1", "arguments": object()}]  # cannot be written as JSON
    with caplog.at_level(logging.WARNING, logger="axtui.cache"):
        await cache.store(request("odd"), ALICE, odd, 1, PLAIN)
        await cache.drain()
    assert "queued writes dropped" in caplog.text
    await put(cache, request("plain"))
    fresh = make_cache()
    assert await fresh.lookup(request("plain"), ALICE, PLAIN) is not None


async def test_a_large_index_is_searched_beside_the_event_loop_with_the_same_answers(
    make_cache: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from axtui.cache import service

    # The index in the gateway's own process (an embedder other than the built-in one keeps it there).
    cache = make_cache(semantic_process=False)
    await put(cache, request("In Python, how do I read a file line by line?"), cost=77)
    searched_on: list[str] = []
    search = cache.index.search

    def recording(*args: object, **kwargs: object) -> object:
        searched_on.append(threading.current_thread().name)
        return search(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cache.index, "search", recording)
    monkeypatch.setattr(service, "_INLINE_SEARCH_ROWS", 1)  # the one entry makes the index "large"
    hit = await cache.lookup(request("How do I read a file line by line in Python?"), ALICE, PLAIN)
    assert hit is not None and hit.kind == "semantic" and hit.saved_nanos == 77
    assert await cache.lookup(request("How do I delete a file in Python?"), ALICE, PLAIN) is None
    assert len(searched_on) == 2 and all(name.startswith("ax-cache-search") for name in searched_on)


async def race_a_clear_with_the_writer(cache: AnswerCache, store: Store, monkeypatch: pytest.MonkeyPatch,
                                       *, during: bool) -> None:
    """An answer queued, then ``ax cache clear`` committing before its write (or while it is written):
    it is gone afterwards, from the store and from the cache."""
    from axtui.cache import persist

    original = persist.upsert_entries
    cleared: list[int] = []

    def upsert(conn: Any, rows: list[dict[str, Any]]) -> None:
        if not rows or cleared:
            original(conn, rows)
            return
        if not during:
            cleared.append(clear(store))  # committed before this transaction writes
            original(conn, rows)
            return
        original(conn, rows)
        # The clear starts while this transaction holds its rows; it must wait for it, then remove them.
        racer = threading.Thread(target=lambda: cleared.append(clear(store)))
        racer.start()
        racer.join(0.3)

    monkeypatch.setattr(persist, "upsert_entries", upsert)
    await put(cache, request("a question asked just before the clear"))
    for _ in range(100):
        if cleared:
            break
        await asyncio.sleep(0.02)
    assert stats(store).entries == 0
    assert await cache.lookup(request("a question asked just before the clear"), ALICE, PLAIN) is None


@pytest.mark.parametrize("during", [False, True], ids=["before-the-write", "during-the-write"])
async def test_an_answer_queued_before_a_clear_never_comes_back(make_cache: Make, store: Store,
                                                               monkeypatch: pytest.MonkeyPatch, during: bool) -> None:
    await race_a_clear_with_the_writer(make_cache(), store, monkeypatch, during=during)


@pytest.mark.parametrize("size", [0, 40, 300, 5_000, 40_000])
def test_a_stored_answer_reads_back_whole_whatever_its_length(size: int) -> None:
    from axtui.cache.entry import decode_response, encode_response

    text = " ".join(f"word{i % 97}" for i in range(size // 6))
    response = answer(text)
    response.tool_calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    back = decode_response(encode_response(response))
    assert (back.content, back.tool_calls, back.usage, back.provider) == (text, response.tool_calls, response.usage, "p")
