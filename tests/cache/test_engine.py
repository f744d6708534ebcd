"""The cache through a real gateway: fewer upstream calls, records, streams, the provider embedder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from axtui.bus import CallRecorded
from axtui.engine.compose import build_gateway
from axtui.engine.gateway import CallOptions, Gateway
from axtui.ports import CacheDirective
from axtui.types import Caller, CallRecord

from .helpers import CountingProvider, request, settings_for

ALICE = Caller(user="alice")


@pytest.fixture
async def gateway() -> AsyncIterator[Callable[..., Any]]:
    made: list[Gateway] = []

    async def factory(**cache: Any) -> tuple[Gateway, CountingProvider, list[CallRecord]]:
        up = CountingProvider()
        gw = await build_gateway(settings_for(up, **cache), providers={up.name: up})
        records: list[CallRecord] = []
        gw.bus.subscribe(lambda ev: records.append(ev.record) if isinstance(ev, CallRecorded) else None)
        made.append(gw)
        return gw, up, records

    yield factory
    for gw in made:
        await gw.aclose()


async def test_a_repeated_question_reaches_upstream_once(gateway: Any) -> None:
    gw, up, records = await gateway()
    first = await gw.call(request("What is the capital of France?"), ALICE)
    second = await gw.call(request("What is the capital of France?"), ALICE)
    assert up.calls == 1
    assert second.response.content == first.response.content
    assert second.response.id != first.response.id  # each call keeps its own id
    assert [r.cache for r in records] == ["miss", "exact"]
    assert records[1].cost_nanos == 0
    assert records[1].saved_nanos == records[0].cost_nanos
    other = await gw.call(request("What is the capital of France?"), Caller(user="bob"))
    assert other.record.cache == "miss" and up.calls == 2


async def test_a_semantic_hit_is_recorded_with_its_similarity(gateway: Any) -> None:
    gw, up, _ = await gateway()
    await gw.call(request("In Git, how do I undo the last commit?"), ALICE)
    await gw.cache.drain()
    hit = await gw.call(request("How do I undo the last commit in Git?"), ALICE)
    assert hit.record.cache == "semantic"
    assert hit.record.similarity is not None and 0.9 <= hit.record.similarity < 1
    assert up.calls == 1


async def test_streamed_and_plain_requests_share_an_entry_and_hits_replay_as_a_valid_stream(gateway: Any) -> None:
    gw, up, _ = await gateway()
    streamed = gw.stream(request("Explain TCP.", stream=True), ALICE)
    text = "".join([c.delta async for c in streamed])
    await gw.cache.drain()
    plain = await gw.call(request("Explain TCP."), ALICE)
    assert plain.record.cache == "exact" and plain.response.content == text
    replay = gw.stream(request("Explain TCP.", stream=True), ALICE)
    chunks = [c async for c in replay]
    assert replay.record.cache == "exact" and up.calls == 1
    assert "".join(c.delta for c in chunks) == text
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens > 0
    assert all(c.id == replay.record.request_id for c in chunks)


async def test_a_stream_cut_short_is_not_stored(gateway: Any) -> None:
    gw, up, _ = await gateway()
    stream = gw.stream(request("Tell me a long story."), ALICE)
    async for _chunk in stream:
        break
    await stream.aclose()
    await gw.cache.drain()
    again = await gw.call(request("Tell me a long story."), ALICE)
    assert again.record.cache == "miss" and up.calls == 2


async def test_directives_through_the_engine(gateway: Any) -> None:
    gw, up, _ = await gateway()
    no_store = CallOptions(cache=CacheDirective.parse("no-store"))
    await gw.call(request("q"), ALICE, no_store)
    await gw.call(request("q"), ALICE, no_store)
    assert up.calls == 2
    await gw.call(request("q"), ALICE)
    assert (await gw.call(request("q"), ALICE, CallOptions(cache=CacheDirective.parse("no-cache")))).record.cache == "miss"
    assert (await gw.call(request("q"), ALICE)).record.cache == "exact"


async def test_the_provider_embedder_goes_through_the_gateway_and_is_recorded(gateway: Any) -> None:
    gw, up, records = await gateway(embedder="provider", embedder_model="emb", threshold=0.85)
    await gw.call(request("In Python, how do I read a file line by line?"), ALICE)
    await gw.cache.drain()
    hit = await gw.call(request("How do I read a file line by line in Python?"), ALICE)
    assert hit.record.cache == "semantic"
    assert up.embed_calls >= 1
    embeds = [r for r in records if r.endpoint == "embeddings"]
    assert embeds and all(r.user == "alice" and r.status == "ok" for r in embeds)


async def test_a_cache_switched_off_is_not_consulted(gateway: Any) -> None:
    gw, up, _ = await gateway(enabled=False)
    await gw.call(request("q"), ALICE)
    await gw.call(request("q"), ALICE)
    assert up.calls == 2


async def test_naming_the_deployment_or_an_alias_keeps_the_models_cache_scope(gateway: Any) -> None:
    gw, _, _ = await gateway(scope="global", models={"m": {"scope": "user"}})
    gw.catalog.aliases["smart"] = ["m"]
    bob = Caller(user="bob")
    for name in ("up/m", "smart"):
        question = f"What is in alice's private notes, asked as {name}?"
        await gw.call(request(question, model=name), ALICE)
        await gw.cache.drain()
        again = await gw.call(request(question, model=name), ALICE)
        theirs = await gw.call(request(question, model=name), bob)
        assert (again.record.cache, theirs.record.cache) == ("exact", "miss"), name
