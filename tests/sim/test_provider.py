"""`SimProvider` in process: deterministic answers, latency, faults, limits."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from axtui.clock import FakeClock
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
from axtui.providers._wire import UnsupportedParameter
from axtui.providers.sim import Degradation, Faults, Latency, ModelProfile, Profile, ProviderProfile, SimProvider
from axtui.tokens import estimate_tokens
from axtui.types import Chunk, Deployment

from .helpers import ask, deployment

MakeSim = Callable[..., SimProvider]
GPT4O = deployment("openai", "gpt-4o")


def _one(name: str = "acme", *, latency: Latency | None = None, faults: Faults | None = None,
         caching: str = "none") -> Profile:
    model = ModelProfile("m", context_window=4_000, max_output=1_000)
    provider = ProviderProfile(name, (model,), latency=latency or Latency(200, 400, 100),
                               faults=faults or Faults.none(), prompt_caching=caching)  # type: ignore[arg-type]
    return Profile("one", (provider,))


async def _timed(clock: FakeClock, sim: SimProvider, prompt: str, dep: Deployment = GPT4O,
                 **fields: Any) -> tuple[float, str]:
    start = clock.monotonic()
    response = await sim.chat(ask(prompt, dep.model, **fields), dep)
    return clock.monotonic() - start, response.content


async def test_same_seed_same_prompt_same_answer_and_latency(make_sim: MakeSim, clock: FakeClock) -> None:
    first = [await _timed(clock, make_sim(seed=3), "How do tides work?") for _ in range(1)]
    again = [await _timed(clock, make_sim(seed=3), "How do tides work?") for _ in range(1)]
    assert first == again
    assert first[0][0] > 0.1, "the demo profile takes real (simulated) time"


async def test_the_call_index_changes_latency_but_not_the_answer(make_sim: MakeSim, clock: FakeClock) -> None:
    sim = make_sim(seed=3)
    runs = [await _timed(clock, sim, "How do tides work?") for _ in range(5)]
    assert len({text for _, text in runs}) == 1, "the same question gets the same answer"
    assert len({round(t, 6) for t, _ in runs}) > 1, "latency varies from call to call"


async def test_different_prompts_or_seeds_differ(make_sim: MakeSim, clock: FakeClock) -> None:
    _, tides = await _timed(clock, make_sim(seed=3), "How do tides work?")
    _, bread = await _timed(clock, make_sim(seed=3), "How is sourdough bread baked?")
    assert tides != bread
    assert "tides" in tides.lower() and "sourdough" in bread.lower(), "answers are about the prompt"
    t3, _ = await _timed(clock, make_sim(seed=3), "How do tides work?")
    t4, _ = await _timed(clock, make_sim(seed=4), "How do tides work?")
    assert t3 != t4


async def test_latency_grows_with_output_length(make_sim: MakeSim, clock: FakeClock) -> None:
    profile = _one(latency=Latency(100, 100, 50))
    dep = deployment("acme", "m")
    short, _ = await _timed(clock, make_sim("acme", profile=profile), "Describe the ocean currents in detail", dep,
                            max_tokens=10)
    long, _ = await _timed(clock, make_sim("acme", profile=profile), "Describe the ocean currents in detail", dep)
    assert long > short + 0.5


async def test_the_fast_profile_takes_no_time(make_sim: MakeSim, clock: FakeClock) -> None:
    elapsed, text = await _timed(clock, make_sim(profile="fast"), "anything at all")
    assert elapsed == 0 and text


async def test_fault_rates_match_the_profile(make_sim: MakeSim) -> None:
    faults = Faults(error_rate=0.1, rate_limit_rate=0.1, timeout_rate=0.05, malformed_rate=0.05, hang_s=1)
    sim = make_sim("acme", profile=_one(latency=Latency.instant(), faults=faults))
    seen: Counter[str] = Counter()
    calls = 2_000
    for i in range(calls):
        try:
            await sim.chat(ask(f"question number {i % 50}", "m"), deployment("acme", "m"))
            seen["ok"] += 1
        except ProviderError as exc:
            seen[exc.kind] += 1
    assert sum(seen.values()) == calls
    expected = {"ProviderServerError": 0.1, "ProviderRateLimited": 0.1, "ProviderTimeout": 0.05,
                "MalformedResponse": 0.05, "ok": 0.7}
    for kind, rate in expected.items():
        assert abs(seen[kind] / calls - rate) < 0.03, f"{kind}: {seen[kind]} of {calls}"


async def test_failures_wait_like_the_real_thing(make_sim: MakeSim, clock: FakeClock) -> None:
    sim = make_sim("acme", profile=_one(faults=Faults(hang_s=20)), timeout_s=5)
    sim.inject("429", "timeout", "500")
    with pytest.raises(ProviderRateLimited) as limited:
        await sim.chat(ask("hello", "m"), deployment("acme", "m"))
    assert limited.value.retry_after is not None and limited.value.retry_after >= 1
    start = clock.monotonic()
    with pytest.raises(ProviderTimeout):
        await sim.chat(ask("hello", "m"), deployment("acme", "m"))
    assert clock.monotonic() - start == pytest.approx(5), "a timeout hangs until the client's own timeout"
    with pytest.raises(ProviderServerError) as server:
        await sim.chat(ask("hello", "m"), deployment("acme", "m"))
    assert server.value.http_status == 500
    await sim.chat(ask("hello", "m"), deployment("acme", "m"))


async def test_injected_and_requested_faults(make_sim: MakeSim) -> None:
    sim = make_sim(profile="fast")
    sim.inject("malformed", "401", "cut")
    with pytest.raises(MalformedResponse):
        await sim.chat(ask("hi"), GPT4O)
    with pytest.raises(ProviderAuthError):
        await sim.chat(ask("hi"), GPT4O)
    with pytest.raises(ProviderConnectionError):
        await sim.chat(ask("hi"), GPT4O)
    with pytest.raises(ProviderServerError):
        await sim.chat(ask("hi", metadata={"sim_fault": "503"}), GPT4O)
    with pytest.raises(ProviderBadRequest, match="unknown simulated fault"):
        await sim.chat(ask("hi", metadata={"sim_fault": "boom"}), GPT4O)
    with pytest.raises(ValueError, match="use one of"):
        sim.inject("explode")


async def test_degradation_window_on_a_fake_clock(make_sim: MakeSim, clock: FakeClock) -> None:
    spell = Degradation(offset_s=100, duration_s=100, period_s=1_000, slowdown=10, error_rate=0.5)
    profile = _one(latency=Latency(10, 20, 10_000))
    profile = replace(profile, providers=(replace(profile.providers[0], degradations=(spell,)),))
    sim = make_sim("acme", profile=profile)

    async def window(n: int) -> tuple[float, float]:
        failures, times = 0, []
        for i in range(n):
            start = clock.monotonic()
            try:
                await sim.chat(ask(f"status report {i}", "m"), deployment("acme", "m"))
                times.append(clock.monotonic() - start)
            except ProviderServerError as exc:
                assert exc.http_status == 503
                failures += 1
        return failures / n, sorted(times)[len(times) // 2]

    def at(elapsed: float) -> None:
        clock.advance(elapsed - sim.simulator.elapsed())

    before_rate, before_p50 = await window(100)
    assert sim.simulator.elapsed() < 100, "the calls before must end before the window opens"
    assert before_rate == 0
    at(110)
    during_rate, during_p50 = await window(100)
    assert sim.simulator.elapsed() < 200
    assert 0.35 < during_rate < 0.65
    assert during_p50 > 5 * before_p50
    at(210)
    after_rate, after_p50 = await window(100)
    assert after_rate == 0 and after_p50 < 2 * before_p50
    at(1_110)
    again_rate, _ = await window(100)
    assert again_rate > 0.3, "the window comes back every period"


async def test_the_degraded_profile_hurts_only_openai_early_on(make_sim: MakeSim, clock: FakeClock) -> None:
    outcomes: Counter[str] = Counter()
    for i in range(40):
        for name, dep in (("openai", GPT4O), ("gemini", deployment("gemini", "gemini-2.5-flash"))):
            sim = make_sim(name, profile="degraded")
            clock.advance(15)
            try:
                await sim.chat(ask(f"question {i}", dep.model), dep)
                outcomes[f"{name} ok"] += 1
            except ProviderServerError:
                outcomes[f"{name} failed"] += 1
    assert outcomes["gemini ok"] == 40
    assert 10 < outcomes["openai failed"] < 30


async def test_prompts_longer_than_the_context_window_are_refused(make_sim: MakeSim) -> None:
    sim = make_sim("local", profile="fast")
    dep = deployment("local", "llama3.1:8b")
    with pytest.raises(ContextTooLong, match="context window of 8192"):
        await sim.chat(ask("word " * 8_000, dep.model), dep)
    with pytest.raises(ContextTooLong):
        await sim.chat(ask("word " * 5_000, dep.model, max_tokens=2_000), dep)
    openai = make_sim("openai", profile="fast")
    assert (await openai.chat(ask("word " * 8_000), GPT4O)).content


async def test_requests_a_model_cannot_serve_are_bad_requests(make_sim: MakeSim) -> None:
    sim = make_sim("anthropic", profile="fast")
    with pytest.raises(ProviderBadRequest, match="serves: claude-sonnet-4-5, claude-haiku-4-5") as unknown:
        await sim.chat(ask("hi", "gpt-5"), deployment("anthropic", "gpt-5"))
    assert unknown.value.http_status == 404
    with pytest.raises(ProviderBadRequest, match="no JSON mode"):
        await sim.chat(ask("hi", "claude-haiku-4-5", response_format={"type": "json_object"}),
                       deployment("anthropic", "claude-haiku-4-5"))
    groq = make_sim("groq", profile="fast")
    image = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]
    request = ask("x", "llama-3.3-70b-versatile").model_copy(
        update={"messages": [ask("x").messages[0].model_copy(update={"content": image})]})
    with pytest.raises(ProviderBadRequest, match="does not accept images"):
        await groq.chat(request, deployment("groq", "llama-3.3-70b-versatile"))
    openai = make_sim("openai", profile="fast")
    with pytest.raises(ProviderBadRequest, match="embedding model"):
        await openai.chat(ask("hi", "text-embedding-3-small"), deployment("openai", "text-embedding-3-small"))
    with pytest.raises(ProviderBadRequest, match="max_tokens is too large"):
        await openai.chat(ask("hi", max_tokens=100_000), GPT4O)


async def test_max_tokens_cuts_the_answer(make_sim: MakeSim) -> None:
    sim = make_sim(profile="fast")
    full = await sim.chat(ask("Explain photosynthesis to a child"), GPT4O)
    cut = await sim.chat(ask("Explain photosynthesis to a child", max_tokens=12), GPT4O)
    assert full.finish_reason == "stop" and full.usage.output_tokens > 12
    assert cut.finish_reason == "length"
    assert 0 < cut.usage.output_tokens <= 12
    assert full.content.startswith(cut.content)


async def test_stop_sequences_and_json_mode(make_sim: MakeSim) -> None:
    sim = make_sim(profile="fast")
    full = (await sim.chat(ask("Explain photosynthesis to a child"), GPT4O)).content
    stopped = await sim.chat(ask("Explain photosynthesis to a child", stop=["."]), GPT4O)
    assert stopped.content == full[: full.index(".")]
    as_json = await sim.chat(ask("Explain photosynthesis", response_format={"type": "json_object"}), GPT4O)
    assert isinstance(json.loads(as_json.content)["answer"], str)


async def test_streamed_choices_and_logprobs_are_the_plain_answers(make_sim: MakeSim) -> None:
    request = ask("Say hello twice", n=2, logprobs=True, top_logprobs=3)
    plain = await make_sim(seed=4, profile="fast").chat(request, GPT4O)
    chunks = [c async for c in make_sim(seed=4, profile="fast").stream(request, GPT4O)]
    assert plain.extra_choices is not None and plain.logprobs is not None
    second = plain.extra_choices[0]
    assert {i: "".join(c.delta for c in chunks if c.choice == i) for i in (0, 1)} == {
        0: plain.content, 1: second["message"]["content"]}
    assert [(c.choice, c.finish_reason) for c in chunks if c.finish_reason] == [(0, "stop"), (1, "stop")]
    for choice, logprobs in ((0, plain.logprobs), (1, second["logprobs"])):
        streamed = [t for c in chunks if c.choice == choice and c.logprobs for t in c.logprobs["content"]]
        assert streamed == logprobs["content"], "a stream's pieces carry the plain answer's logprobs"
    tokens = plain.logprobs["content"]
    assert "".join(t["token"] for t in tokens) == plain.content
    for t in tokens:
        ranked = [alt["logprob"] for alt in t["top_logprobs"]]
        assert len(ranked) == 3 and t["top_logprobs"][0]["token"] == t["token"] and ranked == sorted(ranked, reverse=True)
    unranked = await make_sim(profile="fast").chat(ask("Say hello", logprobs=True), GPT4O)
    assert unranked.logprobs and all(t["top_logprobs"] == [] for t in unranked.logprobs["content"])


@pytest.mark.parametrize("name", ["anthropic", "gemini"])
@pytest.mark.parametrize(("fields", "param"), [({"n": 2}, "n"), ({"logprobs": True}, "logprobs"),
                                               ({"top_logprobs": 2}, "top_logprobs")])
async def test_anthropic_and_gemini_refuse_n_and_logprobs_as_their_adapters_do(
    make_sim: MakeSim, name: str, fields: dict[str, Any], param: str
) -> None:
    sim = make_sim(name, profile="fast")
    dep = deployment(name, sim.spec.model_names[0])
    with pytest.raises(UnsupportedParameter) as plain:
        await sim.chat(ask("hi", dep.model, **fields), dep)
    with pytest.raises(UnsupportedParameter) as streamed:
        _ = [c async for c in sim.stream(ask("hi", dep.model, **fields), dep)]
    assert plain.value.param == streamed.value.param == param and plain.value.http_status == 400
    assert sim.served == {}, "refused before the model was called"


async def test_only_anthropic_refuses_json_object(make_sim: MakeSim) -> None:
    as_json = {"response_format": {"type": "json_object"}}
    anthropic = make_sim("anthropic", profile="fast")
    with pytest.raises(UnsupportedParameter, match="no JSON mode, only JSON schemas") as refused:
        await anthropic.chat(ask("hi", "claude-haiku-4-5", **as_json), deployment("anthropic", "claude-haiku-4-5"))
    assert refused.value.param == "response_format"
    gemini = await make_sim("gemini", profile="fast").chat(ask("hi", "gemini-2.5-flash", **as_json),
                                                           deployment("gemini", "gemini-2.5-flash"))
    assert isinstance(json.loads(gemini.content), dict)


@pytest.mark.parametrize("limit", [8, 60, 300])
@pytest.mark.parametrize("thinking", [None, {"includeThoughts": True, "thinkingBudget": 1024}])
async def test_thinking_counts_within_the_output_limit(make_sim: MakeSim, limit: int,
                                                       thinking: dict[str, Any] | None) -> None:
    dep = deployment("gemini", "gemini-2.5-flash")
    extra = {"thinkingConfig": thinking} if thinking else {}
    for prompt in ("Tell me about owls and their habits", "Plan a week in Kyoto", "Why is the sky blue?"):
        answer = await make_sim("gemini", profile="fast").chat(ask(prompt, dep.model, max_tokens=limit, **extra), dep)
        usage = answer.usage
        assert usage.output_tokens <= limit, f"{usage.output_tokens} output tokens > max_tokens {limit}"
        assert answer.content and usage.output_tokens == estimate_tokens(answer.content) + usage.reasoning_tokens
        if thinking:
            assert usage.reasoning_tokens == estimate_tokens(answer.reasoning)


async def test_a_stream_is_text_then_finish_then_usage(make_sim: MakeSim) -> None:
    prompt = "Why is the sky blue?"
    whole = await make_sim(seed=9, profile="fast").chat(ask(prompt), GPT4O)
    chunks: list[Chunk] = [c async for c in make_sim(seed=9, profile="fast").stream(ask(prompt), GPT4O)]
    text, finish, usage = chunks[:-2], chunks[-2], chunks[-1]
    assert len(text) > 3 and all(c.delta and c.finish_reason is None and c.usage is None for c in text)
    assert "".join(c.delta for c in text) == whole.content
    assert finish.finish_reason == "stop" and not finish.delta
    assert usage.usage == whole.usage and not usage.delta
    assert {c.id for c in chunks} == {whole.id}


async def test_stream_chunks_arrive_over_time(make_sim: MakeSim, clock: FakeClock) -> None:
    sim = make_sim("acme", profile=_one(latency=Latency(500, 500, 20)))
    stamps = []
    start = clock.monotonic()
    async for _ in sim.stream(ask("Describe a thunderstorm", "m"), deployment("acme", "m")):
        stamps.append(clock.monotonic() - start)
    assert stamps[0] == pytest.approx(0.5, rel=0.3), "the first chunk comes after the time to first token"
    assert stamps[-1] > stamps[0] + 1, "later chunks follow at the output rate"


async def test_a_cut_stream_stops_halfway_with_stream_interrupted(make_sim: MakeSim) -> None:
    sim = make_sim(profile="fast")
    whole = await sim.chat(ask("Why is the sky blue?"), GPT4O)
    sim.inject("cut")
    got: list[Chunk] = []
    with pytest.raises(StreamInterrupted):
        async for chunk in sim.stream(ask("Why is the sky blue?"), GPT4O):
            got.append(chunk)
    partial = "".join(c.delta for c in got)
    assert got and all(c.usage is None and c.finish_reason is None for c in got)
    assert whole.content.startswith(partial) and len(partial) < len(whole.content)


async def test_other_stream_faults_raise_before_any_text(make_sim: MakeSim) -> None:
    sim = make_sim(profile="fast")
    sim.inject("429")
    got = []
    with pytest.raises(ProviderRateLimited):
        async for chunk in sim.stream(ask("hi"), GPT4O):
            got.append(chunk)
    assert got == []


async def test_usage_reports_cache_and_reasoning_tokens(make_sim: MakeSim) -> None:
    long_prompt = "The quarterly report covers revenue, churn and hiring across regions. " * 120
    openai = make_sim("openai", profile="fast")
    cached = [(await openai.chat(ask(long_prompt), GPT4O)).usage for _ in range(20)]
    assert any(u.cached_input_tokens for u in cached)
    assert all(u.cached_input_tokens % 128 == 0 and u.cached_input_tokens < u.input_tokens for u in cached)
    assert not any(u.cache_write_tokens for u in cached), "OpenAI reports no cache writes"
    anthropic = make_sim("anthropic", profile="fast")
    dep = deployment("anthropic", "claude-haiku-4-5")
    writes = [(await anthropic.chat(ask(long_prompt, dep.model), dep)).usage for _ in range(20)]
    assert any(u.cache_write_tokens for u in writes) and any(u.cached_input_tokens for u in writes)
    groq = make_sim("groq", profile="fast")
    dep = deployment("groq", "llama-3.3-70b-versatile")
    assert (await groq.chat(ask(long_prompt, dep.model), dep)).usage.cached_input_tokens == 0
    short = (await openai.chat(ask("hi"), GPT4O)).usage
    assert short.cached_input_tokens == 0
    gemini = make_sim("gemini", profile="fast")
    dep = deployment("gemini", "gemini-2.5-pro")
    thinking = (await gemini.chat(ask("Plan a trip to Kyoto", dep.model), dep)).usage
    assert 0 < thinking.reasoning_tokens < thinking.output_tokens


async def test_embeddings_are_deterministic_unit_vectors(make_sim: MakeSim) -> None:
    sim = make_sim(profile="fast")
    texts = ["How do I reset my password?", "how do i reset my password", "Best pizza in Naples"]
    first = await sim.embed(texts, "text-embedding-3-small")
    again = await make_sim(profile="fast", seed=42).embed(texts, "text-embedding-3-small")
    assert first.vectors == again.vectors
    assert all(len(v) == 256 and math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-9) for v in first.vectors)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(first.vectors[0], first.vectors[1]) > 0.8 > cos(first.vectors[0], first.vectors[2])
    assert first.usage.input_tokens > 0
    with pytest.raises(ProviderBadRequest, match="chat model"):
        await sim.embed(["x"], "gpt-4o")


async def test_served_counts_calls_per_model_and_lists_models(make_sim: MakeSim) -> None:
    sim = make_sim(profile="fast")
    sim.inject("500")
    with pytest.raises(ProviderServerError):
        await sim.chat(ask("a"), GPT4O)
    await sim.chat(ask("b"), GPT4O)
    await sim.embed(["c"], "text-embedding-3-small")
    assert sim.served == {"gpt-4o": 2, "text-embedding-3-small": 1}
    assert await sim.list_models() == ["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"]
