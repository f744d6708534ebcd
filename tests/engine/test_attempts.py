"""One attempt loop for plain calls, streams and embeddings: what each attempt reserves and settles.

A fake limiter and budget book record every ticket and reservation, so the
tests see that each attempt holds exactly one of each, that a failed
attempt gives its reservation back, and that a stream cut after its first
token, or cancelled, pays for what it produced and settles its provider
ticket, as a plain call does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from axtui.config import Settings
from axtui.engine import Gateway
from axtui.engine.compose import build_gateway
from axtui.errors import ProviderServerError, StreamInterrupted
from axtui.ports import Subject, Ticket
from axtui.types import Caller, ChatRequest, Deployment
from tests.engine.fakes import ScriptedProvider


class CountingLimiter:
    """Admits everything; remembers what each provider ticket was settled with."""

    has_provider_limits = True

    def __init__(self) -> None:
        self.admitted: list[Ticket] = []
        self.settled: list[tuple[Ticket, int]] = []

    async def admit(self, subjects: Sequence[Subject], tokens: int) -> Ticket:
        ticket = Ticket(tuple(subjects), tokens)
        self.admitted.append(ticket)
        return ticket

    async def settle(self, ticket: Ticket, tokens: int) -> None:
        self.settled.append((ticket, tokens))

    def provider_settles(self) -> list[int]:
        return [tokens for t, tokens in self.settled if t.subjects[0][0] == "provider"]

    async def aclose(self) -> None:
        return None


class CountingBudgets:
    """Reserves everything; remembers how each reservation ended."""

    def __init__(self) -> None:
        self.reserved: list[str] = []
        self.ended: dict[int, tuple[str, int | None]] = {}

    async def reserve(self, caller: Caller, deployment: Deployment, estimate_nanos: int | None) -> int:
        self.reserved.append(deployment.provider)
        return len(self.reserved) - 1

    async def settle(self, reservation: int, actual_nanos: int | None) -> None:
        assert reservation not in self.ended, "settled twice"
        self.ended[reservation] = ("settled", actual_nanos)

    async def release(self, reservation: int) -> None:
        assert reservation not in self.ended, "released twice"
        self.ended[reservation] = ("released", None)


def _request() -> ChatRequest:
    return ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hello"}]})


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    gateways: list[Gateway] = []

    async def factory(*providers: ScriptedProvider) -> tuple[Gateway, CountingLimiter, CountingBudgets]:
        settings = Settings.model_validate({
            "providers": [{"name": p.name, "kind": "openai", "models": ["m"], "max_retries": 0} for p in providers],
            "cache": {"enabled": False},
            "prices": {f"{p.name}/m": {"input": "1", "output": "2"} for p in providers},
        })
        gw = await build_gateway(settings, providers={p.name: p for p in providers})
        limiter, budgets = CountingLimiter(), CountingBudgets()
        gw.limiter, gw.budgets = limiter, budgets
        gateways.append(gw)
        return gw, limiter, budgets

    yield factory
    for gw in gateways:
        await gw.aclose()


async def test_a_plain_call_holds_one_reservation_per_attempt_and_releases_the_failed_one(make: Any) -> None:
    gw, limiter, budgets = await make(ScriptedProvider("a", [ProviderServerError("boom")]), ScriptedProvider("b"))
    result = await gw.call(_request())
    await asyncio.sleep(0)
    assert result.record.provider == "b" and result.record.attempts == 2
    assert budgets.reserved == ["a", "b"]
    assert budgets.ended[0] == ("released", None)
    assert budgets.ended[1][0] == "settled" and budgets.ended[1][1]
    assert limiter.provider_settles() == [0, 15]  # a: nothing used; b: its real tokens


async def test_a_stream_falls_back_before_its_first_token_like_a_plain_call(make: Any) -> None:
    gw, limiter, budgets = await make(ScriptedProvider("a", [ProviderServerError("boom")]), ScriptedProvider("b"))
    text = (await gw.stream(_request()).collect()).content
    await asyncio.sleep(0)
    assert text.startswith("b ")
    assert budgets.reserved == ["a", "b"]
    assert budgets.ended[0] == ("released", None) and budgets.ended[1][0] == "settled"
    assert limiter.provider_settles() == [0, 15]


async def test_a_stream_cut_after_its_first_token_pays_and_settles_its_provider_ticket(make: Any) -> None:
    gw, limiter, budgets = await make(
        ScriptedProvider("a", [("fail-after", 2, StreamInterrupted("cut"))]), ScriptedProvider("b"))
    stream = gw.stream(_request())
    with pytest.raises(StreamInterrupted):
        await stream.collect()
    assert budgets.reserved == ["a"]  # tokens reached the caller: no fallback
    state, cost = budgets.ended[0]
    assert state == "settled" and cost and stream.record.cost_nanos == cost
    (tokens,) = limiter.provider_settles()
    assert tokens == stream.record.input_tokens + stream.record.output_tokens > 0


async def test_a_cancelled_stream_pays_what_it_produced_and_settles_its_provider_ticket(make: Any) -> None:
    gw, limiter, budgets = await make(ScriptedProvider("a", ["hang"]))
    stream = gw.stream(_request())
    await stream.start()
    await stream.aclose()
    assert stream.record.status == "cancelled"
    state, cost = budgets.ended[0]
    assert state == "settled" and cost
    (tokens,) = limiter.provider_settles()
    assert tokens > 0


async def test_a_stream_cancelled_before_its_first_token_releases_everything(make: Any) -> None:
    gw, limiter, budgets = await make(ScriptedProvider("a", ["hang"], words=1))

    async def consume() -> None:
        await gw.stream(_request()).collect()

    class Slow(ScriptedProvider):
        async def stream(self, request: ChatRequest, deployment: Deployment) -> AsyncIterator[Any]:  # type: ignore[override]
            await asyncio.sleep(3600)
            yield  # pragma: no cover

    gw.providers["a"] = Slow("a")
    task = asyncio.ensure_future(consume())
    for _ in range(50):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert budgets.ended == {0: ("released", None)}
    assert limiter.provider_settles() == [0]


async def test_embeddings_go_through_the_same_loop(make: Any) -> None:
    gw, limiter, budgets = await make(ScriptedProvider("a", [ProviderServerError("boom")]), ScriptedProvider("b"))
    result = await gw.embed_call(["one", "two"], "m")
    await asyncio.sleep(0)
    assert result.record.provider == "b" and result.record.attempts == 2
    assert budgets.reserved == ["a", "b"] and budgets.ended[0] == ("released", None)
    assert budgets.ended[1][0] == "settled"
    assert limiter.provider_settles() == [0, 2]


async def test_a_deployment_that_cannot_serve_a_parameter_passes_the_call_on(make: Any) -> None:
    from axtui.providers._wire import UnsupportedParameter

    refusal = UnsupportedParameter("n is not supported by provider 'a'", param="n", provider="a")
    gw, _, budgets = await make(ScriptedProvider("a", [refusal]), ScriptedProvider("b"))
    result = await gw.call(_request())
    assert result.record.provider == "b" and result.record.attempts == 2
    assert budgets.ended[0] == ("released", None)
    alone, _, _ = await make(ScriptedProvider("c", [refusal]))
    with pytest.raises(UnsupportedParameter) as info:
        await alone.call(_request())
    assert info.value.param == "n" and info.value.record is not None and info.value.record.status == "error"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_request_only_its_native_api_carries_skips_providers_that_translate(make: Any,
                                                                                   stream: bool) -> None:
    from axtui.providers._wire import UnsupportedParameter
    from axtui.types import NativeRequest

    class Native(ScriptedProvider):
        def speaks(self, api: str, model: str = "") -> bool:
            return api == "responses"

    def hosted() -> ChatRequest:
        return _request().with_native(NativeRequest(api="responses", body={"input": "hello"},
                                                    problem="tools.0: 'web_search' tools are hosted",
                                                    param="tools.0.type"))

    translating, native = ScriptedProvider("a"), Native("b")
    gw, _, budgets = await make(translating, native)
    if stream:
        served = gw.stream(hosted())
        await served.collect()
        record = served.record
    else:
        record = (await gw.call(hosted())).record
    assert record.provider == "b" and translating.calls == 0 and budgets.ended[0] == ("released", None)
    # A request the translation carries whole is served by either (here the first).
    fresh, _, _ = await make(ScriptedProvider("a"), Native("b"))
    whole = _request().with_native(NativeRequest(api="responses", body={}))
    assert (await fresh.call(whole)).record.provider == "a"
    only, _, _ = await make(ScriptedProvider("c"))
    with pytest.raises(UnsupportedParameter, match="hosted") as info:
        await only.call(hosted())
    assert info.value.param == "tools.0.type" and info.value.http_status == 400
