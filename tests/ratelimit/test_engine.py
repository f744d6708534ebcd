"""Limits as callers of the engine meet them: exact under concurrency, fair under abuse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from axtui.clock import FakeClock
from axtui.config import Settings
from axtui.engine import CallOptions, Gateway
from axtui.engine.compose import build_gateway
from axtui.errors import AxError, RateLimited
from axtui.ports import CacheDirective
from axtui.providers.base import UpstreamLimits
from axtui.types import Caller, ChatRequest
from tests.ratelimit.fakes import InstantProvider
from tests.support import chat_request

NO_CACHE = CallOptions(cache=CacheDirective(read=False, write=False))


def settings_for(*providers: str, ratelimit: dict[str, Any], strategy: str | None = None) -> Settings:
    data: dict[str, Any] = {
        "providers": [{"name": n, "kind": "openai", "models": ["m"], "max_retries": 0} for n in providers],
        "cache": {"enabled": False},
        "ratelimit": ratelimit,
    }
    if strategy:
        data["routing"] = {"strategy": strategy}
    return Settings.model_validate(data)


def request(text: str = "hello", model: str = "m") -> ChatRequest:
    return chat_request(model, text, max_tokens=50)


@pytest.fixture
async def gateways() -> AsyncIterator[Callable[..., Any]]:
    made: list[Gateway] = []

    async def make(
        settings: Settings, clock: FakeClock, providers: dict[str, Any] | None = None, database_url: str | None = None
    ) -> Gateway:
        gw = await build_gateway(settings, clock=clock, providers=providers, record=False, database_url=database_url)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        await gw.aclose()


async def outcome(gw: Gateway, caller: Caller, text: str = "hello", options: CallOptions = NO_CACHE) -> str:
    try:
        await gw.call(request(text), caller, options)
        return "served"
    except RateLimited:
        return "refused"
    except AxError:
        return "failed"


@pytest.mark.parametrize("backend", ["memory", "store", "redis"])
@pytest.mark.parametrize("algorithm", ["token-bucket", "sliding-window"])
async def test_a_thousand_concurrent_calls_admit_exactly_the_limit(
    gateways: Callable[..., Any], backend: str, algorithm: str, request: pytest.FixtureRequest
) -> None:
    rl: dict[str, Any] = {"backend": backend, "algorithm": algorithm, "global_requests": "250/day"}
    if backend == "redis":
        rl["redis_url"] = request.getfixturevalue("redis_url")
    clock = FakeClock()
    gw = await gateways(settings_for("fake", ratelimit=rl), clock, {"fake": InstantProvider("fake", clock)})
    results = await asyncio.gather(*(outcome(gw, Caller(user=f"u{i % 10}"), f"q{i}") for i in range(1000)))
    assert results.count("served") == 250
    assert results.count("refused") == 750


async def test_the_simulated_fleet_behind_a_limit_serves_exactly_the_limit(gateways: Callable[..., Any]) -> None:
    clock = FakeClock()
    # The demo fleet, in process, with its simulated latency on the fake clock.
    settings = Settings.model_validate({
        "cache": {"enabled": False},
        "ratelimit": {"algorithm": "sliding-window", "user_requests": "100/day"},
    })
    gw = await gateways(settings, clock)
    ask = ChatRequest.model_validate({"model": "fast", "messages": [{"role": "user", "content": "hi"}]})

    async def one(i: int) -> str:
        try:
            await gw.call(ask, Caller(user="alice"), NO_CACHE)
            return "served"
        except RateLimited:
            return "refused"
        except AxError:
            return "failed upstream"  # the fleet's rare simulated faults; admitted all the same

    results = await asyncio.gather(*(one(i) for i in range(1000)))
    assert results.count("refused") == 900


@pytest.mark.parametrize("backend", ["memory", "store"])
@pytest.mark.parametrize("algorithm", ["token-bucket", "sliding-window"])
async def test_an_abuser_gets_its_limit_and_nobody_else_notices(
    gateways: Callable[..., Any], backend: str, algorithm: str, tmp_path: Path
) -> None:
    async def run(with_abuser: bool) -> tuple[list[tuple[float, str]], list[tuple[str, float]]]:
        clock = FakeClock()
        rl = {"backend": backend, "algorithm": algorithm, "user_requests": "10/minute"}
        gw = await gateways(settings_for("fake", ratelimit=rl), clock,
                            {"fake": InstantProvider("fake", clock, latency_s=0.05)},
                            f"sqlite:///{tmp_path}/{'abused' if with_abuser else 'baseline'}.db")
        abuser, honest = [], []
        for tick in range(1000):  # ten minutes in steps of 0.6 s
            if with_abuser:  # 100 calls a minute: ten times its limit
                abuser.append((clock.now(), await outcome(gw, Caller(user="mallory"), f"m{tick}")))
            if tick % 20 == 0:  # 5 calls a minute: half of the limit
                try:
                    result = await gw.call(request(f"b{tick}"), Caller(user="bob"), NO_CACHE)
                    honest.append(("served", result.record.latency_ms))
                except AxError as exc:
                    honest.append((type(exc).__name__, 0.0))
            clock.advance(0.6)
        return abuser, honest

    abused, honest = await run(with_abuser=True)
    _, baseline = await run(with_abuser=False)
    served = [t for t, r in abused if r == "served"]
    # The abuser gets its limit, ten a minute, and no more: over the whole run
    # (which the calls' own latency stretches a little past ten minutes) ...
    assert len(served) <= (served[-1] - served[0]) / 6 + 10
    assert len(served) >= 10 * 10 - 1
    # ... and in any one minute (an idle token bucket starts full: its burst on top).
    burst = 10 if algorithm == "token-bucket" else 0
    for start in served:
        assert sum(1 for t in served if start <= t < start + 60) <= 10 + burst
    # ... while bob's calls all succeed, exactly as fast as without the abuser.
    assert honest == baseline
    assert all(r == "served" for r, _ in honest) and len(honest) == 50


async def test_a_provider_at_its_limit_is_skipped_for_the_next_one(gateways: Callable[..., Any]) -> None:
    clock = FakeClock()
    a, b = InstantProvider("a", clock), InstantProvider("b", clock)
    settings = settings_for("a", "b", ratelimit={"provider_requests": {"a": "2/hour", "b": "1/hour"}})
    gw = await gateways(settings, clock, {"a": a, "b": b})
    results = [await outcome(gw, Caller(user=f"u{i}"), f"q{i}") for i in range(4)]
    assert results == ["served", "served", "served", "refused"]
    assert (a.calls, b.calls) == (2, 1)
    with pytest.raises(RateLimited) as err:
        await gw.call(request("again"), Caller(user="z"), NO_CACHE)
    assert err.value.scope.startswith("provider:")


async def test_a_provider_that_says_it_is_out_of_quota_is_left_alone_until_its_reset(
    gateways: Callable[..., Any],
) -> None:
    clock = FakeClock()
    # After each answer "a" says, as x-ratelimit-* headers would: no requests left for 30 s.
    tired = InstantProvider("a", clock, then_says=UpstreamLimits(limit_requests=100, remaining_requests=0,
                                                                  reset_requests_s=30.0))
    fresh = InstantProvider("b", clock)
    settings = settings_for("a", "b", ratelimit={}, strategy="round-robin")
    gw = await gateways(settings, clock, {"a": tired, "b": fresh})

    async def served_by(n: int) -> list[str | None]:
        return [(await gw.call(request(f"q{clock.now()}{i}"), Caller(user="u"), NO_CACHE)).record.provider
                for i in range(n)]

    assert await served_by(6) == ["a", "b", "b", "b", "b", "b"]
    clock.advance(31)  # its quota has reset: "a" is tried again
    assert await served_by(3) == ["a", "b", "b"]


async def test_the_python_api_can_wait_for_a_limit_instead_of_failing(gateways: Callable[..., Any]) -> None:
    clock = FakeClock()
    gw = await gateways(settings_for("fake", ratelimit={"user_requests": "1/minute"}), clock,
                        {"fake": InstantProvider("fake", clock)})
    await gw.call(request("one"), Caller(user="alice"), NO_CACHE)
    with pytest.raises(RateLimited):
        await gw.call(request("two"), Caller(user="alice"), CallOptions(cache=NO_CACHE.cache, max_wait_s=10))
    before = clock.now()
    result = await gw.call(request("three"), Caller(user="alice"), CallOptions(cache=NO_CACHE.cache, max_wait_s=90))
    assert result.record.status == "ok"
    assert clock.now() - before == pytest.approx(60, abs=0.1)
    headers = {s.scope: s.remaining for s in result.limits}
    assert headers == {"user:alice": 0}
