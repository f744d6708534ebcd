"""The Responses API when the provider fails: errors in the SDK's classes, nothing stored, every call recorded."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from sqlalchemy import text

from .._live import LiveServer


def client(live: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0, timeout=30)


def rows(live: LiveServer, sql: str) -> list[dict[str, Any]]:
    assert live.gateway.recorder is not None and live.gateway.store is not None
    live.gateway.recorder.flush()
    with live.gateway.store.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql)).mappings()]


def test_upstream_failure_is_502_recorded_and_not_stored(open_live: LiveServer) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client(open_live).responses.create(model="claude-haiku-4-5", input="hello", metadata={"sim_fault": "500"})
    assert info.value.status_code == 502
    calls = rows(open_live, "SELECT status, endpoint FROM calls")
    assert calls == [{"status": "error", "endpoint": "responses"}]
    assert rows(open_live, "SELECT id FROM responses") == []


def test_stream_cut_midway_ends_with_an_error_event(open_live: LiveServer) -> None:
    api = client(open_live)
    with pytest.raises(openai.APIError), api.responses.stream(
            model="claude-haiku-4-5", input="Tell me a long story about ships",
            metadata={"sim_fault": "cut"}) as stream:
        for _ in stream:
            pass
    assert rows(open_live, "SELECT id FROM responses") == []
    assert rows(open_live, "SELECT status, endpoint, stream FROM calls") == [
        {"status": "error", "endpoint": "responses", "stream": 1}]


def test_a_cached_answer_serves_responses_too(open_live: LiveServer) -> None:
    api = client(open_live)
    first = api.responses.with_raw_response.create(model="gpt-4o-mini", input="What is a B-tree?")
    second = api.responses.with_raw_response.create(model="gpt-4o-mini", input="What is a B-tree?")
    assert first.headers["x-ax-cache"] == "miss" and second.headers["x-ax-cache"] == "exact"
    assert first.parse().output_text == second.parse().output_text
    assert first.parse().id != second.parse().id
    assert len(rows(open_live, "SELECT id FROM responses")) == 2


def test_stored_responses_older_than_the_retention_are_forgotten(open_live: LiveServer) -> None:
    from axtui.server.responses_api import RETENTION_S

    api = client(open_live)
    old = api.responses.create(model="gpt-4o-mini", input="An old question")
    assert open_live.gateway.store is not None
    with open_live.gateway.store.connect() as conn:
        conn.execute(text("UPDATE responses SET created = created - :age WHERE id = :id"),
                     {"age": RETENTION_S + 60, "id": old.id})
    kept = api.responses.create(model="gpt-4o-mini", input="A new question")
    assert [r["id"] for r in rows(open_live, "SELECT id FROM responses")] == [kept.id]
    with pytest.raises(openai.NotFoundError):
        api.responses.retrieve(old.id)
