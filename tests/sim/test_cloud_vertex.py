"""kind = "vertex" against `ax sim serve`'s Vertex AI emulation, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from axtui.clock import FakeClock
from axtui.config import ProviderConfig
from axtui.cost.sheet import PriceSheet
from axtui.errors import (
    ConfigError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimited,
    ProviderServerError,
    StreamInterrupted,
)
from axtui.providers import create_provider
from axtui.providers.sim import SimProvider
from axtui.providers.vertex import SCOPE, VertexProvider
from axtui.types import Chunk, Deployment, assemble_tool_calls

from .clouds import assert_cost_matches_sheet, tool_request
from .helpers import ask

SEED = 7
TOKEN = "ya29.sim-vertex-token"


class FakeCredentials:
    """What google.auth.default returns: a token that is valid until refreshed."""

    def __init__(self) -> None:
        self.token: str | None = TOKEN
        self.expiry = None
        self.valid = True
        self.refreshed = 0
        self.asked: list[Any] = []

    def refresh(self, request: Any) -> None:
        self.refreshed += 1
        self.token, self.valid = f"{TOKEN}-{self.refreshed}", True


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> FakeCredentials:
    """Application default credentials that need no Google account."""
    auth = pytest.importorskip("google.auth")
    made = FakeCredentials()

    def default(scopes: Any = None, **_: Any) -> tuple[FakeCredentials, str]:
        made.asked.append(scopes)
        return made, "adc-project"

    monkeypatch.setattr(auth, "default", default)
    return made


@pytest.fixture
async def vertex(
    serve: Callable[..., Awaitable[str]], credentials: FakeCredentials
) -> AsyncIterator[Callable[..., VertexProvider]]:
    """Build a vertex provider pointed at a fresh sim server's /vertex."""
    url = await serve("fast", seed=SEED)
    made: list[VertexProvider] = []

    def make(**config: Any) -> VertexProvider:
        settings: dict[str, Any] = {"name": "vx", "kind": "vertex", "endpoint_url": url + "/vertex",
                                    "project": "my-project", "location": "europe-west4", "max_retries": 0}
        provider = create_provider(ProviderConfig(**{**settings, **config}))
        assert isinstance(provider, VertexProvider)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


def dep(model: str) -> Deployment:
    return Deployment(provider="vx", model=model, upstream_model=model)


def _local(name: str) -> SimProvider:
    return SimProvider(ProviderConfig(name=name, kind="sim", profile="fast"), seed=SEED, clock=FakeClock())


@pytest.mark.parametrize(("model", "plays"), [("gemini-2.5-flash", "gemini"), ("claude-haiku-4-5", "anthropic")])
async def test_plain_answers_usage_and_cost(vertex: Callable[..., VertexProvider], model: str, plays: str) -> None:
    provider, local, sheet = vertex(), _local(plays), PriceSheet.load(include_user=False)
    got = await provider.chat(ask("What makes a good API?", model), dep(model))
    want = await local.chat(ask("What makes a good API?", model), dep(model))
    assert got.content == want.content and got.content
    assert got.usage == want.usage
    assert got.finish_reason == "stop"
    assert_cost_matches_sheet(sheet, dep(model), got.usage)


@pytest.mark.parametrize(("model", "plays"), [("gemini-2.5-flash", "gemini"), ("claude-haiku-4-5", "anthropic")])
async def test_streams_and_tools(vertex: Callable[..., VertexProvider], model: str, plays: str) -> None:
    provider, local = vertex(), _local(plays)
    chunks: list[Chunk] = [c async for c in provider.stream(ask("Why do cats purr?", model, stream=True), dep(model))]
    want = await local.chat(ask("Why do cats purr?", model), dep(model))
    assert "".join(c.delta for c in chunks) == want.content
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert [c.usage for c in chunks if c.usage][-1] == want.usage

    answer = await provider.chat(tool_request(model), dep(model))
    assert answer.finish_reason == "tool_calls" and answer.tool_calls
    assert answer.tool_calls[0]["function"]["name"] == "get_weather"
    streamed = [c async for c in provider.stream(tool_request(model, stream=True), dep(model))]
    calls = assemble_tool_calls([d for c in streamed for d in c.tool_calls or []])
    assert [c["function"]["name"] for c in calls] == ["get_weather"]


async def test_embeddings_and_the_token_is_fetched_once(
    vertex: Callable[..., VertexProvider], credentials: FakeCredentials
) -> None:
    provider = vertex(models=["gemini-2.5-flash"])
    got = await provider.embed(["reset my password", "hello there"], "text-embedding-004")
    assert len(got.vectors) == 2 and got.usage.input_tokens > 0 and not got.usage.estimated
    await provider.chat(ask("hi", "gemini-2.5-flash"), dep("gemini-2.5-flash"))
    assert credentials.asked == [[SCOPE]]
    assert provider.auth_headers() == {"Authorization": f"Bearer {TOKEN}"}
    assert await provider.list_models() == ["gemini-2.5-flash"]


async def test_expired_credentials_are_refreshed_and_the_project_can_come_from_them(
    vertex: Callable[..., VertexProvider], credentials: FakeCredentials
) -> None:
    credentials.valid = False
    provider = vertex(project=None)
    assert (await provider.chat(ask("hi", "gemini-2.5-flash"), dep("gemini-2.5-flash"))).content
    assert credentials.refreshed == 1
    assert provider.auth_headers() == {"Authorization": f"Bearer {TOKEN}-1"}


_FAULTS: list[tuple[str, type[ProviderError], int | None]] = [
    ("401", ProviderAuthError, 401),
    ("403", ProviderAuthError, 403),
    ("429", ProviderRateLimited, 429),
    ("500", ProviderServerError, 500),
    ("503", ProviderServerError, 503),
    ("cut", ProviderConnectionError, None),
]


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "claude-haiku-4-5"])
@pytest.mark.parametrize(("fault", "error", "status"), _FAULTS)
async def test_faults_map_to_error_classes(
    vertex: Callable[..., VertexProvider], model: str, fault: str, error: type[ProviderError], status: int | None
) -> None:
    provider = vertex(headers={"X-Sim-Fault": fault})
    with pytest.raises(error) as caught:
        await provider.chat(ask("hi", model), dep(model))
    assert type(caught.value) is error
    if status is not None:
        assert caught.value.http_status == (529 if status == 503 and model.startswith("claude") else status)
    if fault == "429":
        assert isinstance(caught.value, ProviderRateLimited) and caught.value.retry_after
    if fault in ("401", "403"):
        assert "application default credentials" in str(caught.value) and "api_key_env" not in str(caught.value)


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "claude-haiku-4-5"])
async def test_a_cut_stream(vertex: Callable[..., VertexProvider], model: str) -> None:
    provider = vertex(headers={"X-Sim-Fault": "cut"})
    got: list[Chunk] = []
    with pytest.raises(StreamInterrupted):
        async for chunk in provider.stream(ask("Tell me about rivers", model, stream=True), dep(model)):
            got.append(chunk)
    assert any(c.delta for c in got)
    assert not any(c.usage and not c.usage.estimated for c in got), "no final usage: at most the prompt's so far"


async def test_the_wire_is_vertexs(serve: Callable[..., Awaitable[str]]) -> None:
    base = await serve("fast") + "/vertex/v1/projects/p/locations/us-central1/publishers"
    gemini = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    claude = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 50,
              "messages": [{"role": "user", "content": "hi"}]}
    bearer = {"Authorization": "Bearer t"}
    async with httpx.AsyncClient(timeout=10) as client:
        anonymous = await client.post(base + "/google/models/gemini-2.5-flash:generateContent", json=gemini)
        assert anonymous.status_code == 401 and anonymous.json()["error"]["status"] == "UNAUTHENTICATED"
        ok = await client.post(base + "/google/models/gemini-2.5-flash:generateContent", json=gemini, headers=bearer)
        assert ok.status_code == 200 and ok.json()["candidates"]
        versioned = await client.post(base + "/anthropic/models/claude-haiku-4-5@20251001:rawPredict", json=claude,
                                      headers=bearer)
        assert versioned.status_code == 200 and versioned.json()["content"]
        wrong = await client.post(base + "/anthropic/models/claude-haiku-4-5:rawPredict",
                                  json={**claude, "anthropic_version": "2023-06-01"}, headers=bearer)
        assert wrong.status_code == 400


def test_addresses(credentials: FakeCredentials) -> None:
    regional = VertexProvider(ProviderConfig(name="v", kind="vertex", project="p", location="us-east5"))
    assert regional.base_url == "https://us-east5-aiplatform.googleapis.com"
    assert VertexProvider(ProviderConfig(name="v", kind="vertex", location="global")).base_url == (
        "https://aiplatform.googleapis.com")
    assert regional._route("/models/gemini-2.0-flash-001:generateContent") == (
        "/v1/projects/p/locations/us-east5/publishers/google/models/gemini-2.0-flash-001:generateContent")


async def test_without_google_auth_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.auth", None)
    provider = VertexProvider(ProviderConfig(name="v", kind="vertex", project="p", endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(ConfigError, match=r"pip install 'axtui\[vertex\]'"):
        await provider.chat(ask("hi", "gemini-2.5-flash"), dep("gemini-2.5-flash"))
    await provider.aclose()


async def test_claude_on_vertex_takes_a_messages_clients_server_tools_gemini_refuses_them(
    vertex: Callable[..., VertexProvider],
) -> None:
    """Claude on Vertex is sent a Messages client's body as sent, so what only Anthropic's API carries is served."""
    from axtui.engine.records import refuse_untranslatable
    from axtui.providers._wire import UnsupportedParameter
    from axtui.server.anthropic_wire import AnthropicRequest, to_chat_request

    body = {"model": "claude-haiku-4-5", "max_tokens": 200,
            "messages": [{"role": "user", "content": "Search the web for tides"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}]}
    request = to_chat_request(AnthropicRequest.model_validate(body))
    provider = vertex()
    refuse_untranslatable(request, provider, dep("claude-haiku-4-5"))
    assert (await provider.chat(request, dep("claude-haiku-4-5"))).content
    with pytest.raises(UnsupportedParameter, match=r"tools\.0\.type"):
        refuse_untranslatable(request, provider, dep("gemini-2.5-flash"))
