"""Quota leases of the store backend: busy limits decided in memory, still never exceeded across processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from axtui.clock import FakeClock
from axtui.config import RateLimitConfig
from axtui.errors import RateLimited
from axtui.ratelimit.backends.lease import MIN_GRANT, grant_size
from axtui.ratelimit.backends.store import StoreBackend
from axtui.ratelimit.limiter import RateLimiter
from axtui.store import Store


async def _admitted(limiter: RateLimiter, user: str, n: int, tokens: int = 1) -> int:
    async def one() -> int:
        try:
            await limiter.admit([("global", "*"), ("user", user)], tokens)
            return 1
        except RateLimited:
            return 0

    return sum(await asyncio.gather(*(one() for _ in range(n))))


def _pair(tmp_path: Path, config: RateLimitConfig) -> tuple[list[Store], list[RateLimiter]]:
    url = f"sqlite:///{tmp_path}/shared.db"
    stores = [Store.open(url), Store.open(url)]
    clock = FakeClock()
    return stores, [RateLimiter(StoreBackend(s, clock=clock), config, store=s, clock=clock) for s in stores]


async def _close(stores: list[Store], limiters: list[RateLimiter]) -> None:
    for limiter, store in zip(limiters, stores, strict=True):
        await limiter.aclose()
        store.close()


def test_only_limits_busy_enough_are_leased() -> None:
    from axtui.ratelimit.rules import RuleBook

    def slot(rate: str) -> object:
        return RuleBook.build(RateLimitConfig(user_requests=rate), ()).slots(("user", "u"))[0]

    assert grant_size(slot("60/minute")) == 0  # type: ignore[arg-type]
    assert grant_size(slot("300/day")) == 0  # type: ignore[arg-type]
    assert grant_size(slot("64000/minute")) >= MIN_GRANT  # type: ignore[arg-type]


async def test_two_processes_with_leases_never_admit_more_than_the_limit(tmp_path: Path) -> None:
    stores, (a, b) = _pair(tmp_path, RateLimitConfig(user_requests="1200/minute"))
    try:
        got = await asyncio.gather(_admitted(a, "alice", 900), _admitted(b, "alice", 900))
        assert sum(got) <= 1200
        # Both got a share, and at most one grant per process is held back unspent.
        assert sum(got) >= 1200 - 2 * 20 and min(got) > 0
    finally:
        await _close(stores, [a, b])


async def test_time_that_passes_off_the_decision_clock_refills_nothing(tmp_path: Path) -> None:
    # Leases live on the limiter's clock: real seconds that its clock never saw (a frozen clock
    # here, a slow loop elsewhere) neither expire a lease nor stamp its refund later than the
    # decisions, which would credit them with refill (it once let two processes admit 1,245 of 1,200).
    stores, (a, b) = _pair(tmp_path, RateLimitConfig(user_requests="1200/minute"))
    clock = a.clock
    assert isinstance(clock, FakeClock)
    try:
        first = await _admitted(a, "alice", 600)
        await asyncio.sleep(1.2)  # longer than a lease lives, in real time only
        await a.backend.flush_leases()  # type: ignore[attr-defined]
        second = await _admitted(b, "alice", 700)
        assert first == 600 and 1200 - 20 <= first + second <= 1200
        # Time the limiter's clock sees does refill: 3 s of 20 a second, plus what a's lease held.
        clock.advance(3.0)
        await a.backend.flush_leases()  # type: ignore[attr-defined]
        third = await _admitted(b, "alice", 100)
        assert first + second + third == 1260
    finally:
        await _close(stores, [a, b])


async def test_a_closed_process_gives_its_unspent_lease_back(tmp_path: Path) -> None:
    stores, (a, b) = _pair(tmp_path, RateLimitConfig(user_requests="1200/minute"))
    try:
        assert await _admitted(a, "alice", 5) == 5
        # b sees what a has spent, not what a holds.
        (seen,) = await b.status(subjects=[("user", "alice")])
        assert seen.used is not None and seen.used >= 5
        await a.aclose()
        (after,) = await b.status(subjects=[("user", "alice")])
        assert after.used == 5
        assert await _admitted(b, "alice", 1195) == 1195
        assert await _admitted(b, "alice", 1) == 0
    finally:
        await b.aclose()
        for s in stores:
            s.close()


async def test_token_corrections_of_a_leased_limit_reach_the_store(tmp_path: Path) -> None:
    stores, (a, b) = _pair(tmp_path, RateLimitConfig(user_tokens="64000/minute"))
    try:
        ticket = await a.admit([("user", "alice")], 100)
        await a.settle(ticket, 400)
        ticket = await a.admit([("user", "alice")], 100)
        await a.settle(ticket, 10)
        await a.aclose()  # gives back the lease and writes the corrections
        (after,) = await b.status(subjects=[("user", "alice")])
        # 410 used; the bucket refills about a token a millisecond while the lease is written back.
        assert after.used is not None and 390 <= after.used <= 410
    finally:
        await b.aclose()
        for s in stores:
            s.close()


@pytest.mark.parametrize("algorithm", ["token-bucket", "sliding-window"])
async def test_a_refused_admission_leaves_leases_whole(tmp_path: Path, algorithm: str) -> None:
    url = f"sqlite:///{tmp_path}/one.db"
    store = Store.open(url)
    clock = FakeClock()
    limiter = RateLimiter(StoreBackend(store, clock=clock), RateLimitConfig(
        algorithm=algorithm, global_requests="6400/minute", user_requests="2/minute"), store=store, clock=clock)
    try:
        assert await _admitted(limiter, "alice", 3) == 2
        (glob,) = await limiter.status(subjects=[("global", "*")])
        assert glob.used == 2
    finally:
        await limiter.aclose()
        store.close()


async def test_a_flush_cancelled_while_it_writes_gives_the_units_back_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from axtui.ratelimit.rules import RuleBook

    store = Store.open(f"sqlite:///{tmp_path}/one.db")
    backend = StoreBackend(store)
    assert backend.leases is not None
    slot = RuleBook.build(RateLimitConfig(user_requests="64000/minute"), ()).slots(("user", "u"))[0]
    backend.leases.charge(slot, -5)  # an expired lease's unspent units, to give back
    started, release, done = threading.Event(), threading.Event(), threading.Event()
    written: list[object] = []
    write = backend._adjust_sync

    def slow_write(changes: list[tuple[object, int]], now: float) -> None:
        started.set()
        release.wait(30)
        write(changes, now)  # type: ignore[arg-type]
        written.append(changes)
        done.set()

    monkeypatch.setattr(backend, "_adjust_sync", slow_write)
    try:
        flush = asyncio.ensure_future(backend.flush_leases())
        await asyncio.to_thread(started.wait, 30)
        flush.cancel()  # as `aclose` cancels its flusher
        await asyncio.sleep(0)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await flush
        await asyncio.to_thread(done.wait, 30)
        # The write committed: queued again, the next flush would give the same units back a second time.
        assert len(written) == 1 and not backend.leases.pending
    finally:
        release.set()
        await backend.aclose()
        store.close()
