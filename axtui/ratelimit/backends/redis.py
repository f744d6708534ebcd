"""State in Redis: limits hold across every replica, requests and tokens alike.

- Token buckets run as one Lua script (`redis_lua.TOKEN_BUCKET`): every
  bucket of an admission decided and written atomically, on Redis's clock.
- Sliding windows run on the `limits` library's Redis storage: its atomic
  Lua scripts (``acquire_moving_window.lua``, ``acquire_sliding_window.lua``
  and the read ``sliding_window.lua``), its key layout and expiry scheme, so
  a window ax keeps is the one `limits` would keep. ax sends them (by SHA)
  in one pipeline with the bucket script and the reads for the
  ``X-RateLimit-*`` figures: one round trip per decision.
- Token estimates are corrected in Redis too (`adjust`), so a token limit
  is one shared budget, not one per replica.

An admission is all-or-nothing: when any limit refuses, whatever the
others took is given back (a second round trip, only on refusal).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from limits.aio.storage.redis.bridge import RedisBridge

from axtui.errors import StoreError
from axtui.ratelimit.backends.base import Check
from axtui.ratelimit.backends.redis_lua import COUNTER_ADJUST, TOKEN_BUCKET
from axtui.ratelimit.gcra import Verdict
from axtui.ratelimit.rules import Slot
from axtui.ratelimit.window import CounterState, MovingWindow, WindowCounter, limits_item

__all__ = ["KEY_PREFIX", "RedisBackend", "redact_url"]

T = TypeVar("T")

#: Every key ax writes starts with this (limits' ``key_prefix``).
KEY_PREFIX = "ax:rl"
#: Connections to Redis per process, and how long a decision waits for one.
_POOL_SIZE = 64
_POOL_WAIT_S = 10.0

#: Every script this backend runs, by name: ours, and limits' own as they ship.
_SCRIPTS: dict[str, bytes] = {
    "bucket": TOKEN_BUCKET.encode(),
    "counter_adjust": COUNTER_ADJUST.encode(),
    "mw_acquire": RedisBridge.SCRIPT_ACQUIRE_MOVING_WINDOW,
    "sw_acquire": RedisBridge.SCRIPT_ACQUIRE_SLIDING_WINDOW,
    "sw_read": RedisBridge.SCRIPT_SLIDING_WINDOW,
}
# SHA-1 is how Redis names a script (EVALSHA), not a security measure.
_SHAS = {name: hashlib.sha1(body).hexdigest() for name, body in _SCRIPTS.items()}


class _Batch:
    """Commands for one pipeline; scripts by name, sent as EVALSHA."""

    __slots__ = ("commands",)

    def __init__(self) -> None:
        self.commands: list[tuple[str, tuple[Any, ...]]] = []

    def script(self, name: str, keys: Sequence[str], *args: Any) -> None:
        self.commands.append(("evalsha", (_SHAS[name], len(keys), *keys, *args)))

    def call(self, method: str, *args: Any) -> None:
        self.commands.append((method, args))

    def __len__(self) -> int:
        return len(self.commands)


def redact_url(url: str) -> str:
    """A Redis URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user + ':' if user else ':'}***@{host}"
    return url


class _Window:
    """A window slot's keys in limits' layout, and its pure twin for the figures."""

    __slots__ = ("current", "engine", "exact", "expiry", "key", "limit", "previous")

    def __init__(self, slot: Slot) -> None:
        item = limits_item(slot.limit.rate)
        key = item.key_for(slot.scope, quote(slot.subject, safe=""), slot.unit)
        self.limit = item.amount
        self.expiry = item.get_expiry()
        self.exact = slot.limit.kind == "mw"
        # Moving window: one list. Counter: "{key}" now, "{key}/-1" the window before.
        self.key = f"{KEY_PREFIX}:{key}"
        self.current = f"{KEY_PREFIX}:{{{key}}}"
        self.previous = f"{self.current}/-1"
        self.engine: MovingWindow | WindowCounter = (
            MovingWindow(self.limit, self.expiry) if self.exact else WindowCounter(self.limit, self.expiry)
        )

    def queue_hit(self, batch: _Batch, cost: int) -> None:
        if self.exact:
            batch.script("mw_acquire", [self.key], time.time(), self.limit, self.expiry, cost)
        else:
            batch.script("sw_acquire", [self.previous, self.current], self.limit, self.expiry, cost)

    def queue_read(self, batch: _Batch) -> None:
        if self.exact:
            batch.call("lrange", self.key, 0, self.limit - 1)
        else:
            batch.script("sw_read", [self.previous, self.current], self.expiry)

    def queue_adjust(self, batch: _Batch, delta: int) -> None:
        if self.exact:
            if delta < 0:
                batch.call("lpop", self.key, -delta)
            elif delta > 0:
                batch.call("lpush", self.key, *([repr(time.time())] * delta))
                batch.call("ltrim", self.key, 0, self.limit - 1)
                batch.call("expire", self.key, self.expiry)
        elif delta:
            batch.script("counter_adjust", [self.previous, self.current], self.expiry, delta)

    def state(self, raw: Any) -> tuple[object, float]:
        """The read's answer as the pure engine's ``(state, now)``."""
        if self.exact:
            return tuple(sorted(float(x) for x in raw or ())), time.time()
        prev, prev_ttl, curr, curr_ttl = raw if raw else (0, 0, 0, 0)
        prev_ttl_s = max(0.0, float(prev_ttl or 0)) / 1000
        curr_ttl_s = max(0.0, float(curr_ttl or 0)) / 1000
        # limits encodes a window's start in its key's time to live (two windows at the start).
        if curr_ttl_s > 0:
            return CounterState(curr_ttl_s - 2 * self.expiry, int(prev or 0), int(curr or 0)), 0.0
        if prev_ttl_s > 0:
            return CounterState(prev_ttl_s - self.expiry, int(prev or 0), 0), 0.0
        return None, 0.0


class RedisBackend:
    """Rate-limit state in Redis, shared by every replica."""

    name = "redis"
    shared = True

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self.url = url
        # A bounded pool that makes callers wait for a connection, rather than
        # failing a burst of concurrent admissions with "too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=_POOL_SIZE, timeout=_POOL_WAIT_S)
        self._redis = aioredis.Redis(connection_pool=pool)
        self._names: dict[str, Any] = {}

    # -- the Backend interface ---------------------------------------------------------

    async def acquire(self, checks: Sequence[Check], now: float) -> list[Verdict]:
        buckets = [c for c in checks if c[0].limit.kind == "tb"]
        windows = [(self._window(slot), cost) for slot, cost in checks if slot.limit.kind != "tb"]
        batch = _Batch()
        if buckets:
            self._queue_buckets(batch, "acquire", buckets)
        for w, cost in windows:
            if cost > 0:
                w.queue_hit(batch, cost)
            w.queue_read(batch)
        results = iter(await self._guard(self._execute(batch)))
        bucket_rows = self._bucket_rows(next(results), len(buckets)) if buckets else (True, [])
        window_out = []
        for w, cost in windows:
            hit = bool(next(results)) if cost > 0 else True
            window_out.append((w, cost, hit, next(results)))
        ok = bucket_rows[0] and all(hit for _, _, hit, _ in window_out)
        if not ok:
            await self._guard(self._refund(buckets if bucket_rows[0] else [], window_out))
        by_bucket = iter(bucket_rows[1])
        by_window = iter(window_out)
        verdicts = []
        for slot, _ in checks:
            if slot.limit.kind == "tb":
                allowed, remaining, reset, retry, _used = next(by_bucket)
                verdicts.append(Verdict(allowed, None, remaining, reset, retry))
            else:
                verdicts.append(self._window_verdict(*next(by_window)))
        return verdicts

    async def adjust(self, slots: Sequence[Slot], delta: int, now: float) -> None:
        batch = _Batch()
        buckets = [(slot, delta) for slot in slots if slot.limit.kind == "tb"]
        if buckets:
            self._queue_buckets(batch, "adjust", buckets)
        for slot in slots:
            if slot.limit.kind != "tb":
                self._window(slot).queue_adjust(batch, delta)
        await self._guard(self._execute(batch))

    async def peek(self, slots: Sequence[Slot], now: float) -> list[tuple[int, int, float]]:
        batch = _Batch()
        buckets = [(slot, 0) for slot in slots if slot.limit.kind == "tb"]
        if buckets:
            self._queue_buckets(batch, "peek", buckets)
        for slot in slots:
            if slot.limit.kind != "tb":
                self._window(slot).queue_read(batch)
        results = iter(await self._guard(self._execute(batch)))
        rows = iter(self._bucket_rows(next(results), len(buckets))[1]) if buckets else iter(())
        out = []
        for slot in slots:
            if slot.limit.kind == "tb":
                _allowed, remaining, reset, _retry, used = next(rows)
                out.append((used, remaining, reset))
            else:
                w = self._window(slot)
                state, now_w = w.state(next(results))
                out.append(w.engine.peek(state, now_w))  # type: ignore[arg-type]
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

    # -- inside -------------------------------------------------------------------------

    def _queue_buckets(self, batch: _Batch, mode: str, checks: Sequence[Check]) -> None:
        keys = [self._bucket_key(slot) for slot, _ in checks]
        args: list[Any] = [mode]
        for slot, cost in checks:
            bucket = slot.engine
            args += [repr(bucket.interval * 1_000_000), bucket.capacity, cost]  # type: ignore[attr-defined]
        batch.script("bucket", keys, *args)

    async def _execute(self, batch: _Batch) -> list[Any]:
        """Send a batch as one pipeline; scripts Redis does not know yet are loaded and only they re-sent."""
        from redis.exceptions import NoScriptError

        results = await self._send(batch.commands)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            # A script that was missing did not run, so sending it again runs it exactly once.
            load = self._redis.pipeline(transaction=False)
            for body in _SCRIPTS.values():
                load.script_load(body)
            await load.execute()
            again = await self._send([batch.commands[i] for i in missing])
            for i, r in zip(missing, again, strict=True):
                results[i] = r
        for r in results:
            if isinstance(r, Exception):
                raise r
        return results

    async def _send(self, commands: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        for method, args in commands:
            getattr(pipe, method)(*args)
        return list(await pipe.execute(raise_on_error=False))

    @staticmethod
    def _bucket_rows(raw: Any, n: int) -> tuple[bool, list[tuple[bool, int, float, float, int]]]:
        """The bucket script's answer: ``(all allowed, per bucket: allowed, remaining, reset, retry, used)``."""
        rows = []
        for i in range(n):
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
        return key

    def _window(self, slot: Slot) -> _Window:
        w = self._names.get(slot.key)
        if w is None:
            w = self._names[slot.key] = _Window(slot)
        return w

    @staticmethod
    def _window_verdict(w: _Window, cost: int, hit: bool, raw: Any) -> Verdict:
        state, now_w = w.state(raw)
        if hit:
            _used, remaining, reset = w.engine.peek(state, now_w)  # type: ignore[arg-type]
            return Verdict(True, None, remaining, reset, 0.0)
        v = w.engine.decide(state, now_w, cost)  # type: ignore[arg-type]
        if v.allowed:  # it would pass on a second look: the window moved on meanwhile
            return Verdict(False, None, v.remaining + cost, v.reset_after, 1e-3)
        return Verdict(False, None, v.remaining, v.reset_after, v.retry_after)

    async def _refund(self, buckets: Sequence[Check], windows: Sequence[tuple[_Window, int, bool, Any]]) -> None:
        """Give back what an admission that failed as a whole had taken."""
        batch = _Batch()
        if buckets:
            self._queue_buckets(batch, "adjust", [(slot, -cost) for slot, cost in buckets])
        for w, cost, hit, _ in windows:
            if hit and cost > 0:
                w.queue_adjust(batch, -cost)
        if len(batch):
            await self._execute(batch)

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
