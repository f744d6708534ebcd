"""kind = "azure" against `ax sim serve`'s Azure OpenAI emulation, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import sys
import time
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
    ProviderBadRequest,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimited,
    ProviderServerError,
    StreamInterrupted,
)
from axtui.providers import create_provider
from axtui.providers.azure import ENTRA_SCOPE, AzureProvider
from axtui.providers.sim import SimProvider
from axtui.types import Chunk, assemble_tool_calls

from .clouds import assert_cost_matches_sheet, tool_request
from .helpers import ask, deployment

SEED = 5
DEPLOYMENTS = {"gpt-4o": "gpt-4o-prod", "gpt-4o-mini": "gpt-4o-mini-eu", "text-embedding-3-small": "text-embedding-3-small-1"}


@pytest.fixture
async def azure(
    serve: Callable[..., Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., AzureProvider]]:
    """Build an azure provider pointed at a fresh sim server's /azure."""
    monkeypatch.setenv("AX_TEST_AZURE_KEY", "azure-test-key-0123456789")
    url = await serve("fast", seed=SEED)
    made: list[AzureProvider] = []

    def make(**config: Any) -> AzureProvider:
        settings: dict[str, Any] = {"name": "az", "kind": "azure", "base_url": url + "/azure",
                                    "api_key_env": "AX_TEST_AZURE_KEY", "api_version": "2024-10-21",
                                    "deployments": DEPLOYMENTS, "max_retries": 0}
        provider = create_provider(ProviderConfig(**{**settings, **config}))
        assert isinstance(provider, AzureProvider)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


def _local() -> SimProvider:
    return SimProvider(ProviderConfig(name="azure", kind="sim", profile="fast"), seed=SEED, clock=FakeClock())


async def test_plain_answers_usage_and_cost(azure: Callable[..., AzureProvider]) -> None:
    provider, local, sheet = azure(), _local(), PriceSheet.load(include_user=False)
    for model in ("gpt-4o", "gpt-4o-mini"):
        dep = deployment(provider.name, model)
        got = await provider.chat(ask("What makes a good API?", model), dep)
        want = await local.chat(ask("What makes a good API?", model), dep)
        assert got.content == want.content and got.content
        assert got.usage == want.usage
        assert got.finish_reason == "stop"
        assert_cost_matches_sheet(sheet, dep, got.usage)


async def test_streams_tools_and_embeddings(azure: Callable[..., AzureProvider]) -> None:
    provider, local = azure(), _local()
    dep = deployment(provider.name, "gpt-4o")
    chunks: list[Chunk] = [c async for c in provider.stream(ask("Why do cats purr?", "gpt-4o", stream=True), dep)]
    want = await local.chat(ask("Why do cats purr?", "gpt-4o"), dep)
    assert "".join(c.delta for c in chunks) == want.content
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert [c.usage for c in chunks if c.usage] == [want.usage]

    answer = await provider.chat(tool_request("gpt-4o"), dep)
    assert answer.finish_reason == "tool_calls" and answer.tool_calls
    assert answer.tool_calls[0]["function"]["name"] == "get_weather"
    streamed = [c async for c in provider.stream(tool_request("gpt-4o", stream=True), dep)]
    calls = assemble_tool_calls([d for c in streamed for d in c.tool_calls or []])
    assert [c["function"]["name"] for c in calls] == ["get_weather"]

    vectors = await provider.embed(["reset my password", "hello"], "text-embedding-3-small")
    assert len(vectors.vectors) == 2 and vectors.usage.input_tokens > 0
    assert await provider.list_models() == sorted(["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"])


async def test_the_wire_is_azures(serve: Callable[..., Awaitable[str]]) -> None:
    url = await serve("fast") + "/azure/openai/deployments/gpt-4o-prod/chat/completions"
    body = {"messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(timeout=10) as client:
        no_key = await client.post(url, params={"api-version": "2024-10-21"}, json=body)
        assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "401"
        no_version = await client.post(url, headers={"api-key": "k"}, json=body)
        assert no_version.status_code == 404
        ok = await client.post(url, params={"api-version": "2024-10-21"}, headers={"api-key": "k"}, json=body)
        assert ok.status_code == 200 and ok.json()["model"] == "gpt-4o"
        assert ok.json()["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False
        missing = await client.post(url.replace("gpt-4o-prod", "o3-pro"), params={"api-version": "x"},
                                    headers={"api-key": "k"}, json=body)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "DeploymentNotFound"


_FAULTS: list[tuple[str, type[ProviderError], int | None]] = [
    ("401", ProviderAuthError, 401),
    ("403", ProviderAuthError, 403),
    ("429", ProviderRateLimited, 429),
    ("500", ProviderServerError, 500),
    ("503", ProviderServerError, 503),
    ("cut", ProviderConnectionError, None),
]


@pytest.mark.parametrize(("fault", "error", "status"), _FAULTS)
async def test_faults_map_to_error_classes(
    azure: Callable[..., AzureProvider], fault: str, error: type[ProviderError], status: int | None
) -> None:
    provider = azure(headers={"X-Sim-Fault": fault})
    with pytest.raises(error) as caught:
        await provider.chat(ask("hi", "gpt-4o"), deployment(provider.name, "gpt-4o"))
    assert type(caught.value) is error
    assert caught.value.http_status == status
    if fault == "429":
        assert isinstance(caught.value, ProviderRateLimited) and caught.value.retry_after
    if fault in ("401", "403"):
        assert "AX_TEST_AZURE_KEY" in str(caught.value)
        assert "azure-test-key-0123456789" not in str(caught.value)


async def test_a_cut_stream_and_a_missing_deployment(azure: Callable[..., AzureProvider]) -> None:
    provider = azure(headers={"X-Sim-Fault": "cut"})
    got: list[Chunk] = []
    with pytest.raises(StreamInterrupted):
        async for chunk in provider.stream(ask("Tell me about rivers", "gpt-4o", stream=True),
                                           deployment(provider.name, "gpt-4o")):
            got.append(chunk)
    assert any(c.delta for c in got) and not any(c.usage for c in got)
    with pytest.raises(ProviderBadRequest, match="deployments table"):
        await azure(deployments={}).chat(ask("hi", "o3-pro"), deployment("az", "o3-pro"))


def test_a_resource_endpoint_is_required() -> None:
    with pytest.raises(ConfigError, match="resource endpoint"):
        create_provider(ProviderConfig(name="az", kind="azure"))
    written_with_openai = create_provider(ProviderConfig(name="az", kind="azure",
                                                         base_url="https://r.openai.azure.com/openai/"))
    assert written_with_openai.base_url == "https://r.openai.azure.com"


class _Token:
    def __init__(self, token: str, expires_on: int) -> None:
        self.token, self.expires_on = token, expires_on


async def test_entra_id_token_when_no_key_is_set(
    azure: Callable[..., AzureProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = pytest.importorskip("azure.identity")
    asked: list[str] = []

    class Credential:
        def get_token(self, scope: str) -> _Token:
            asked.append(scope)
            return _Token(f"entra-{len(asked)}", int(time.time()) + 3600)

    monkeypatch.setattr(identity, "DefaultAzureCredential", Credential)
    monkeypatch.delenv("AX_TEST_AZURE_KEY")
    provider = azure()
    dep = deployment(provider.name, "gpt-4o")
    assert (await provider.chat(ask("hi", "gpt-4o"), dep)).content
    assert [c async for c in provider.stream(ask("hi", "gpt-4o", stream=True), dep)]
    assert asked == [ENTRA_SCOPE], "one token, fetched once and reused while valid"
    assert provider.auth_headers() == {"Authorization": "Bearer entra-1"}
    fresh = azure()
    answers = await asyncio.gather(*(fresh.chat(ask(f"q{i}", "gpt-4o"), dep) for i in range(12)))
    assert all(a.content for a in answers)
    assert len(asked) == 2, "twelve calls at once on a new provider fetch one token between them"
    with pytest.raises(ProviderAuthError, match="Entra ID token was refused"):
        await azure(headers={"X-Sim-Fault": "403"}).chat(ask("hi", "gpt-4o"), dep)


async def test_without_key_or_azure_identity_the_error_says_what_to_install(
    azure: Callable[..., AzureProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AX_TEST_AZURE_KEY")
    monkeypatch.setitem(sys.modules, "azure.identity", None)
    provider = azure()
    with pytest.raises(ConfigError, match=r"pip install 'axtui\[azure\]'"):
        await provider.chat(ask("hi", "gpt-4o"), deployment(provider.name, "gpt-4o"))


async def test_azure_error_shapes_over_a_mock_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {
        "filter": (400, {"error": {"code": "content_filter", "message": "The response was filtered",
                                   "innererror": {"code": "ResponsibleAIPolicyViolation"}}}, {}),
        "wait": (429, {"error": {"code": "429", "message": "Please retry after 7 seconds."}}, {}),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["api-version"] == "2025-01-01-preview"
        assert request.headers["api-key"] == "k" * 12
        status, body, headers = answers[request.url.path.split("/")[3]]
        return httpx.Response(status, json=body, headers=headers)

    monkeypatch.setenv("AX_TEST_AZURE_MOCK", "k" * 12)
    provider = AzureProvider(ProviderConfig(
        name="az", kind="azure", base_url="https://r.openai.azure.com", api_key_env="AX_TEST_AZURE_MOCK",
        api_version="2025-01-01-preview", deployments={"a": "filter", "b": "wait"}),
        transport=httpx.MockTransport(handler))
    with pytest.raises(ProviderBadRequest, match="content filter"):
        await provider.chat(ask("hi", "a"), deployment("az", "a"))
    with pytest.raises(ProviderRateLimited) as limited:
        await provider.chat(ask("hi", "b"), deployment("az", "b"))
    assert limited.value.retry_after == 7
    await provider.aclose()
