"""Reasoning effort as thinking budgets, thinking blocks sent back, and what only OpenAI-compatible servers serve."""

from __future__ import annotations

from typing import Any

import pytest

from axtui.providers._wire import UnsupportedParameter
from axtui.providers.anthropic import messages_body
from axtui.providers.gemini import generate_body
from axtui.providers.openai import chat_body
from axtui.providers.reasoning import ANTHROPIC_BUDGETS, GEMINI_BUDGETS, summarises_thinking
from axtui.types import ChatRequest, Deployment

DEP = Deployment(provider="p", model="m", upstream_model="m")
SIGNED = {"type": "thinking", "thinking": "First, the units.", "signature": "c2lnbmVk"}


def chat(**fields: Any) -> ChatRequest:
    return ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields})


@pytest.mark.parametrize("effort", list(ANTHROPIC_BUDGETS))
def test_effort_becomes_anthropics_thinking_budget(effort: str) -> None:
    body = messages_body(chat(reasoning_effort=effort, max_tokens=1000, temperature=0.2, top_k=5), DEP, stream=False)
    budget = ANTHROPIC_BUDGETS[effort]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    # Thinking counts inside max_tokens, which must stay above the budget; temperature and top_k are refused beside it.
    assert body["max_tokens"] == budget + 1000
    assert "temperature" not in body and "top_k" not in body and "reasoning_effort" not in body


def test_no_effort_or_none_means_no_thinking_and_native_thinking_wins() -> None:
    assert "thinking" not in messages_body(chat(), DEP, stream=False)
    assert "thinking" not in messages_body(chat(reasoning_effort="none"), DEP, stream=False)
    native = {"type": "enabled", "budget_tokens": 5000}
    body = messages_body(chat(reasoning_effort="high", thinking=native, max_tokens=9000), DEP, stream=False)
    assert body["thinking"] == native and body["max_tokens"] == 9000


@pytest.mark.parametrize("effort", list(GEMINI_BUDGETS))
def test_effort_becomes_geminis_thinking_budget(effort: str) -> None:
    config = generate_body(chat(reasoning_effort=effort))["generationConfig"]
    budget = GEMINI_BUDGETS[effort]
    assert config["thinkingConfig"] == {"thinkingBudget": budget, "includeThoughts": budget > 0}


def test_gemini_takes_anthropics_thinking_setting_and_keeps_its_own() -> None:
    body = generate_body(chat(thinking={"type": "enabled", "budget_tokens": 3000}))
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 3000, "includeThoughts": True}
    assert "thinking" not in body
    own = generate_body(chat(reasoning_effort="high", thinkingConfig={"thinkingBudget": 7}))
    assert own["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 7}


def test_signed_thinking_goes_back_first_to_anthropic_and_nowhere_else() -> None:
    call = {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    req = ChatRequest.model_validate({"model": "m", "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [call],
         "thinking_blocks": [SIGNED, {"type": "redacted_thinking", "data": "b3BhcXVl"}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "ok"},
    ]})
    assistant = messages_body(req, DEP, stream=False)["messages"][1]
    assert [b["type"] for b in assistant["content"]] == ["thinking", "redacted_thinking", "tool_use"]
    assert assistant["content"][0] == SIGNED
    sent = chat_body(req, DEP, stream=False)["messages"][1]
    assert "thinking_blocks" not in sent and sent["tool_calls"] == [call]
    gemini_parts = generate_body(req)["contents"][1]["parts"]
    assert all("functionCall" in p for p in gemini_parts)


@pytest.mark.parametrize(("fields", "param"), [({"n": 3}, "n"), ({"logprobs": True}, "logprobs"),
                                               ({"top_logprobs": 2}, "top_logprobs")])
def test_only_openai_compatible_bodies_carry_n_and_logprobs(fields: dict[str, Any], param: str) -> None:
    body = chat_body(chat(**fields), DEP, stream=False)
    assert all(body[k] == v for k, v in fields.items())
    for build in (lambda r: messages_body(r, DEP, stream=False), generate_body):
        with pytest.raises(UnsupportedParameter) as info:
            build(chat(**fields))
        assert info.value.param == param and param in info.value.message


@pytest.mark.parametrize("fields", [{"reasoning_effort": "extreme"}, {"top_logprobs": 99}, {"logprobs": "yes"},
                                    {"n": 0}])
def test_bad_values_are_refused_when_the_request_is_read(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        chat(**fields)


def test_openai_bodies_leave_out_anthropics_thinking_setting() -> None:
    body = chat_body(chat(thinking={"type": "enabled", "budget_tokens": 2048}, reasoning_effort="low"), DEP,
                     stream=False)
    assert "thinking" not in body and body["reasoning_effort"] == "low"


@pytest.mark.parametrize(("model", "summary"), [
    ("claude-haiku-4-5", True), ("claude-sonnet-4-5-20250929", True), ("claude-opus-4-1@20250805", True),
    ("anthropic.claude-sonnet-4-20250514-v1:0", True), ("anthropic/claude-sonnet-4", True),
    ("gemini-2.5-flash", True), ("google/gemini-3-pro-preview", True), ("gemini-flash-latest", True),
    ("claude-4-opus", True),
    # Claude 3.7 and Gemini 2.0 share their full thinking; open models on compatible servers their full reasoning.
    ("claude-3-7-sonnet-latest", False), ("us.anthropic.claude-3-7-sonnet-20250219-v1:0", False),
    ("gemini-2.0-flash-thinking-exp", False), ("deepseek-reasoner", False), ("qwen3-32b", False),
    ("gpt-oss-120b", False), ("o4-mini", False), ("anthropic.claude-v2:1", False), ("claude-instant-1.2", False),
    ("Qwen3-8B-Claude-4-Opus-Distill", False), ("deepseek-r1-distill-claude-sonnet-4", False),
])
def test_only_thinking_that_is_a_summary_may_answer_reasoning_summary(model: str, summary: bool) -> None:
    assert summarises_thinking(model) is summary
