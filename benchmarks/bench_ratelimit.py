"""Rate-limit decision cost: memory, the store, Redis — each beside its baseline and target.

One decision is one ``RateLimiter.admit`` of a call by a user with an API
key: global, user and key request limits plus the user's token limit
(four limits, all-or-nothing), as the engine makes it before every call.

- memory: target <= 20 µs of CPU; baseline: the engine's no-limit `NullLimiter`.
- store (SQLite file, WAL): target <= 500 µs; baseline: an empty locked
  transaction on the same worker thread (the floor of any shared decision).
- Redis: target one round trip (counted), shown beside a PING on the same
  client. Skipped without AX_TEST_REDIS_URL (or AX_REDIS_URL).

Run: ``python benchmarks/bench_ratelimit.py``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from axtui.clock import SYSTEM_CLOCK
from axtui.config import RateLimitConfig
from axtui.ports import Limiter, NullLimiter
from axtui.ratelimit.backends.memory import MemoryBackend
from axtui.ratelimit.limiter import RateLimiter

CONFIG = dict(
    global_requests="100000000/minute",
    user_requests="10000000/minute",
    user_tokens="10000000000/minute",
    key_requests="10000000/minute",
)
USERS = 1000


def subjects(i: int) -> list[tuple[str, str]]:
    return [("global", "*"), ("user", f"user-{i % USERS}"), ("key", f"key-{i % USERS}")]


async def per_call_us(
    fn: Callable[[int], Awaitable[object]], n: int, rounds: int = 5, timer: Callable[[], float] = time.perf_counter
) -> float:
    """The best over ``rounds`` of the mean cost of one call, in µs (the least disturbed by other load)."""
    for i in range(min(n, USERS * 2)):  # warm up: caches, connections, each user's first state
        await fn(i)
    results = []
    for r in range(rounds):
        start = timer()
        for i in range(n):
            await fn(r * n + i)
        results.append((timer() - start) / n * 1e6)
    return min(results)


def line(name: str, value: float, baseline_name: str, baseline: float, target: str, ok: bool | None) -> None:
    verdict = "" if ok is None else ("  ok" if ok else "  MISSED")
    print(f"{name:<34} {value:9.1f} µs   {baseline_name} {baseline:7.1f} µs (x{value / baseline:5.1f})"
          f"   target {target}{verdict}")


def admitting(limiter: Limiter) -> Callable[[int], Awaitable[object]]:
    """One admission per call, cycling through the users and keys."""
    return lambda i: limiter.admit(subjects(i), 600)


async def bench_memory(n: int) -> None:
    for algorithm in ("token-bucket", "sliding-window"):
        limiter = RateLimiter(MemoryBackend(), RateLimitConfig(algorithm=algorithm, **CONFIG))  # type: ignore[arg-type]
        # Pure CPU work: measured in this process's CPU time, which other load on the machine does not inflate.
        base = await per_call_us(admitting(NullLimiter()), n, timer=time.process_time)
        cost = await per_call_us(admitting(limiter), n, timer=time.process_time)
        line(f"memory, {algorithm} (CPU)", cost, "no limits", base, "<= 20 µs", cost <= 20)


async def bench_store(n: int) -> None:
    from axtui.ratelimit.backends.store import StoreBackend
    from axtui.store import Store

    def empty_transaction(backend: StoreBackend) -> Callable[[int], Awaitable[object]]:
        return lambda i: backend._run(lambda: backend.table.transact([], lambda rows: []))

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/bench.db")
        try:
            for algorithm in ("token-bucket", "sliding-window"):
                backend = StoreBackend(store)
                limiter = RateLimiter(backend, RateLimitConfig(algorithm=algorithm, **CONFIG),  # type: ignore[arg-type]
                                      store=store, clock=SYSTEM_CLOCK)
                base = await per_call_us(empty_transaction(backend), n)
                cost = await per_call_us(admitting(limiter), n)
                line(f"store (SQLite), {algorithm}", cost, "empty txn", base, "<= 500 µs", cost <= 500)
                await limiter.aclose()
        finally:
            store.close()


async def bench_redis(url: str, n: int) -> None:
    from axtui.ratelimit.backends.redis import RedisBackend

    def ping(backend: Any) -> Callable[[int], Awaitable[object]]:
        return lambda i: backend._redis.ping()

    for algorithm in ("token-bucket", "sliding-window"):
        backend = RedisBackend(url)
        limiter = RateLimiter(backend, RateLimitConfig(algorithm=algorithm, **CONFIG))  # type: ignore[arg-type]
        base = await per_call_us(ping(backend), n)
        cost = await per_call_us(admitting(limiter), n)
        # Count the round trips of one more admission: every pipeline sent is one.
        sent = backend._send
        trips = 0

        async def counting(commands: Any, _sent: Any = sent) -> Any:
            nonlocal trips
            trips += 1
            return await _sent(commands)

        backend._send = counting  # type: ignore[method-assign]
        await limiter.admit(subjects(7), 600)
        line(f"redis, {algorithm}", cost, "PING", base, f"one round trip ({trips} made)", trips == 1)
        for scope, names in (("global", ["*"]), ("user", [f"user-{i}" for i in range(USERS)]),
                             ("key", [f"key-{i}" for i in range(USERS)])):
            for name in names:
                await backend.clear(scope, name)
        await limiter.aclose()


async def run() -> None:
    print("rate-limit decision: global + user + key requests, user tokens (4 limits, all-or-nothing)")
    await bench_memory(30_000)
    await bench_store(1_000)
    url = os.environ.get("AX_TEST_REDIS_URL") or os.environ.get("AX_REDIS_URL")
    if url:
        await bench_redis(url, 1_000)
    else:
        print("redis: skipped (set AX_TEST_REDIS_URL=redis://127.0.0.1:6379/0 to measure it)")


def main() -> None:
    """Print each decision cost beside its baseline and target."""
    try:
        import uvloop

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())


if __name__ == "__main__":
    main()
