"""/openapi.json documents every route accurately; schemathesis finds no 5xx."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from axtui.server import anthropic_wire as aw
from axtui.server import wire
from axtui.types import ChatRequest, ChatResponse, Chunk, Usage

from ._live import ADMIN, LiveServer
from .conftest import fleet_settings


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[LiveServer]:
    """One server for every generated case (no auth, so cases reach the handlers)."""
    mp = pytest.MonkeyPatch()
    import tempfile

    with tempfile.TemporaryDirectory() as home:
        mp.setenv("AX_HOME", home)
        server = LiveServer(fleet_settings(), no_auth=True).start()
        yield server
        server.stop()
    mp.undo()


def test_hot_routes_are_documented(fuzzed: LiveServer) -> None:
    spec = httpx.get(f"{fuzzed.url}/openapi.json").json()
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChatRequest")
    assert set(chat["responses"]) >= {"200", "400", "401", "402", "404", "413", "429", "502", "504"}
    assert "x-ax-cache" in chat["responses"]["200"]["headers"]
    assert {"/v1/embeddings", "/v1/messages", "/v1/models", "/api/budgets", "/metrics"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert {"ChatRequest", "ChatCompletion", "ChatCompletionChunk", "ErrorResponse", "AnthropicRequest"} <= set(schemas)
    # Validation errors are 400 in the error shape, as served, never FastAPI's 422.
    assert all("422" not in op["responses"] for item in spec["paths"].values() for op in item.values())


def test_answers_match_their_documented_models() -> None:
    response = ChatResponse("hi", "gpt-4o-mini", Usage(10, 2, cached_input_tokens=4), tool_calls=None)
    wire.ChatCompletion.model_validate(wire.completion_body(response, "chatcmpl-ax1"))
    enc = wire.StreamEncoder("chatcmpl-ax1", "m", 1, include_usage=True)

    events = [enc.encode(Chunk(delta="a")), enc.encode(Chunk(finish_reason="stop")), enc.encode(Chunk(usage=Usage(3, 1)))]
    events.append(enc.finish())
    for blob in events:
        for line in blob.decode().splitlines():
            if line.startswith("data: {"):
                wire.ChatCompletionChunk.model_validate(json.loads(line[6:]))
    wire.EmbeddingList.model_validate(wire.embedding_body([[0.5, 0.5]], "e", 3, "base64"))
    aw.AnthropicMessage.model_validate(aw.message_body(response, "msg_ax1"))
    ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "x"}]})


# A never-ending stream cannot be called like a request; it has its own test.
_SKIP = {("GET", "/api/metrics/stream")}


def test_schemathesis_finds_no_server_errors(fuzzed: LiveServer) -> None:
    spec = httpx.get(f"{fuzzed.url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    failures: list[Any] = []
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in _SKIP:
            continue

        @given(case=op.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck),
                  phases=[Phase.explicit, Phase.generate], database=None)
        def check(case: Any) -> None:
            response = case.call(base_url=fuzzed.url, timeout=30)
            if response.status_code >= 500:
                failures.append((case.method, case.path, response.status_code, response.text[:300]))

        check()
    assert not failures, failures


#: The operations whose constraints the spec states, so every input it allows is accepted.
_STATED = r"^/(api/alerts|v1/embeddings|api/budgets|api/ratelimits)$"
_CONFORMANCE = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
                "response_headers_conformance")


def _schemathesis(url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    st = Path(sys.executable).with_name("st")
    command = [str(st), "run", f"{url}/openapi.json", "--workers", "1", "--max-examples", "15", "--seed", "20",
               "--no-color", "--phases", "coverage,fuzzing", "--generation-database", "none",
               "-H", f"Authorization: Bearer {ADMIN}", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp, timeout=600)


def test_the_spec_states_what_the_api_enforces(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """schemathesis: inputs the spec allows are accepted; answers, statuses and headers are as documented."""
    monkeypatch.setenv("AX_ADMIN_KEY", ADMIN)
    server = LiveServer(fleet_settings()).start()
    try:
        stated = _schemathesis(server.url, tmp_path, "--checks", f"positive_data_acceptance,{_CONFORMANCE}",
                               "--include-path-regex", _STATED, "--include-method-regex", "^(POST|PUT)$")
        assert stated.returncode == 0, stated.stdout[-6000:]
        everything = _schemathesis(server.url, tmp_path, "--checks", _CONFORMANCE,
                                   "--exclude-path", "/api/metrics/stream")
        assert everything.returncode == 0, everything.stdout[-6000:]
    finally:
        server.stop()


def test_the_metrics_streams_events_match_their_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each event is documented (schemathesis reads the stream); each event's JSON matches its component."""
    import jsonschema_rs
    from schemathesis.specs.openapi.checks import response_schema_conformance

    monkeypatch.setenv("AX_ADMIN_KEY", ADMIN)
    server = LiveServer(fleet_settings()).start()
    try:
        auth = {"Authorization": f"Bearer {ADMIN}"}
        spec = httpx.get(f"{server.url}/openapi.json").json()
        operation = schemathesis.openapi.from_dict(spec)["/api/metrics/stream"]["GET"]
        case = operation.Case(query={"interval": 0.2, "count": 2})
        response = case.call(base_url=server.url, headers=auth, timeout=30)
        assert response.status_code == 200 and response.text.count("event: snapshot") == 2
        case.validate_response(response, checks=[response_schema_conformance])
        snapshot = jsonschema_rs.validator_for({"$ref": "#/components/schemas/MetricsSnapshot",
                                                "components": spec["components"]})
        datas = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
        assert len(datas) == 2
        for data in datas:
            snapshot.validate(data)
        # The schema says something: a snapshot out of shape fails it.
        assert not snapshot.is_valid({**datas[0], "totals": {"requests": "many"}})
        assert not snapshot.is_valid({k: v for k, v in datas[0].items() if k != "series"})
    finally:
        server.stop()
