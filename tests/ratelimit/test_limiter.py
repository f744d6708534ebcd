"""The limiter as the engine and the dashboard use it, on every backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from axtui.bus import EventBus, SettingsChanged
from axtui.clock import FakeClock
from axtui.config import RateLimitConfig, Settings
from axtui.errors import InvalidRequest, RateLimited
from axtui.providers.base import UpstreamLimits
from axtui.ratelimit.headers import rate_limit_headers
from axtui.ratelimit.limiter import RateLimiter
from axtui.store.markers import ChangeMarker

ALICE = [("global", "*"), ("user", "alice")]
BOB = [("global", "*"), ("user", "bob")]
BACKENDS = ["memory", "store", "redis"]
LOCAL = ["memory", "store"]

Make = Callable[..., RateLimiter]


async def used(limiter: RateLimiter, subject: tuple[str, str], unit: str = "requests") -> int | None:
    rows = await limiter.status(subjects=[subject])
    return next(r.used for r in rows if r.unit == unit)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_refusal_names_the_subject_the_limit_and_the_wait(make_limiter: Make, backend: str) -> None:
    limiter = make_limiter(backend, user_requests="2/minute")
    await limiter.admit(ALICE, 10)
    await limiter.admit(ALICE, 10)
    with pytest.raises(RateLimited) as err:
        await limiter.admit(ALICE, 10)
    e = err.value
    assert (e.scope, e.unit, e.limit, e.remaining) == ("user:alice", "requests", 2, 0)
    assert 29 < e.retry_after <= 30.01  # one request every 30 s refills the bucket
    assert "user:alice" in e.message and "2 requests per minute" in e.message and "retry in" in e.message
    # Bob has his own quota.
    await limiter.admit(BOB, 10)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_refused_admission_spends_nothing_anywhere(make_limiter: Make, backend: str) -> None:
    limiter = make_limiter(backend, algorithm="sliding-window", global_requests="3/hour", user_requests="2/hour")
    await limiter.admit(ALICE, 1)
    await limiter.admit(ALICE, 1)
    with pytest.raises(RateLimited) as err:  # alice's own limit refuses ...
        await limiter.admit(ALICE, 1)
    assert err.value.scope == "user:alice"
    assert await used(limiter, ("global", "*")) == 2  # ... and the global quota was not touched
    await limiter.admit(BOB, 1)
    with pytest.raises(RateLimited) as err:  # now the global limit refuses ...
        await limiter.admit([("global", "*"), ("user", "carol")], 1)
    assert err.value.scope == "global"
    assert await used(limiter, ("user", "carol")) == 0  # ... and carol's quota was not touched


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("algorithm", ["token-bucket", "sliding-window"])
async def test_token_estimates_are_corrected_by_the_real_usage(make_limiter: Make, backend: str, algorithm: str) -> None:
    limiter = make_limiter(backend, algorithm=algorithm, user_tokens="1000/hour")
    ticket = await limiter.admit(ALICE, 600)
    await limiter.settle(ticket, 100)  # the call used far less than estimated
    ticket = await limiter.admit(ALICE, 800)  # fits: 100 + 800 <= 1000
    await limiter.settle(ticket, 850)  # and a little more than estimated
    assert await used(limiter, ("user", "alice"), "tokens") == 950
    with pytest.raises(RateLimited) as err:
        await limiter.admit(ALICE, 100)
    assert err.value.unit == "tokens" and "needs about 100" in err.value.message
    await limiter.settle(ticket, 0)  # a second settle of one ticket changes nothing
    assert await used(limiter, ("user", "alice"), "tokens") == 950


@pytest.mark.parametrize("backend", BACKENDS)
async def test_admission_reports_every_limit_for_the_headers(make_limiter: Make, backend: str) -> None:
    limiter = make_limiter(backend, global_requests="100/minute", user_requests="10/minute", user_tokens="5000/minute")
    ticket = await limiter.admit(ALICE, 1200)
    got = {(s.scope, s.unit): (s.limit, s.remaining) for s in ticket.states}
    assert got == {("global", "requests"): (100, 99), ("user:alice", "requests"): (10, 9),
                   ("user:alice", "tokens"): (5000, 3800)}
    headers = rate_limit_headers(ticket.states)
    assert headers["X-RateLimit-Limit-Requests"] == "10" and headers["X-RateLimit-Remaining-Requests"] == "9"
    assert headers["X-RateLimit-Remaining-Tokens"] == "3800"
    assert headers["X-RateLimit-Limit"] == "10" and "Retry-After" not in headers


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_call_bigger_than_the_whole_token_limit_is_told_it_can_never_pass(make_limiter: Make, backend: str) -> None:
    limiter = make_limiter(backend, user_tokens="1000/minute")
    with pytest.raises(RateLimited) as err:
        await limiter.admit(ALICE, 4096)
    assert "can never pass" in err.value.message and "lower max_tokens" in err.value.message
    assert err.value.retry_after == 60
    await limiter.admit(ALICE, 900)  # nothing was spent by the refusal


@pytest.mark.parametrize("backend", BACKENDS)
async def test_status_shows_use_and_reset_gives_the_quota_back(make_limiter: Make, backend: str) -> None:
    limiter = make_limiter(backend, user_requests="5/minute", provider_requests={"openai": "100/minute"})
    for _ in range(3):
        await limiter.admit(ALICE, 1)
    rows = {(r.label, r.unit): r for r in await limiter.status(user="alice")}
    alice = rows[("user:alice", "requests")]
    assert (alice.used, alice.remaining, alice.limit, alice.source) == (3, 2, "5/minute", "config")
    assert alice.reset_after == pytest.approx(36, abs=0.5)
    overview = {r.label for r in await limiter.status()}
    assert {"user:*", "provider:openai"} <= overview
    await limiter.reset("alice")
    rows = {(r.label, r.unit): r for r in await limiter.status(user="alice")}
    assert rows[("user:alice", "requests")].remaining == 5


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_stored_limit_replaces_the_default_at_once(make_limiter: Make, backend: str) -> None:
    limiter = make_limiter(backend, user_requests="100/minute")
    stored = await limiter.set_limit("alice", "1/hour", tokens="50000/day", algorithm="sliding-window")
    assert (stored.requests, stored.tokens, stored.algorithm) == ("1/hour", "50000/day", "sliding-window")
    await limiter.admit(ALICE, 10)
    with pytest.raises(RateLimited) as err:
        await limiter.admit(ALICE, 10)
    assert "1 request per hour" in err.value.message
    await limiter.admit(BOB, 10)  # bob keeps the default
    assert await limiter.delete_limit("alice") is True
    await limiter.admit(ALICE, 10)  # the default applies again (a fresh counter for it)
    assert await limiter.delete_limit("alice") is False


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("alice", "60/minut"), "unknown period 'minut'"),
        (("alice", "0/minute"), "at least 1"),
        (("org:eng", "5/minute"), "unknown scope 'org'"),
        (("alice", None, None), "give a request limit"),
    ],
)
async def test_a_wrong_limit_is_refused_and_nothing_is_stored(make_limiter: Make, args: tuple[Any, ...], says: str) -> None:
    limiter = make_limiter("memory")
    with pytest.raises(InvalidRequest, match=says):
        await limiter.set_limit(*args)
    with pytest.raises(InvalidRequest, match="--burst applies to token-bucket"):
        await limiter.set_limit("alice", "5/minute", algorithm="sliding-window", burst=3)
    assert limiter.stored_limits() == []


@pytest.mark.parametrize("backend", LOCAL)
async def test_after_the_wait_the_refused_request_passes(make_limiter: Make, clock: FakeClock, backend: str) -> None:
    limiter = make_limiter(backend, user_requests="3/minute", user_tokens="300/minute")
    for _ in range(3):
        await limiter.admit(ALICE, 50)
    with pytest.raises(RateLimited) as err:
        await limiter.admit(ALICE, 50)
    clock.advance(err.value.retry_after)
    await limiter.admit(ALICE, 50)


@pytest.mark.parametrize("backend", LOCAL)
async def test_a_burst_lets_that_many_through_at_once(make_limiter: Make, clock: FakeClock, backend: str) -> None:
    limiter = make_limiter(backend)
    await limiter.set_limit("global", "60/minute", burst=5)
    for _ in range(5):
        await limiter.admit(ALICE, 1)
    with pytest.raises(RateLimited) as err:
        await limiter.admit(ALICE, 1)
    assert err.value.scope == "global" and err.value.retry_after == pytest.approx(1.0)


async def test_a_limit_set_by_another_process_on_this_machine_applies_to_the_next_request(
    make_limiter: Make, clock: FakeClock
) -> None:
    serving = make_limiter("store", poll_s=300.0)
    other = make_limiter("store")  # ax ratelimit set, from another process
    await serving.admit(ALICE, 1)
    await other.set_limit("alice", "1/hour")
    await serving.admit(ALICE, 1)  # the change's marker moved: the limits are read before admitting
    with pytest.raises(RateLimited):
        await serving.admit(ALICE, 1)
    await other.delete_limit("alice")
    await serving.admit(ALICE, 1)


async def test_a_limit_set_on_another_machine_applies_within_the_poll_interval(
    make_limiter: Make, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ChangeMarker, "moved", lambda self: None)  # this machine's marker is out of its reach
    serving = make_limiter("store", poll_s=1.0)
    other = make_limiter("store")
    await serving.admit(ALICE, 1)
    await other.set_limit("alice", "1/hour")
    clock.advance(1.5)
    await serving.admit(ALICE, 1)  # the change is noticed here (read in the background) ...
    assert serving._poll_task is not None
    await serving._poll_task
    await serving.admit(ALICE, 1)  # ... the limit's own counter starts afresh with this one
    with pytest.raises(RateLimited):
        await serving.admit(ALICE, 1)


async def test_new_settings_on_the_bus_replace_the_defaults(make_limiter: Make) -> None:
    limiter = make_limiter("memory")
    bus = EventBus()
    bus.subscribe(limiter.on_event)
    await limiter.admit(ALICE, 1)
    bus.publish(SettingsChanged(Settings(ratelimit=RateLimitConfig(user_requests="1/hour"))))
    await limiter.admit(ALICE, 1)
    with pytest.raises(RateLimited):
        await limiter.admit(ALICE, 1)


@dataclass
class FakeProvider:
    """Just what the limiter reads of a provider: its upstream limits."""

    upstream_limits: UpstreamLimits = field(default_factory=UpstreamLimits)


async def test_a_provider_that_said_it_has_no_requests_left_is_skipped_until_its_reset(
    make_limiter: Make, clock: FakeClock
) -> None:
    openai = FakeProvider()
    limiter = make_limiter("memory", providers={"openai": openai})
    assert not limiter.has_provider_limits  # nothing said yet: the engine need not ask
    openai.upstream_limits = UpstreamLimits(limit_requests=500, remaining_requests=0, reset_requests_s=5.0,
                                            updated_at=clock.now())
    assert limiter.has_provider_limits
    with pytest.raises(RateLimited) as err:
        await limiter.admit([("provider", "openai")], 100)
    assert err.value.scope == "provider:openai" and err.value.retry_after == pytest.approx(5.0)
    assert "x-ratelimit-remaining-requests" in err.value.message
    clock.advance(5.0)
    await limiter.admit([("provider", "openai")], 100)


async def test_calls_sent_since_the_provider_last_spoke_count_against_what_it_said(
    make_limiter: Make, clock: FakeClock
) -> None:
    openai = FakeProvider(UpstreamLimits(remaining_requests=2, remaining_tokens=1000, reset_requests_s=10,
                                         reset_tokens_s=10, updated_at=clock.now()))
    limiter = make_limiter("memory", providers={"openai": openai})
    ticket = await limiter.admit([("provider", "openai")], 400)
    await limiter.settle(ticket, 700)  # the real usage counts, not the estimate
    with pytest.raises(RateLimited) as err:
        await limiter.admit([("provider", "openai")], 400)
    assert err.value.unit == "tokens" and err.value.remaining == 300
    await limiter.admit([("provider", "openai")], 300)
    with pytest.raises(RateLimited) as err:
        await limiter.admit([("provider", "openai")], 1)
    assert err.value.unit == "requests"
    # The provider answers again with fresh figures: they already count what was sent.
    clock.advance(0.5)
    openai.upstream_limits = UpstreamLimits(remaining_requests=10, remaining_tokens=9000, reset_requests_s=10,
                                            reset_tokens_s=10, updated_at=clock.now())
    await limiter.admit([("provider", "openai")], 1)


async def test_provider_limits_from_config_and_store_are_announced_to_the_engine(make_limiter: Make) -> None:
    assert make_limiter("memory", provider_requests={"openai": "500/minute"}).has_provider_limits
    limiter = make_limiter("memory")
    assert not limiter.has_provider_limits
    await limiter.set_limit("provider:groq", "30/minute", tokens="6000/minute")
    assert limiter.has_provider_limits
    await limiter.admit([("provider", "groq")], 5000)
    with pytest.raises(RateLimited) as err:
        await limiter.admit([("provider", "groq")], 5000)
    assert err.value.scope == "provider:groq" and err.value.unit == "tokens"


async def test_a_refusal_becomes_429_headers_with_retry_after() -> None:
    refused = RateLimited("x", retry_after=4.2, limit=10, remaining=0, reset_after=30.0, unit="requests",
                          scope="user:alice")
    headers = rate_limit_headers([], refused)
    assert headers == {
        "X-RateLimit-Limit-Requests": "10",
        "X-RateLimit-Remaining-Requests": "0",
        "X-RateLimit-Reset-Requests": "30",
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "30",
        "Retry-After": "5",
    }


async def test_many_concurrent_admissions_on_the_store_admit_exactly_the_limit(make_limiter: Make) -> None:
    limiter = make_limiter("store", user_requests="37/hour")

    async def one() -> bool:
        try:
            await limiter.admit(ALICE, 1)
            return True
        except RateLimited:
            return False

    results = await asyncio.gather(*(one() for _ in range(200)))
    assert sum(results) == 37
