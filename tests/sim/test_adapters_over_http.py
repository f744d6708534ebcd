"""ax's own adapters against `ax sim serve` over real HTTP on 127.0.0.1.

Each adapter's answer, stream and usage must equal what the in-process
`SimProvider` (same profile, seed and call order) produces: that proves the
adapter reads the wire format's usage (cache reads and writes, thinking
tokens) into ax's `Usage` faithfully. Every fault the server can inject
must arrive as the right error class.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from axtui.clock import FakeClock
from axtui.config import ProviderConfig
from axtui.errors import (
    ContextTooLong,
    MalformedResponse,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimited,
    ProviderServerError,
    ProviderTimeout,
    StreamInterrupted,
)
from axtui.providers import Provider, create_provider
from axtui.providers.sim import SimProvider
from axtui.types import Chunk

from .helpers import ask, deployment

# kind -> (path under the server, provider it plays, chat model, embedding model)
ADAPTERS: dict[str, tuple[str, str, str, str | None]] = {
    "openai": ("/v1", "openai", "gpt-4o-mini", "text-embedding-3-small"),
    "anthropic": ("/v1", "anthropic", "claude-haiku-4-5", None),
    "gemini": ("/v1beta", "gemini", "gemini-2.5-flash", "text-embedding-004"),
}
SEED = 11
LONG = "Review this service agreement and list each party's duties, deadlines and penalties. " * 90


@pytest.fixture
async def adapter(
    serve: Callable[..., Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., Provider]]:
    """Build an adapter of a kind pointed at a fresh sim server (seed `SEED`)."""
    monkeypatch.setenv("AX_SIM_TEST_KEY", "sk-sim-test")
    url = await serve("fast", seed=SEED)
    made: list[Provider] = []

    def make(kind: str, **config: Any) -> Provider:
        path = ADAPTERS[kind][0]
        settings = ProviderConfig(name=f"sim-{kind}", kind=kind, base_url=url + path, api_key_env="AX_SIM_TEST_KEY",
                                  max_retries=0, **config)
        provider = create_provider(settings)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


def _local(kind: str) -> SimProvider:
    name = ADAPTERS[kind][1]
    return SimProvider(ProviderConfig(name=name, kind="sim", profile="fast"), seed=SEED, clock=FakeClock())


@pytest.mark.parametrize("kind", list(ADAPTERS))
async def test_plain_answers_and_usage_match_the_simulation(adapter: Callable[..., Provider], kind: str) -> None:
    provider, local = adapter(kind), _local(kind)
    model = ADAPTERS[kind][2]
    dep = deployment(provider.name, model)
    for prompt in ["What makes a good API?", LONG, LONG, LONG, LONG, LONG]:
        got = await provider.chat(ask(prompt, model), dep)
        want = await local.chat(ask(prompt, model, max_tokens=4096 if kind == "anthropic" else None), dep)
        assert got.content == want.content
        assert got.finish_reason == want.finish_reason
        assert got.usage == want.usage, f"{kind} read usage differently from what the server reported"


async def test_cache_and_thinking_tokens_arrive(adapter: Callable[..., Provider]) -> None:
    seen: dict[str, int] = {}
    for kind in ADAPTERS:
        provider = adapter(kind)
        model = ADAPTERS[kind][2]
        for _ in range(6):
            usage = (await provider.chat(ask(LONG, model), deployment(provider.name, model))).usage
            seen[f"{kind} cached"] = seen.get(f"{kind} cached", 0) + usage.cached_input_tokens
            seen[f"{kind} written"] = seen.get(f"{kind} written", 0) + usage.cache_write_tokens
            seen[f"{kind} reasoning"] = seen.get(f"{kind} reasoning", 0) + usage.reasoning_tokens
    assert seen["openai cached"] and seen["anthropic cached"] and seen["gemini cached"]
    assert seen["anthropic written"] and not seen["openai written"]
    assert seen["gemini reasoning"] and not seen["openai reasoning"]


@pytest.mark.parametrize("kind", list(ADAPTERS))
async def test_streams_match_the_simulation(adapter: Callable[..., Provider], kind: str) -> None:
    provider, local = adapter(kind), _local(kind)
    model = ADAPTERS[kind][2]
    dep = deployment(provider.name, model)
    chunks: list[Chunk] = [c async for c in provider.stream(ask("Why do cats purr?", model, stream=True), dep)]
    want = await local.chat(ask("Why do cats purr?", model, max_tokens=4096 if kind == "anthropic" else None), dep)
    assert "".join(c.delta for c in chunks) == want.content
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    usages = [c.usage for c in chunks if c.usage is not None]
    assert usages and usages[-1] == want.usage


@pytest.mark.parametrize("kind", list(ADAPTERS))
@pytest.mark.parametrize("fields", [{"n": 2}, {"logprobs": True}, {"logprobs": True, "top_logprobs": 2},
                                    {"top_logprobs": 2}, {"response_format": {"type": "json_object"}}])
async def test_the_simulation_refuses_what_the_adapter_refuses(
    adapter: Callable[..., Provider], kind: str, fields: dict[str, Any]
) -> None:
    provider, local = adapter(kind), _local(kind)
    model = ADAPTERS[kind][2]
    dep = deployment(provider.name, model)
    outcomes: list[tuple[str, str | None, dict[str, Any] | None]] = []
    for who in (provider, local):
        try:
            answer = await who.chat(ask("Say hello", model, **fields), dep)
        except ProviderBadRequest as exc:
            outcomes.append(("refused", getattr(exc, "param", None), None))
        else:
            outcomes.append(("served", answer.content, answer.logprobs))
    assert outcomes[0] == outcomes[1], f"{kind}: over HTTP {outcomes[0][:2]}, in process {outcomes[1][:2]}"
    refused = outcomes[0][0] == "refused"
    assert refused == (kind != "openai" and ("response_format" not in fields or kind == "anthropic"))


@pytest.mark.parametrize("effort", [None, "low"])
async def test_gemini_thinking_stays_within_max_output_tokens(adapter: Callable[..., Provider],
                                                              effort: str | None) -> None:
    provider, local = adapter("gemini"), _local("gemini")
    dep = deployment(provider.name, "gemini-2.5-flash")
    extra = {"reasoning_effort": effort} if effort else {}
    for prompt in ("Tell me about owls and their habits", "Plan a week in Kyoto", LONG):
        for limit in (20, 60):
            got = await provider.chat(ask(prompt, dep.model, max_tokens=limit, **extra), dep)
            want = await local.chat(ask(prompt, dep.model, max_tokens=limit, **extra), dep)
            assert got.usage.output_tokens <= limit, f"{got.usage.output_tokens} > maxOutputTokens {limit}"
            assert (got.content, got.usage) == (want.content, want.usage)


@pytest.mark.parametrize("kind", ["openai", "gemini"])
async def test_embeddings_match_the_simulation(adapter: Callable[..., Provider], kind: str) -> None:
    provider, local = adapter(kind), _local(kind)
    model = ADAPTERS[kind][3]
    assert model is not None
    texts = ["reset my password", "how do I reset my password?"]
    got, want = await provider.embed(texts, model), await local.embed(texts, model)
    assert len(got.vectors) == 2
    for a, b in zip(got.vectors, want.vectors, strict=True):
        assert a == pytest.approx(b, abs=1e-9)
    assert got.usage.input_tokens == want.usage.input_tokens


async def test_anthropic_has_no_embeddings(adapter: Callable[..., Provider]) -> None:
    with pytest.raises(ProviderBadRequest, match="no embeddings endpoint"):
        await adapter("anthropic").embed(["x"], "anything")


@pytest.mark.parametrize("kind", list(ADAPTERS))
async def test_model_lists(adapter: Callable[..., Provider], kind: str) -> None:
    models = await adapter(kind).list_models()
    assert ADAPTERS[kind][2] in models


_FAULTS: list[tuple[str, type[ProviderError]]] = [
    ("500", ProviderServerError),
    ("503", ProviderServerError),
    ("429", ProviderRateLimited),
    ("401", ProviderAuthError),
    ("malformed", MalformedResponse),
    ("cut", ProviderConnectionError),
]


@pytest.mark.parametrize("kind", list(ADAPTERS))
@pytest.mark.parametrize(("fault", "error"), _FAULTS)
async def test_injected_faults_map_to_error_classes(
    adapter: Callable[..., Provider], kind: str, fault: str, error: type[ProviderError]
) -> None:
    provider = adapter(kind, headers={"X-Sim-Fault": fault})
    model = ADAPTERS[kind][2]
    with pytest.raises(error) as caught:
        await provider.chat(ask("hi", model), deployment(provider.name, model))
    assert type(caught.value) is error, f"{kind}: {fault} became {type(caught.value).__name__}"
    if fault == "429":
        assert isinstance(caught.value, ProviderRateLimited) and caught.value.retry_after
    if fault in ("500", "503", "429", "401"):
        assert caught.value.http_status == {"503": 529 if kind == "anthropic" else 503}.get(fault, int(fault))


@pytest.mark.parametrize("kind", list(ADAPTERS))
@pytest.mark.parametrize(("fault", "error"), [("cut", StreamInterrupted), ("malformed", MalformedResponse),
                                              ("429", ProviderRateLimited)])
async def test_stream_faults_map_to_error_classes(
    adapter: Callable[..., Provider], kind: str, fault: str, error: type[ProviderError]
) -> None:
    provider = adapter(kind, headers={"X-Sim-Fault": fault})
    model = ADAPTERS[kind][2]
    got: list[Chunk] = []
    with pytest.raises(error):
        async for chunk in provider.stream(ask("Tell me about rivers", model, stream=True),
                                           deployment(provider.name, model)):
            got.append(chunk)
    if fault == "cut":
        assert any(c.delta for c in got), "a cut stream delivers its first half"
        # No final usage: at most the prompt's so far (Anthropic reports it first), marked estimated.
        assert not any(c.usage and not c.usage.estimated for c in got)


@pytest.mark.parametrize("kind", list(ADAPTERS))
async def test_a_hanging_provider_times_out(adapter: Callable[..., Provider], kind: str) -> None:
    provider = adapter(kind, headers={"X-Sim-Fault": "timeout"}, timeout_s=0.3)
    model = ADAPTERS[kind][2]
    with pytest.raises(ProviderTimeout):
        await provider.chat(ask("hi", model), deployment(provider.name, model))


@pytest.mark.parametrize("kind", list(ADAPTERS))
async def test_context_too_long_and_unknown_models(adapter: Callable[..., Provider], kind: str) -> None:
    provider = adapter(kind)
    with pytest.raises(ContextTooLong):
        await provider.chat(ask("word " * 9_000, "llama3.1:8b", max_tokens=100),
                            deployment(provider.name, "llama3.1:8b"))
    with pytest.raises(ProviderBadRequest) as unknown:
        await provider.chat(ask("hi", "gpt-9"), deployment(provider.name, "gpt-9"))
    assert not isinstance(unknown.value, ContextTooLong)
