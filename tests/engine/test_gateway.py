"""The pipeline as a caller sees it: answers, fallbacks, records, streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from axtui.bus import CallRecorded
from axtui.config import ProviderConfig, Settings
from axtui.engine import CallOptions, Gateway
from axtui.engine.compose import build_gateway
from axtui.errors import (
    ContextTooLong,
    ProviderRateLimited,
    ProviderServerError,
    RateLimited,
    StreamInterrupted,
    UnknownModel,
)
from axtui.ports import Ticket
from axtui.store import Call, Store
from axtui.types import Caller, CallRecord
from tests.engine.fakes import ScriptedProvider
from tests.support import chat_request


def _settings(*names: str, max_attempts: int = 3) -> Settings:
    return Settings.model_validate(
        {
            "providers": [{"name": n, "kind": "openai", "models": ["m"], "max_retries": 0} for n in names],
            "routing": {"max_attempts": max_attempts},
            "cache": {"enabled": False},
        }
    )


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    gateways: list[Gateway] = []

    async def factory(*providers: ScriptedProvider, **kw: Any) -> tuple[Gateway, list[CallRecord]]:
        settings = _settings(*(p.name for p in providers), **kw)
        gw = await build_gateway(settings, providers={p.name: p for p in providers})
        # Only the pipeline is under test here: no budgets or limits from the store.
        records: list[CallRecord] = []
        gw.bus.subscribe(lambda ev: records.append(ev.record) if isinstance(ev, CallRecorded) else None)
        gateways.append(gw)
        return gw, records

    yield factory
    for gw in gateways:
        await gw.aclose()


async def test_answer_is_recorded_with_provider_and_tokens(make: Any) -> None:
    gw, records = await make(ScriptedProvider("a"))
    result = await gw.call(chat_request(), Caller(user="alice", tags=("team-x",)))
    assert result.response.content.startswith("a ")
    [rec] = records
    assert (rec.status, rec.provider, rec.user, rec.tags) == ("ok", "a", "alice", ("team-x",))
    assert (rec.input_tokens, rec.output_tokens, rec.attempts) == (10, 5, 1)
    assert result.response.id == rec.request_id


async def test_retryable_failure_falls_back_to_the_next_deployment(make: Any) -> None:
    a = ScriptedProvider("a", [ProviderServerError("boom", provider="a", http_status=500)])
    gw, records = await make(a, ScriptedProvider("b"))
    response = await gw.chat(chat_request())
    assert response.provider == "b"
    assert records[-1].attempts == 2 and records[-1].provider == "b"


async def test_context_too_long_moves_on_but_bad_auth_of_all_fails(make: Any) -> None:
    a = ScriptedProvider("a", [ContextTooLong("too long", provider="a", http_status=400)])
    gw, _ = await make(a, ScriptedProvider("b"))
    assert (await gw.chat(chat_request())).provider == "b"


async def test_every_failed_call_is_recorded_with_its_error(make: Any) -> None:
    err = [ProviderServerError("down", provider="a", http_status=503)] * 5
    gw, records = await make(ScriptedProvider("a", list(err)))
    with pytest.raises(ProviderServerError):
        await gw.chat(chat_request())
    [rec] = records
    assert rec.status == "error" and rec.error_class == "ProviderServerError" and rec.http_status == 503


async def test_upstream_429_is_retried_honouring_retry_after(make: Any) -> None:
    a = ScriptedProvider("a", [ProviderRateLimited("slow down", provider="a", retry_after=0.01)])
    a.config = a.config.model_copy(update={"max_retries": 2})
    gw, records = await make(a)
    assert (await gw.chat(chat_request())).provider == "a"
    assert records[-1].attempts == 2


async def test_unknown_model_lists_what_is_served(make: Any) -> None:
    gw, records = await make(ScriptedProvider("a"))
    with pytest.raises(UnknownModel) as info:
        await gw.chat(chat_request(model="nope"))
    assert "m" in info.value.served and "nope" in str(info.value)
    assert records[-1].status == "error"


async def test_rate_limited_call_is_refused_and_recorded(make: Any) -> None:
    gw, records = await make(ScriptedProvider("a"))

    class Refuse:
        async def admit(self, subjects: Any, tokens: int) -> Ticket:
            raise RateLimited("user:alice is over 1/minute", retry_after=12.0, scope="user:alice")

        async def settle(self, ticket: Ticket, tokens: int) -> None:
            raise AssertionError("a refused call has nothing to settle")

    gw.limiter = Refuse()
    with pytest.raises(RateLimited) as info:
        await gw.chat(chat_request(), Caller(user="alice"))
    assert info.value.retry_after == 12.0
    assert records[-1].status == "rate_limited" and records[-1].attempts == 0


async def test_stream_yields_text_then_usage_and_records_it(make: Any) -> None:
    gw, records = await make(ScriptedProvider("a"))
    stream = gw.stream(chat_request())
    text = "".join([c.delta async for c in stream])
    assert text == "a word word word word"
    assert records[-1].status == "ok" and records[-1].output_tokens == 5 and records[-1].stream


async def test_stream_without_usage_gets_estimated_usage(make: Any) -> None:
    gw, records = await make(ScriptedProvider("a", ["no-usage"]))
    chunks = [c async for c in gw.stream(chat_request())]
    assert chunks[-1].usage is not None and chunks[-1].usage.estimated
    assert records[-1].usage_estimated and records[-1].output_tokens > 0


async def test_stream_falls_back_only_before_its_first_token(make: Any) -> None:
    early = ScriptedProvider("a", [ProviderServerError("down", provider="a")])
    gw, _ = await make(early, ScriptedProvider("b"))
    text = "".join([c.delta async for c in gw.stream(chat_request())])
    assert text.startswith("b ")

    late = ScriptedProvider("c", [("fail-after", 2, StreamInterrupted("cut", provider="c"))])
    gw2, records2 = await make(late, ScriptedProvider("d"))
    got: list[str] = []
    with pytest.raises(StreamInterrupted):
        async for c in gw2.stream(chat_request()):
            got.append(c.delta)
    assert "".join(got) == "c word"  # no second answer spliced after the first one's tokens
    assert records2[-1].status == "error" and records2[-1].provider == "c"


async def test_consumer_closing_a_stream_cancels_upstream_and_is_recorded(make: Any) -> None:
    p = ScriptedProvider("a", words=50)
    gw, records = await make(p)
    stream = gw.stream(chat_request())
    async for _ in stream:
        break
    await stream.aclose()
    assert p.closed_streams == 1
    assert records[-1].status == "cancelled" and records[-1].output_tokens > 0


async def test_cancelled_task_is_recorded(make: Any) -> None:
    gw, records = await make(ScriptedProvider("a", ["hang"]))
    task = asyncio.create_task(gw.chat(chat_request()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert records[-1].status == "cancelled"


async def test_calls_land_in_the_store_after_close() -> None:
    store = Store.open()
    settings = _settings("a")
    gw = await build_gateway(settings, store=store, providers={"a": ScriptedProvider("a")})
    for i in range(25):
        await gw.chat(chat_request(text=f"q{i}"), Caller(user="bob"))
    with pytest.raises(UnknownModel):
        await gw.chat(chat_request(model="zzz"))
    await gw.aclose()
    from sqlmodel import select

    with store.session() as s:
        rows = s.exec(select(Call)).all()
    store.close()
    assert len(rows) == 26
    assert sum(r.status == "ok" for r in rows) == 25
    assert all(r.prompt is None for r in rows)  # prompts are stored only when asked for


async def test_max_wait_waits_for_a_rate_limit_instead_of_failing(make: Any) -> None:
    gw, _ = await make(ScriptedProvider("a"))
    tries = []

    class OnceLimited:
        async def admit(self, subjects: Any, tokens: int) -> Ticket:
            tries.append(1)
            if len(tries) == 1:
                raise RateLimited("wait a bit", retry_after=0.01)
            return Ticket()

        async def settle(self, ticket: Ticket, tokens: int) -> None:
            return None

    gw.limiter = OnceLimited()
    assert (await gw.chat(chat_request(), options=CallOptions(max_wait_s=1.0))).provider == "a"
    assert len(tries) == 2


def test_sim_kind_builds_the_demo_fleet_catalog() -> None:
    from axtui.engine.compose import build_catalog, effective_providers

    settings = effective_providers(Settings())
    catalog = build_catalog(settings)
    providers = {d.provider for d in catalog.deployments}
    assert len(providers) >= 4
    assert {"fast", "smart", "cheap"} <= set(catalog.names())
    multi = [m for m in catalog.models() if len({d.provider for d in catalog.resolve(m)}) > 1]
    assert multi, "several deployments serve at least one logical model"
    assert ProviderConfig  # imported for type use


async def test_embeddings_are_recorded_and_fall_back(make: Any) -> None:
    a = ScriptedProvider("a", [ProviderServerError("down", provider="a")])
    gw, records = await make(a, ScriptedProvider("b"))
    out = await gw.embed(["one", "two"], "m", Caller(user="eve"))
    assert len(out.vectors) == 2
    [rec] = records
    assert (rec.endpoint, rec.provider, rec.user, rec.attempts, rec.status) == ("embeddings", "b", "eve", 2, "ok")


async def test_demo_fleet_serves_embeddings_apart_from_chat() -> None:
    from axtui.engine.compose import build_catalog, effective_providers

    settings = effective_providers(Settings())
    catalog = build_catalog(settings)
    assert "text-embedding-3-small" in catalog.names()
    assert catalog.resolve_embedding("text-embedding-3-small")
    gw = await build_gateway(settings, record=False)
    try:
        out = await gw.embed(["hello", "world"], "text-embedding-3-small")
    finally:
        await gw.aclose()
    assert len(out.vectors) == 2 and len(out.vectors[0]) > 10


async def test_embed_call_returns_the_record_with_the_callers_request_id(make: Any) -> None:
    gw, records = await make(ScriptedProvider("a"))
    done = await gw.embed_call(["x"], "m", Caller(user="eve"), CallOptions(request_id="emb-1"))
    assert done.record is records[-1]
    assert (done.record.request_id, done.record.provider, done.record.http_status) == ("emb-1", "a", 200)


def test_a_deployments_entry_refines_a_listed_model() -> None:
    from axtui.engine.compose import build_catalog

    settings = Settings.model_validate({
        "providers": [{"name": "a", "kind": "openai", "models": ["m", "n"], "region": "us"}],
        "deployments": [{"model": "m", "provider": "a", "weight": 3, "region": "eu", "context_window": 8000}],
    })
    [dep] = build_catalog(settings).resolve("m")
    assert (dep.weight, dep.region, dep.context_window) == (3, "eu", 8000)
    assert len(build_catalog(settings).deployments) == 2


async def test_bookkeeping_finishes_at_once_or_in_the_background_and_close_waits_for_it(make: Any) -> None:
    gw, _ = await make(ScriptedProvider("a", ["ok"]))
    done: list[object] = []

    async def quick() -> None:
        done.append("quick")

    gw._later(quick())
    assert done == ["quick"]  # nothing to wait for: finished before `_later` returned

    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def slow() -> None:
        await asyncio.sleep(0)
        done.append(await gate)
        await asyncio.sleep(0.01)

    async def stuck() -> None:
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            done.append("cancelled")
            raise

    gw._later(stuck())
    (task,) = gw._inflight
    task.cancel()
    await asyncio.sleep(0)
    assert done == ["quick", "cancelled"]  # a cancelled task cancels the work it carries

    gw._later(slow())
    gate.set_result("slow")
    closing = asyncio.ensure_future(gw.aclose())
    await asyncio.sleep(0.005)
    assert done == ["quick", "cancelled", "slow"]  # resumed with what it waited for
    await closing
    assert not gw._inflight
