"""Malformed tool fields are a 400 naming the field, on every route, before any provider translates them.

The gateway's OpenAI, Anthropic and Gemini adapters call `ax sim serve`
over real HTTP on 127.0.0.1; each case sends a malformed request (plain
and streamed) to every model, then the same request with the field fixed,
which is served.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .._live import LiveServer
from ._sim_upstream import UPSTREAMS

MODELS = list(UPSTREAMS)  # one OpenAI, one Anthropic and one Gemini deployment
PARAMETERS = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                            "parameters": PARAMETERS}}
ASK = [{"role": "user", "content": "Weather in Oslo?"}]
CALLED = [
    *ASK,
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 4}'},
]


def _with_call(call: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation of `CALLED`, its tool call replaced by ``call``."""
    return [CALLED[0], {**CALLED[1], "tool_calls": [call]}, CALLED[2]]


def _post(gateway: LiveServer, key: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{gateway.url}{path}", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30)


def _refused(answer: httpx.Response, param: str, hint: str) -> dict[str, Any]:
    """The error of a 400 in OpenAI's shape that names ``param`` and says what is valid (``hint``)."""
    assert answer.status_code == 400, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_request", error
    assert error["param"] == param, error
    assert f"{param}: " in error["message"] and hint in error["message"], error
    return error


@pytest.mark.parametrize(("malformed", "fixed", "param", "hint"), [
    pytest.param({"tools": [{"type": "function", "function": {}}]}, {"tools": [WEATHER]},
                 "tools.0.function.name", "missing; must be 1 to 64 letters, digits, underscores or dashes",
                 id="tool-without-name"),
    pytest.param({"tools": [{"type": "function", "function": {"name": "get weather", "parameters": PARAMETERS}}]},
                 {"tools": [WEATHER]}, "tools.0.function.name", 'not "get weather"', id="tool-name-with-a-space"),
    pytest.param({"tools": [{"type": "function", "function": "get_weather"}]}, {"tools": [WEATHER]},
                 "tools.0.function", 'must be an object such as {"name": "get_weather"', id="tool-function-a-string"),
    pytest.param({"tools": [{"type": "function", "function": {**WEATHER["function"], "strict": "yes"}}]},
                 {"tools": [{"type": "function", "function": {**WEATHER["function"], "strict": True}}]},
                 "tools.0.function.strict", 'must be true or false, not "yes"', id="tool-strict-not-a-bool"),
    pytest.param({"tools": [WEATHER], "tool_choice": {"type": "function", "function": "get_weather"}},
                 {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
                 "tool_choice.function", 'such as {"name": "get_weather"}, not "get_weather"',
                 id="tool-choice-function-a-string"),
    pytest.param({"tools": [WEATHER], "tool_choice": "any"}, {"tools": [WEATHER], "tool_choice": "required"},
                 "tool_choice", 'must be "none", "auto", "required" or {"type": "function"',
                 id="tool-choice-unknown-word"),
    pytest.param({"tools": [WEATHER], "messages": _with_call({"id": "call_1", "type": "function",
                                                              "function": "get_weather"})},
                 {"tools": [WEATHER], "messages": CALLED}, "messages.1.tool_calls.0.function",
                 '{"name": "get_weather", "arguments": "{}"}, not "get_weather"', id="tool-call-function-a-string"),
    pytest.param({"tools": [WEATHER], "messages": _with_call({"type": "function", "function": {
                     "name": "get_weather", "arguments": "{}"}})},
                 {"tools": [WEATHER], "messages": CALLED}, "messages.1.tool_calls.0.id", "missing; must be a string",
                 id="tool-call-without-id"),
    pytest.param({"response_format": {"type": "json_schema", "json_schema": "answer"}},
                 {"response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": PARAMETERS}}},
                 "response_format.json_schema", 'such as {"name": "answer", "schema"', id="json-schema-a-string"),
])
def test_malformed_tool_fields_on_chat_completions_are_a_400_naming_the_field(
    over_sim: LiveServer, key: str, malformed: dict[str, Any], fixed: dict[str, Any], param: str, hint: str
) -> None:
    for model in MODELS:
        for stream in (False, True):
            body = {"model": model, "messages": ASK, "stream": stream, **malformed}
            answer = _post(over_sim, key, "/v1/chat/completions", body)
            _refused(answer, param, hint)
        served = _post(over_sim, key, "/v1/chat/completions", {"model": model, "messages": ASK, **fixed})
        assert served.status_code == 200, (model, served.text)


def test_a_malformed_tool_on_the_messages_api_is_a_400_in_anthropics_shape(over_sim: LiveServer, key: str) -> None:
    # A tool without input_schema goes on as sent: here, a chat function tool whose function is a string.
    for model in MODELS:
        ask: dict[str, Any] = {"model": model, "max_tokens": 200, "messages": ASK}
        answer = _post(over_sim, key, "/v1/messages", {**ask, "tools": [{"type": "function", "function": "f"}]})
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert body["type"] == "error" and body["error"]["param"] == "tools.0.function", body
        assert "must be an object such as" in body["error"]["message"], body
        claude_tool = {"name": "get_weather", "input_schema": PARAMETERS}
        assert _post(over_sim, key, "/v1/messages", {**ask, "tools": [claude_tool]}).status_code == 200
        # Fields are named as the Messages API names them, not as ax's translation into chat does.
        for malformed, param in [
            ({"tools": [{**claude_tool, "name": "get weather"}]}, "tools.0.name"),
            ({"tools": [claude_tool], "tool_choice": {"type": "tool", "name": "get weather"}}, "tool_choice.name"),
            ({"metadata": {"user_id": "alice smith"}}, "metadata.user_id"),
        ]:
            answer = _post(over_sim, key, "/v1/messages", {**ask, **malformed})
            assert answer.status_code == 400 and answer.json()["error"]["param"] == param, answer.text
            assert answer.json()["error"]["message"].startswith((f"invalid request: {param}: ", param)), answer.text


def test_a_malformed_function_tool_on_the_responses_api_is_a_400(over_sim: LiveServer, key: str) -> None:
    tool = {"type": "function", "name": "get_weather", "parameters": PARAMETERS}
    for model in MODELS:
        answer = _post(over_sim, key, "/v1/responses",
                       {"model": model, "input": "Weather in Oslo?", "tools": [{**tool, "strict": "yes"}]})
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        # Named as the Responses API names it: its function tools are flat, and a hosted tool may come first.
        assert error["type"] == "invalid_request_error" and error["param"] == "tools.0.strict", error
        assert 'must be true or false, not "yes"' in error["message"], error
        answer = _post(over_sim, key, "/v1/responses", {"model": model, "input": "Weather in Oslo?", "tools": [tool],
                                                         "tool_choice": {"type": "function", "name": "get weather"}})
        assert answer.status_code == 400 and answer.json()["error"]["param"] == "tool_choice.name", answer.text
        served = _post(over_sim, key, "/v1/responses",
                       {"model": model, "input": "Weather in Oslo?", "tools": [{**tool, "strict": True}]})
        assert served.status_code == 200, served.text
