"""Rate limiting: token bucket and sliding window, every scope, requests and tokens.

- `RateLimiter` is the engine's `axtui.ports.Limiter`, and what the
  dashboard and server use to show and change limits (`RateLimiter.status`,
  `set_limit`, `delete_limit`, `reset`).
- `build_limiter` / `open_limiter` make one from the settings; the backend
  is the store (default: every local process shares it), memory (one
  process, fastest) or Redis (several replicas).
- `parse_rate` reads ``60/minute``; `rate_limit_headers` turns an
  admission or a refusal into ``X-RateLimit-*`` headers.
- The algorithms are pure code over a clock: `axtui.ratelimit.gcra`
  (token bucket) and `axtui.ratelimit.window` (moving window, window counter).

Names load on first use, so ``axtui.config`` can validate limits through
`axtui.ratelimit.parse` without pulling in the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from axtui.ratelimit.factory import build_limiter, effective_backend, make_backend, open_limiter
    from axtui.ratelimit.headers import rate_limit_headers
    from axtui.ratelimit.limiter import LimitStatus, RateLimiter
    from axtui.ratelimit.parse import Rate, parse_rate
    from axtui.ratelimit.rules import StoredLimit, parse_subject

__all__ = [
    "LimitStatus",
    "Rate",
    "RateLimiter",
    "StoredLimit",
    "build_limiter",
    "effective_backend",
    "make_backend",
    "open_limiter",
    "parse_rate",
    "parse_subject",
    "rate_limit_headers",
]

_WHERE = {
    "LimitStatus": "limiter",
    "RateLimiter": "limiter",
    "Rate": "parse",
    "StoredLimit": "rules",
    "build_limiter": "factory",
    "effective_backend": "factory",
    "make_backend": "factory",
    "open_limiter": "factory",
    "parse_rate": "parse",
    "parse_subject": "rules",
    "rate_limit_headers": "headers",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'axtui.ratelimit' has no attribute {name!r}")
    return getattr(importlib.import_module(f"axtui.ratelimit.{module}"), name)
