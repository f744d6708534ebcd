"""Limits on a real Redis hold across processes, for requests and for tokens.

These need a Redis server: set AX_TEST_REDIS_URL (CI starts one). Without
it they are skipped, saying so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from axtui.config import RateLimitConfig
from axtui.errors import StoreError
from axtui.ratelimit.backends.redis import RedisBackend
from axtui.ratelimit.limiter import RateLimiter

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.redis, pytest.mark.processes]


def replicas(url: str, algorithm: str, unit: str, limit: str, count: int = 2, backend: str = "redis") -> list[dict[str, int]]:
    """Run ``count`` worker processes at once against one limit; what each got."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.ratelimit.worker", backend, url, algorithm, unit, limit, "20"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(count)
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=90)
        assert p.returncode == 0, stderr
        out.append(json.loads(stdout))
    return out


@pytest.mark.parametrize("algorithm", ["token-bucket", "sliding-window"])
def test_two_processes_share_a_request_limit_within_one_percent(redis_url: str, algorithm: str) -> None:
    got = replicas(redis_url, algorithm, "requests", "2000/day")
    total = sum(g["admitted"] for g in got)
    assert 2000 <= total <= 2020, got
    assert all(g["admitted"] > 0 for g in got)  # both replicas really competed


@pytest.mark.parametrize("algorithm", ["token-bucket", "sliding-window"])
def test_two_processes_share_a_token_limit_within_one_percent(redis_url: str, algorithm: str) -> None:
    # Each call is admitted on an estimate and settled with its real (smaller)
    # usage: what counts against the shared limit is the real tokens.
    got = replicas(redis_url, algorithm, "tokens", "200000/day")
    total = sum(g["tokens"] for g in got)
    assert 198_000 <= total <= 202_000, got
    assert all(g["admitted"] > 0 for g in got)


async def test_an_unreachable_redis_is_a_clear_store_error() -> None:
    limiter = RateLimiter(RedisBackend("redis://127.0.0.1:1/0"), RateLimitConfig(user_requests="5/minute"))
    with pytest.raises(StoreError) as err:
        await limiter.admit([("user", "alice")], 1)
    assert "redis://127.0.0.1:1/0" in err.value.message and 'backend = "store"' in err.value.message
    await limiter.aclose()
