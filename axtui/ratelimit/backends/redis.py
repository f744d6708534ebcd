"""State in Redis: limits hold across every replica, requests and tokens alike.

- Token buckets run as one Lua script (`redis_lua.TOKEN_BUCKET`): every
  bucket of an admission decided and written atomically, in one round trip,
  on Redis's clock.
- Sliding windows run in the `limits` library's async Redis storage (its
  atomic Lua scripts for the moving window and the window counter), with
  one read afterwards for the ``X-RateLimit-*`` figures.
- Token estimates are corrected in Redis too (`adjust`), so a token limit
  is one shared budget, not one per replica.

An admission with buckets and windows is all-or-nothing: buckets first
(nothing is spent when one refuses), then the windows; when a window
refuses, whatever passed is given back.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from limits import RateLimitItem
from limits.aio.storage import RedisStorage

from axtui.errors import StoreError
from axtui.ratelimit.backends.base import Check
from axtui.ratelimit.backends.redis_lua import COUNTER_ADJUST, TOKEN_BUCKET
from axtui.ratelimit.gcra import Verdict
from axtui.ratelimit.rules import Slot
from axtui.ratelimit.window import CounterState, MovingWindow, WindowCounter, limits_item, limits_strategy

__all__ = ["KEY_PREFIX", "RedisBackend", "redact_url"]

T = TypeVar("T")
_BucketRow = tuple[bool, int, float, float, int]
_PENDING = Verdict(False, None, 0, 0.0, 0.0)

#: Every key ax writes starts with this.
KEY_PREFIX = "ax:rl"


def redact_url(url: str) -> str:
    """A Redis URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user + ':' if user else ':'}***@{host}"
    return url


class _Window:
    """A window slot's names in `limits`' storage."""

    __slots__ = ("exact", "expiry", "ids", "item", "key")

    def __init__(self, slot: Slot) -> None:
        self.item: RateLimitItem = limits_item(slot.limit.rate)
        self.ids = (slot.scope, quote(slot.subject, safe=""), slot.unit)
        self.key = self.item.key_for(*self.ids)
        self.expiry = self.item.get_expiry()
        self.exact = slot.limit.kind == "mw"


class RedisBackend:
    """Rate-limit state in Redis, shared by every replica."""

    name = "redis"
    shared = True

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self._redis = aioredis.Redis.from_url(url)
        self._storage = RedisStorage(
            f"async+{url}", implementation="redispy", key_prefix=KEY_PREFIX,
            connection_pool=self._redis.connection_pool,
        )
        self._moving = limits_strategy(self._storage, exact=True)
        self._counter = limits_strategy(self._storage, exact=False)
        self._bucket_script = self._redis.register_script(TOKEN_BUCKET)
        self._adjust_script = self._redis.register_script(COUNTER_ADJUST)
        self._names: dict[str, Any] = {}

    # -- the Backend interface ---------------------------------------------------------

    async def acquire(self, checks: Sequence[Check], now: float) -> list[Verdict]:
        buckets = [(i, c) for i, c in enumerate(checks) if c[0].limit.kind == "tb"]
        windows = [(i, c) for i, c in enumerate(checks) if c[0].limit.kind != "tb"]
        verdicts: list[Verdict] = [_PENDING] * len(checks)
        if buckets:
            ok, rows = await self._guard(self._buckets("acquire", [c for _, c in buckets]))
            for (i, _), (allowed, remaining, reset, retry, _used) in zip(buckets, rows, strict=True):
                verdicts[i] = Verdict(allowed, None, remaining, reset, retry)
            if not ok:
                # Nothing was spent; tell the caller how the windows stand too.
                for (i, _), v in zip(windows, await self._window_verdicts(windows), strict=True):
                    verdicts[i] = v
                return verdicts
        if windows:
            hits = await self._guard(asyncio.gather(*(self._hit(slot, cost) for _, (slot, cost) in windows)))
            if not all(hits):
                await self._guard(self._refund(buckets, windows, hits))
            for (i, _), v in zip(windows, await self._window_verdicts(windows, hits), strict=True):
                verdicts[i] = v
        return verdicts

    async def adjust(self, slots: Sequence[Slot], delta: int, now: float) -> None:
        buckets = [(slot, delta) for slot in slots if slot.limit.kind == "tb"]
        jobs: list[Awaitable[Any]] = []
        if buckets:
            jobs.append(self._buckets("adjust", buckets))
        for slot in slots:
            if slot.limit.kind != "tb":
                jobs.append(self._window_adjust(self._window(slot), delta))
        if jobs:
            await self._guard(asyncio.gather(*jobs))

    async def peek(self, slots: Sequence[Slot], now: float) -> list[tuple[int, int, float]]:
        out: list[tuple[int, int, float]] = [(0, 0, 0.0)] * len(slots)
        buckets = [(i, s) for i, s in enumerate(slots) if s.limit.kind == "tb"]
        if buckets:
            _, rows = await self._guard(self._buckets("peek", [(s, 0) for _, s in buckets]))
            for (i, _), (_allowed, remaining, reset, _retry, used) in zip(buckets, rows, strict=True):
                out[i] = (used, remaining, reset)
        for i, slot in enumerate(slots):
            if slot.limit.kind != "tb":
                engine, state, now_w = await self._guard(self._window_state(self._window(slot)))
                out[i] = engine.peek(state, now_w)
        return out

    async def clear(self, scope: str, subject: str) -> None:
        pattern = f"{KEY_PREFIX}:*/{scope}/{quote(subject, safe='')}/*"

        async def work() -> None:
            batch: list[Any] = []
            async for key in self._redis.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    await self._redis.delete(*batch)
                    batch = []
            if batch:
                await self._redis.delete(*batch)

        await self._guard(work())

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def ping(self) -> None:
        """Check that Redis answers.

        Raises:
            StoreError: it does not; the message names the URL and the fix.
        """
        await self._guard(self._redis.ping())

    # -- token buckets -----------------------------------------------------------------

    async def _buckets(self, mode: str, checks: Sequence[Check]) -> tuple[bool, list[_BucketRow]]:
        """Run the token-bucket script; ``(all allowed, per bucket: allowed, remaining, reset, retry, used)``."""
        keys = [self._bucket_key(slot) for slot, _ in checks]
        args: list[Any] = [mode]
        for slot, cost in checks:
            bucket = slot.limit.engine
            args += [repr(bucket.interval * 1_000_000), bucket.capacity, cost]  # type: ignore[attr-defined]
        raw = await self._bucket_script(keys=keys, args=args)
        rows: list[_BucketRow] = []
        for i in range(len(checks)):
            allowed, remaining, reset_us, retry_us, used = (int(x) for x in raw[1 + 5 * i: 6 + 5 * i])
            retry = math.inf if retry_us < 0 else retry_us / 1_000_000
            rows.append((bool(allowed), remaining, reset_us / 1_000_000, retry, used))
        return bool(int(raw[0])), rows

    def _bucket_key(self, slot: Slot) -> str:
        key = self._names.get(slot.key)
        if key is None:
            key = self._names[slot.key] = (
                f"{KEY_PREFIX}:tb/{slot.scope}/{quote(slot.subject, safe='')}/{slot.unit}/{slot.limit.variant}"
            )
        return key  # type: ignore[no-any-return]

    # -- sliding windows (limits' storage) ---------------------------------------------

    def _window(self, slot: Slot) -> _Window:
        w = self._names.get(slot.key)
        if w is None:
            w = self._names[slot.key] = _Window(slot)
        return w  # type: ignore[no-any-return]

    async def _hit(self, slot: Slot, cost: int) -> bool:
        w = self._window(slot)
        if cost <= 0:
            return True
        strategy = self._moving if w.exact else self._counter
        return await strategy.hit(w.item, *w.ids, cost=cost)

    async def _window_state(self, w: _Window) -> tuple[Any, object, float]:
        """The window's engine, its state as pure code sees it, and the matching 'now'."""
        if w.exact:
            raw = await self._redis.lrange(f"{KEY_PREFIX}:{w.key}", 0, w.item.amount - 1)
            log = tuple(sorted(float(x) for x in raw))
            return MovingWindow(w.item.amount, w.expiry), log, time.time()
        prev, prev_ttl, curr, curr_ttl = await self._storage.get_sliding_window(w.key, w.expiry)
        # limits encodes the window's start in the current key's time to live (2 windows at start).
        if curr_ttl > 0:
            state: CounterState | None = CounterState(curr_ttl - 2 * w.expiry, int(prev), int(curr))
        elif prev_ttl > 0:
            state = CounterState(prev_ttl - w.expiry, int(prev), 0)
        else:
            state = None
        return WindowCounter(w.item.amount, w.expiry), state, 0.0

    async def _window_verdicts(
        self, windows: Sequence[tuple[int, Check]], hits: Sequence[bool] | None = None
    ) -> list[Verdict]:
        async def one(j: int, slot: Slot, cost: int) -> Verdict:
            engine, state, now_w = await self._window_state(self._window(slot))
            if hits is not None and hits[j]:
                _used, remaining, reset = engine.peek(state, now_w)
                return Verdict(True, None, remaining, reset, 0.0)
            v = engine.decide(state, now_w, cost)
            if v.allowed:  # it passed on a second look: the window moved on meanwhile
                return Verdict(False, None, v.remaining + cost, v.reset_after, 1e-3)
            return Verdict(False, None, v.remaining, v.reset_after, v.retry_after)

        return list(await self._guard(asyncio.gather(*(one(j, s, c) for j, (_, (s, c)) in enumerate(windows)))))

    async def _window_adjust(self, w: _Window, delta: int) -> None:
        if delta == 0:
            return
        if w.exact:
            key = f"{KEY_PREFIX}:{w.key}"
            if delta < 0:
                await self._redis.lpop(key, -delta)
            else:
                await self._redis.lpush(key, *([repr(time.time())] * delta))
                await self._redis.ltrim(key, 0, w.item.amount - 1)
                await self._redis.expire(key, w.expiry)
            return
        current = f"{KEY_PREFIX}:{{{w.key}}}"
        await self._adjust_script(keys=[f"{current}/-1", current], args=[w.expiry, delta])

    async def _refund(self, buckets: Sequence[tuple[int, Check]], windows: Sequence[tuple[int, Check]],
                      hits: Sequence[bool]) -> None:
        """Give back what an admission that failed as a whole had spent."""
        jobs: list[Awaitable[Any]] = []
        if buckets:
            jobs.append(self._buckets("adjust", [(slot, -cost) for _, (slot, cost) in buckets]))
        for (_, (slot, cost)), hit in zip(windows, hits, strict=True):
            if hit and cost > 0:
                jobs.append(self._window_adjust(self._window(slot), -cost))
        await asyncio.gather(*jobs)

    async def _guard(self, work: Awaitable[T]) -> T:
        from redis.exceptions import RedisError

        try:
            return await work
        except RedisError as exc:
            raise StoreError(
                f"the rate-limit Redis at {redact_url(self.url)} failed ({type(exc).__name__}: {exc}); "
                "check that it is running and reachable, or set [ratelimit] backend = \"store\" "
                "(and unset AX_REDIS_URL) to keep limits in the local database"
            ) from None

