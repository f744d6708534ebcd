"""One "process of ax" for the cross-process tests: admits against a shared limit until it runs dry.

Run as ``python -m tests.ratelimit.worker BACKEND URL ALGORITHM UNIT LIMIT SECONDS``
(BACKEND ``redis`` with a Redis URL, or ``store`` with a database URL); prints
``{"admitted": N, "tokens": T}`` (T: the real tokens of the admitted calls).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any

from axtui.config import RateLimitConfig
from axtui.errors import RateLimited
from axtui.ratelimit.limiter import RateLimiter


async def main(backend: str, url: str, algorithm: str, unit: str, limit: str, seconds: float) -> None:
    field = "global_requests" if unit == "requests" else "global_tokens"
    store: Any = None
    if backend == "redis":
        from axtui.ratelimit.backends.redis import RedisBackend

        be: Any = RedisBackend(url)
    else:
        from axtui.ratelimit.backends.store import StoreBackend
        from axtui.store import Store

        store = Store.open(url)
        be = StoreBackend(store)
    limiter = RateLimiter(be, RateLimitConfig(algorithm=algorithm, **{field: limit}), store=store)
    rng = random.Random()
    admitted = tokens = 0
    deadline = time.monotonic() + seconds
    dry = 0
    while time.monotonic() < deadline and dry < 50:
        estimate = rng.randint(50, 150)
        try:
            ticket = await limiter.admit([("global", "*")], estimate)
        except RateLimited:
            dry += 1
            continue
        dry = 0
        real = int(estimate * 0.8)  # calls use less than estimated: the settle gives the rest back
        await limiter.settle(ticket, real)
        admitted += 1
        tokens += real
    await limiter.aclose()
    if store is not None:
        store.close()
    print(json.dumps({"admitted": admitted, "tokens": tokens}))


if __name__ == "__main__":
    backend, url, algorithm, unit, limit, seconds = sys.argv[1:7]
    asyncio.run(main(backend, url, algorithm, unit, limit, float(seconds)))
