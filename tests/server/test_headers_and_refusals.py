"""Headers a caller reads, and refusals as the SDKs see them (429, 402, 413, 401, 403)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from axtui.config import Settings
from axtui.engine.compose import build_gateway
from axtui.engine.gateway import Gateway
from axtui.errors import BudgetExceeded, RateLimited
from axtui.money import nanos_to_usd
from axtui.ports import CacheDirective, CacheHit, LimitState, Subject, Ticket
from axtui.server.keys import create_key
from axtui.store import Store
from axtui.types import Caller, ChatRequest, ChatResponse, Deployment, Usage

from ._live import LiveServer
from .conftest import fleet_settings

HELLO = [{"role": "user", "content": "hello"}]


class ScriptedLimiter:
    """Refuses user ``limited``; admits everyone else with known limit states."""

    async def admit(self, subjects: Sequence[Subject], tokens: int) -> Ticket:
        if ("user", "limited") in subjects:
            raise RateLimited("user limited is over 2 requests/minute", retry_after=1.25, limit=2, remaining=0,
                              reset_after=1.25, unit="requests", scope="user:limited")
        states = [
            LimitState("user", "requests", 60, 41, 2.5),
            LimitState("key", "requests", 10, 3, 30.0),
            LimitState("user", "tokens", 100_000, 90_000, 6.0),
        ]
        return Ticket(tuple(subjects), tokens, states)

    async def settle(self, ticket: Ticket, tokens: int) -> None:
        return None


class ScriptedBudgets:
    """Refuses user ``broke``."""

    async def reserve(self, caller: Caller, deployment: Deployment, estimate_nanos: int | None) -> Any:
        if caller.user == "broke":
            raise BudgetExceeded("user broke has spent its $5.00 monthly budget", budget_id=1, retry_after=3600)
        return None

    async def settle(self, reservation: Any, actual_nanos: int | None) -> None:
        return None

    async def release(self, reservation: Any) -> None:
        return None


class ScriptedCache:
    """Answers prompts that mention 'remembered' as a semantic hit; keeps every directive."""

    def __init__(self) -> None:
        self.directives: list[CacheDirective] = []

    async def lookup(self, request: ChatRequest, caller: Caller, directive: CacheDirective) -> CacheHit | None:
        self.directives.append(directive)
        if "remembered" in request.prompt_text() and directive.read:
            answer = ChatResponse("from the cache", "gpt-4o-mini", Usage(12, 4), provider="openai")
            return CacheHit(answer, "semantic", similarity=0.9312, saved_nanos=5_000)
        return None

    async def store(self, *args: Any) -> None:
        return None


class ScriptedPrices:
    """Every call costs 1,234 nano-dollars per output token."""

    def cost(self, deployment: Deployment, usage: Usage) -> int | None:
        return 1_234 * usage.output_tokens

    def estimate(self, deployment: Deployment, input_tokens: int, output_tokens: int) -> int | None:
        return 1_234 * output_tokens


@pytest.fixture
def scripted() -> Iterator[tuple[LiveServer, ScriptedCache]]:
    cache = ScriptedCache()

    async def factory(settings: Settings) -> Gateway:
        gateway = await build_gateway(settings)
        gateway.limiter = ScriptedLimiter()
        gateway.budgets = ScriptedBudgets()
        gateway.cache = cache
        gateway.prices = ScriptedPrices()
        return gateway

    server = LiveServer(fleet_settings(), no_auth=True, gateway_factory=factory).start()
    yield server, cache
    server.stop()


def test_served_call_headers(scripted: tuple[LiveServer, ScriptedCache]) -> None:
    live, _ = scripted
    r = httpx.post(f"{live.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO})
    assert r.status_code == 200
    h = r.headers
    assert h["x-ax-provider"] == "openai" and h["x-ax-model"] == "gpt-4o-mini" and h["x-ax-cache"] == "miss"
    assert "x-ax-cache-similarity" not in h
    tokens = r.json()["usage"]["completion_tokens"]
    assert Decimal(h["x-ax-cost-usd"]) == nanos_to_usd(1_234 * tokens)
    # The tightest request limit leads; each unit has its own variant.
    assert (h["x-ratelimit-limit"], h["x-ratelimit-remaining"], h["x-ratelimit-reset"]) == ("10", "3", "30")
    assert (h["x-ratelimit-limit-requests"], h["x-ratelimit-remaining-requests"]) == ("10", "3")
    assert (h["x-ratelimit-limit-tokens"], h["x-ratelimit-remaining-tokens"], h["x-ratelimit-reset-tokens"]) == (
        "100000", "90000", "6")
    assert h["x-ax-request-id"] == r.json()["id"]


def test_cache_hit_headers_and_directives(scripted: tuple[LiveServer, ScriptedCache]) -> None:
    live, cache = scripted
    msgs = [{"role": "user", "content": "something remembered"}]
    r = httpx.post(f"{live.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": msgs})
    assert r.json()["choices"][0]["message"]["content"] == "from the cache"
    assert r.headers["x-ax-cache"] == "semantic" and r.headers["x-ax-cache-similarity"] == "0.9312"
    assert r.headers["x-ax-cost-usd"] == "0"
    # The header asks not to read the cache: a miss, served upstream.
    r = httpx.post(f"{live.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": msgs},
                   headers={"X-Ax-Cache": "no-cache, ttl=60"})
    assert r.headers["x-ax-cache"] == "miss"
    assert cache.directives[-1] == CacheDirective(read=False, write=True, ttl_s=60)
    # So can the metadata; and a streamed hit replays the cached answer.
    body = {"model": "gpt-4o-mini", "messages": msgs, "metadata": {"ax_cache": "no-store"}}
    httpx.post(f"{live.url}/v1/chat/completions", json=body)
    assert cache.directives[-1] == CacheDirective(read=False, write=False)
    with httpx.stream("POST", f"{live.url}/v1/chat/completions",
                      json={"model": "gpt-4o-mini", "messages": msgs, "stream": True}) as s:
        assert s.headers["x-ax-cache"] == "semantic"
        assert "from the cache" in "".join(s.iter_text())


def test_bad_cache_directive_is_400(scripted: tuple[LiveServer, ScriptedCache]) -> None:
    live, _ = scripted
    r = httpx.post(f"{live.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO},
                   headers={"X-Ax-Cache": "forever"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "X-Ax-Cache" and "no-cache" in r.json()["error"]["message"]


def test_rate_limited_is_429_with_retry_after(scripted: tuple[LiveServer, ScriptedCache]) -> None:
    live, _ = scripted
    api = openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.RateLimitError) as info:
        api.chat.completions.create(model="gpt-4o-mini", messages=HELLO, user="limited")
    h = info.value.response.headers
    assert h["retry-after"] == "2" and h["retry-after-ms"] == "1250"
    assert (h["x-ratelimit-limit"], h["x-ratelimit-remaining"], h["x-ratelimit-reset"]) == ("2", "0", "2")
    assert h["x-ratelimit-limit-requests"] == "2"
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "rate_limit_exceeded"


def test_budget_refusal_is_402(scripted: tuple[LiveServer, ScriptedCache]) -> None:
    live, _ = scripted
    r = httpx.post(f"{live.url}/v1/chat/completions",
                   json={"model": "gpt-4o-mini", "messages": HELLO, "user": "broke"})
    assert r.status_code == 402
    assert r.json()["error"]["code"] == "budget_exceeded" and "$5.00" in r.json()["error"]["message"]
    assert r.headers["retry-after"] == "3600"


def test_body_too_large_is_413(live: LiveServer, key: str) -> None:
    over = 32 * 1024 * 1024 + 1  # the default server.max_body_bytes (32 MiB, as Anthropic takes), and one byte
    big = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * over}]}
    r = httpx.post(f"{live.url}/v1/chat/completions", json=big, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
        for _ in range(over // 1_000_000 + 1):
            yield b"y" * 1_000_000
        yield b'"}]}'

    json_key = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    r = httpx.post(f"{live.url}/v1/chat/completions", content=chunks(), headers=json_key)
    assert r.status_code == 413
    r = httpx.put(f"{live.url}/api/budgets", content=b"x" * over, headers=json_key)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_auth_refusals(live: LiveServer, store: Store) -> None:
    url = f"{live.url}/v1/chat/completions"
    body = {"model": "gpt-4o-mini", "messages": HELLO}
    r = httpx.post(url, json=body)
    assert r.status_code == 401 and "ax keys create" in r.json()["error"]["message"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = httpx.post(url, json=body, headers={"Authorization": "Basic abc"})
    assert r.status_code == 401
    raw, info = create_key(store, "erin")
    assert httpx.post(url, json=body, headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    # The right id with a wrong secret is refused too.
    forged = raw[: raw.rindex("_") + 1] + "A" * 43
    assert httpx.post(url, json=body, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    from axtui.server.keys import revoke_key

    revoke_key(store, info.id)
    r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {raw}"})
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    # Reads under /api and /v1/models need a key; health does not.
    assert httpx.get(f"{live.url}/v1/models").status_code == 401
    assert httpx.get(f"{live.url}/healthz").status_code == 200


def test_errors_carry_the_request_id(live: LiveServer, key: str) -> None:
    r = httpx.post(f"{live.url}/v1/chat/completions", content=b"{",
                   headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    assert r.status_code == 400 and r.headers["x-ax-request-id"].startswith("chatcmpl-ax")


def test_wrong_method_is_405(live: LiveServer, key: str) -> None:
    r = httpx.get(f"{live.url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_head_answers_what_get_would_without_a_body(live: LiveServer, key: str) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    for path, headers in [("/healthz", {}), ("/v1/models", auth), ("/metrics", {}), ("/openapi.json", {})]:
        got, head = httpx.get(live.url + path, headers=headers), httpx.head(live.url + path, headers=headers)
        assert (head.status_code, head.content) == (got.status_code, b""), path
        assert head.headers["content-type"] == got.headers["content-type"], path
    # Checked as the read it is: without a key, refused like the GET.
    assert httpx.head(live.url + "/v1/models").status_code == httpx.get(live.url + "/v1/models").status_code == 401
    # A path that takes only POST still says so.
    assert httpx.head(live.url + "/v1/chat/completions", headers=auth).status_code == 405
