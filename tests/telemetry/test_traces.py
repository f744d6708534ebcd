"""Traces of calls as a collector receives them: spans, attributes and parent links."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from axtui.bus import CallRecorded
from axtui.config import Settings
from axtui.engine import CallOptions, Gateway
from axtui.engine.compose import build_gateway
from axtui.errors import ProviderServerError, RateLimited
from axtui.types import Caller, CallRecord, ChatRequest
from tests.engine.fakes import ScriptedProvider
from tests.telemetry.receiver import ReceivedSpan, Receiver

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


def _settings(endpoint: str, *names: str, cache: bool = False, **extra: Any) -> Settings:
    data: dict[str, Any] = {
        "providers": [{"name": n, "kind": "openai", "models": ["gpt-4o"], "max_retries": 0} for n in names],
        "cache": {"enabled": cache, "semantic": False},
        "telemetry": {"otlp_endpoint": endpoint, "export_timeout_s": 1, **extra.pop("telemetry", {})},
    }
    data.update(extra)
    return Settings.model_validate(data)


def _request(text: str = "hello there", **kw: Any) -> ChatRequest:
    return ChatRequest.model_validate({"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **kw})


@pytest.fixture
async def make(receiver: Receiver) -> AsyncIterator[Any]:
    made: list[Gateway] = []

    async def factory(*providers: ScriptedProvider, **kw: Any) -> tuple[Gateway, list[CallRecord]]:
        gw = await build_gateway(_settings(receiver.url, *(p.name for p in providers), **kw),
                                 providers={p.name: p for p in providers})
        records: list[CallRecord] = []
        gw.bus.subscribe(lambda ev: records.append(ev.record) if isinstance(ev, CallRecorded) else None)
        made.append(gw)
        return gw, records

    yield factory
    for gw in made:
        await gw.aclose()


def _one_root(receiver: Receiver, spans: int) -> ReceivedSpan:
    receiver.wait_for(spans)
    [root] = receiver.roots()
    return root


def _names(span: ReceivedSpan) -> list[str]:
    return sorted(c.name for c in span.children)


async def test_a_plain_call_is_a_server_span_with_its_stages_and_attempt(make: Any, receiver: Receiver) -> None:
    gw, records = await make(ScriptedProvider("a"))
    await gw.call(_request(temperature=0.2), Caller(user="alice", key="k1"))
    await gw.aclose()
    root = _one_root(receiver, 4)
    [rec] = records
    assert (root.name, root.kind, root.error, root.service) == ("chat gpt-4o", "SERVER", False, "ax")
    a = root.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert (a["gen_ai.request.model"], a["gen_ai.response.model"]) == ("gpt-4o", "gpt-4o")
    assert a["gen_ai.provider.name"] == "openai"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (10, 5)
    assert a["gen_ai.request.temperature"] == pytest.approx(0.2)
    assert (a["ax.user"], a["ax.key"], a["ax.cache"], a["ax.request_id"]) == ("alice", "k1", "miss", rec.request_id)
    assert a["ax.cost_nanos"] == rec.cost_nanos and rec.cost_nanos
    assert a["ax.cost_usd"] == pytest.approx(rec.cost_nanos / 1e9)
    assert a["ax.route"] == rec.route
    assert "gen_ai.input.messages" not in a, "content is only sent when the operator opts in"
    assert _names(root) == ["cache lookup", "chat gpt-4o", "route"]
    attempt = next(c for c in root.children if c.kind == "CLIENT")
    assert attempt.attributes["ax.attempt"] == 1 and attempt.attributes["ax.deployment"] == "a/gpt-4o"
    assert {c.trace_id for c in root.children} == {root.trace_id}


async def test_a_clients_traceparent_is_continued(make: Any, receiver: Receiver) -> None:
    gw, _ = await make(ScriptedProvider("a"))
    await gw.call(_request(), options=CallOptions(traceparent=f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"))
    await gw.aclose()
    spans = receiver.wait_for(4)
    root = next(s for s in spans if s.kind == "SERVER")
    assert (root.trace_id, root.parent_id) == (PARENT_TRACE, PARENT_SPAN)
    assert {s.trace_id for s in spans} == {PARENT_TRACE}


async def test_a_stream_is_traced_like_a_call(make: Any, receiver: Receiver) -> None:
    gw, records = await make(ScriptedProvider("a"))
    answer = await gw.stream(_request(stream=True)).collect()
    await gw.aclose()
    root = _one_root(receiver, 4)
    assert answer.content.startswith("a ")
    assert root.attributes["ax.stream"] is True and root.attributes["ax.status"] == "ok"
    assert root.attributes["gen_ai.usage.output_tokens"] == records[0].output_tokens
    assert _names(root) == ["cache lookup", "chat gpt-4o", "route"]


async def test_a_cached_answer_has_no_upstream_attempt(make: Any, receiver: Receiver) -> None:
    gw, _ = await make(ScriptedProvider("a"), cache=True)
    await gw.call(_request("what is a write-ahead log"))
    await gw.call(_request("what is a write-ahead log"))
    await gw.aclose()
    receiver.wait_for(4 + 2)
    roots = sorted(receiver.roots(), key=lambda s: s.attributes["ax.cache"])
    assert [r.attributes["ax.cache"] for r in roots] == ["exact", "miss"]
    assert _names(roots[0]) == ["cache lookup"]
    assert roots[0].attributes["ax.cost_nanos"] == 0


async def test_a_fallback_shows_each_attempt_and_which_failed(make: Any, receiver: Receiver) -> None:
    a = ScriptedProvider("a", [ProviderServerError("boom", provider="a", http_status=500)])
    gw, _ = await make(a, ScriptedProvider("b"))
    await gw.call(_request())
    await gw.aclose()
    root = _one_root(receiver, 5)
    attempts = sorted((c for c in root.children if c.kind == "CLIENT"), key=lambda c: c.attributes["ax.attempt"])
    assert [(c.attributes["ax.provider"], c.error) for c in attempts] == [("a", True), ("b", False)]
    assert attempts[0].attributes["error.type"] == "ProviderServerError"
    assert (root.error, root.attributes["ax.attempts"], root.attributes["ax.provider"]) == (False, 2, "b")


async def test_a_refused_call_is_an_error_span_without_attempts(make: Any, receiver: Receiver) -> None:
    gw, _ = await make(ScriptedProvider("a"), ratelimit={"backend": "memory", "global_requests": "1/minute"})
    await gw.call(_request())
    with pytest.raises(RateLimited):
        await gw.call(_request("another question"))
    await gw.aclose()
    receiver.wait_for(4 + 1)
    refused = next(r for r in receiver.roots() if r.error)
    assert refused.attributes["ax.status"] == "rate_limited"
    assert refused.attributes["error.type"] == "RateLimited"
    assert refused.children == []


async def test_content_is_captured_only_when_asked_and_scrubbed(make: Any, receiver: Receiver) -> None:
    gw, _ = await make(ScriptedProvider("a"), telemetry={"capture_content": True})
    await gw.call(_request("my key is sk-abcdefghijklmnopqrstuvwx, keep it"))
    await gw.aclose()
    root = _one_root(receiver, 4)
    sent = json.loads(root.attributes["gen_ai.input.messages"])
    assert sent[0]["role"] == "user"
    assert "sk-abcdefghijklmnopqrstuvwx" not in sent[0]["parts"][0]["content"]
    assert "keep it" in sent[0]["parts"][0]["content"]
    answer = json.loads(root.attributes["gen_ai.output.messages"])
    assert answer[0]["parts"][0]["content"].startswith("a ")


async def test_the_upstream_request_carries_the_attempts_trace_context(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AX_TEST_UPSTREAM_KEY", "test-upstream-key")
    seen: list[str | None] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("traceparent"))
        return httpx.Response(200, json={
            "id": "x", "object": "chat.completion", "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        })

    settings = _settings(receiver.url)
    data = settings.model_dump()
    data["providers"] = [{"name": "up", "kind": "openai", "models": ["gpt-4o"], "max_retries": 0,
                          "base_url": "http://upstream.test/v1", "api_key_env": "AX_TEST_UPSTREAM_KEY"}]
    gw = await build_gateway(Settings.model_validate(data), transport=httpx.MockTransport(upstream))
    try:
        await gw.call(_request())
    finally:
        await gw.aclose()
    spans = receiver.wait_for(4)
    attempt = next(s for s in spans if s.kind == "CLIENT")
    [sent] = seen
    assert sent is not None and sent.startswith(f"00-{attempt.trace_id}-{attempt.span_id}-")
    assert int(sent[-2:], 16) & 1, "the sampled flag is set, so the upstream keeps its spans"


async def test_a_dead_collector_fails_no_call_and_the_loss_is_counted(caplog: pytest.LogCaptureFixture) -> None:
    from tests.server._live import free_port

    caplog.set_level(logging.WARNING, "axtui.telemetry")
    gw = await build_gateway(_settings(f"http://127.0.0.1:{free_port()}", "a"),
                             providers={"a": ScriptedProvider("a")})
    try:
        for i in range(20):
            assert (await gw.chat(_request(f"question {i}"))).content
    finally:
        await gw.aclose()
    stats = gw.telemetry.stats()
    assert stats["exported"] == 0
    assert stats["failed"] + stats["dropped"] == 20 * 4
    said = [r.getMessage() for r in caplog.records if "collector" in r.getMessage()]
    assert len(said) == 1 and "did not accept" in said[0], "the log says so once, not for every lost batch"


def test_tracing_is_off_by_default_and_the_sdk_is_not_even_imported() -> None:
    code = (
        "import asyncio, sys\n"
        "from axtui.engine.compose import build_gateway\n"
        "from axtui.config import Settings\n"
        "async def main():\n"
        "    gw = await build_gateway(Settings())\n"
        "    assert not gw.telemetry.enabled\n"
        "    await gw.aclose()\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env_clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env_clean)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_standard_variables_switch_tracing_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from axtui.telemetry import traces_endpoint

    assert traces_endpoint(Settings()) is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    assert traces_endpoint(Settings()) == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:4318/custom")
    assert traces_endpoint(Settings()) == "http://other:4318/custom"
    configured = Settings.model_validate({"telemetry": {"otlp_endpoint": "http://mine:4318"}})
    assert traces_endpoint(configured) == "http://mine:4318/v1/traces"
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert traces_endpoint(configured) is None


def test_ax_serve_continues_the_callers_trace_and_counts_spans_on_metrics(receiver: Receiver) -> None:
    from tests.server._live import LiveServer, fast_fleet

    data = fast_fleet().model_dump()
    data["telemetry"] = {"otlp_endpoint": receiver.url}
    server = LiveServer(Settings.model_validate(data), no_auth=True).start()
    try:
        body = {"model": "fast", "messages": [{"role": "user", "content": "trace me"}]}
        parent = {"traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"}
        reply = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=parent, timeout=30)
        assert reply.status_code == 200
        other = {"model": "fast", "messages": [{"role": "user", "content": "a different question"}], "stream": True}
        streamed = httpx.post(f"{server.url}/v1/chat/completions", json=other,
                              headers={"traceparent": "not-a-trace-context"}, timeout=30)
        assert streamed.status_code == 200, "a malformed traceparent starts a new trace, it does not fail the call"
        spans = receiver.wait_for(8)
        roots = [s for s in spans if s.kind == "SERVER"]
        continued = next(s for s in roots if s.trace_id == PARENT_TRACE)
        assert continued.parent_id == PARENT_SPAN
        assert continued.attributes["ax.request_id"] == reply.headers["x-ax-request-id"]
        assert any(s.trace_id != PARENT_TRACE and s.parent_id == "" for s in roots)
        metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
        assert 'ax_telemetry_spans_total{outcome="exported"}' in metrics
    finally:
        server.stop()


def test_the_metrics_of_the_metrics_endpoint_are_pushed_over_otlp_when_asked(receiver: Receiver) -> None:
    from tests.server._live import LiveServer, fast_fleet

    data = fast_fleet().model_dump()
    data["telemetry"] = {"otlp_endpoint": receiver.url, "export_metrics": True, "metrics_interval_s": 1}
    server = LiveServer(Settings.model_validate(data), no_auth=True).start()
    try:
        body = {"model": "fast", "messages": [{"role": "user", "content": "count me"}]}
        for _ in range(3):
            assert httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30).status_code == 200
        deadline = time.monotonic() + 15
        while sum(v for v, _ in receiver.metrics.get("ax_requests_total", [])) < 3:
            assert time.monotonic() < deadline, receiver.metrics.get("ax_requests_total")
            time.sleep(0.1)
        points = receiver.metrics["ax_requests_total"]
        assert {p[1]["cache"] for p in points} == {"miss", "exact"}
        assert receiver.wait_for_metric("ax_request_duration_seconds_count")
        assert receiver.wait_for_metric("ax_telemetry_spans_total")
    finally:
        server.stop()
