"""Short-lived cloud tokens: fetched off the loop, once for many callers, renewed before they expire."""

from __future__ import annotations

import asyncio
import threading

import pytest

from axtui.clock import FakeClock
from axtui.errors import ConfigError
from axtui.providers._cloud import REFRESH_MARGIN_S, TokenCache, import_extra


async def test_one_fetch_serves_concurrent_callers_and_renewal_comes_before_expiry() -> None:
    clock = FakeClock()
    fetched: list[str] = []
    loop_thread = threading.get_ident()

    def fetch() -> tuple[str, float | None]:
        assert threading.get_ident() != loop_thread, "a blocking fetch must not run on the event loop"
        fetched.append(f"t{len(fetched) + 1}")
        return fetched[-1], clock.now() + 3600

    cache = TokenCache(fetch, clock)
    assert set(await asyncio.gather(*(cache.refresh() for _ in range(20)))) == {"t1"}
    clock.advance(3600 - REFRESH_MARGIN_S - 1)
    assert await cache.refresh() == "t1"
    clock.advance(2)
    assert await cache.refresh() == "t2", "renewed inside the margin, before the issuer's expiry"
    assert fetched == ["t1", "t2"]


async def test_a_token_without_expiry_is_renewed_and_a_failed_fetch_is_retried() -> None:
    clock = FakeClock()
    answers: list[object] = [RuntimeError("metadata server down"), ("t1", None), ("t2", None)]

    def fetch() -> tuple[str, float | None]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, tuple)
        return answer

    cache = TokenCache(fetch, clock)
    with pytest.raises(RuntimeError):
        await cache.refresh()
    assert await cache.refresh() == "t1"
    clock.advance(REFRESH_MARGIN_S + 1)
    assert await cache.refresh() == "t2"


def test_a_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "botocore", None)
    with pytest.raises(ConfigError, match=r"provider 'b' needs botocore for signing.*pip install 'axtui\[bedrock\]'"):
        import_extra("botocore", extra="bedrock", provider="b", purpose="signing")
