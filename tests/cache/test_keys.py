"""Key normalisation: the same request keys the same; anything that changes the answer changes the key."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from axtui.cache.guards import exact_signature, features
from axtui.cache.keys import cache_key, partition_key, partition_prefix, request_keys, scope_for, turn_texts
from axtui.types import Caller, ChatRequest


def req(**fields: Any) -> ChatRequest:
    data: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
    data.update(fields)
    return ChatRequest.model_validate(data)


BASE = cache_key(req(), "user:a")


@pytest.mark.parametrize(
    "fields",
    [
        {"stream": True},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"user": "someone-else"},
        {"metadata": {"ax_cache": "ttl=60", "trace": "x"}},
        {"n": 1},
        {"store": True, "service_tier": "auto", "prompt_cache_key": "k"},
        {"messages": [{"role": "user", "content": "  hello\n"}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]},
    ],
)
def test_fields_that_do_not_change_the_answer_share_the_key(fields: dict[str, Any]) -> None:
    assert cache_key(req(**fields), "user:a") == BASE


@pytest.mark.parametrize(
    "fields",
    [
        {"model": "other"},
        {"messages": [{"role": "user", "content": "hello!"}]},
        {"messages": [{"role": "system", "content": "hello"}]},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]},
        {"temperature": 0.0},
        {"top_p": 0.5},
        {"max_tokens": 10},
        {"stop": ["\n"]},
        {"seed": 7},
        {"presence_penalty": 0.5},
        {"frequency_penalty": 0.5},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {"tool_choice": "none"},
        {"response_format": {"type": "json_object"}},
        {"logit_bias": {"50256": -100}},
        {"reasoning_effort": "high"},
    ],
)
def test_anything_that_changes_the_answer_changes_the_key(fields: dict[str, Any]) -> None:
    assert cache_key(req(**fields), "user:a") != BASE


def test_output_limit_means_the_same_under_either_name() -> None:
    assert cache_key(req(max_tokens=64), "s") == cache_key(req(max_completion_tokens=64), "s")


def test_stop_as_a_string_equals_a_list_of_one() -> None:
    assert cache_key(req(stop="END"), "s") == cache_key(req(stop=["END"]), "s")


def test_scope_is_part_of_the_key() -> None:
    assert cache_key(req(), "user:a") != cache_key(req(), "user:b")
    assert cache_key(req(), "user:a") != cache_key(req(), "global")


def test_random_tool_call_ids_do_not_split_the_same_conversation() -> None:
    def agent(call_id: str) -> ChatRequest:
        return ChatRequest.model_validate({
            "model": "m",
            "messages": [
                {"role": "user", "content": "weather in Paris?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}
                ]},
                {"role": "tool", "tool_call_id": call_id, "content": "21C"},
            ],
        })

    assert cache_key(agent("call_abc"), "s") == cache_key(agent("call_xyz"), "s")
    other = agent("call_abc")
    other.messages[2].content = "25C"
    assert cache_key(other, "s") != cache_key(agent("call_abc"), "s")


def test_partition_ignores_text_but_keeps_model_params_scope_and_shape() -> None:
    p = partition_key(req(), "user:a")
    assert partition_key(req(messages=[{"role": "user", "content": "other words"}]), "user:a") == p
    assert partition_key(req(model="x"), "user:a") != p
    assert partition_key(req(temperature=0.2), "user:a") != p
    assert partition_key(req(), "user:b") != p
    two = req(messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "hello"}])
    assert partition_key(two, "user:a") != p


def test_partition_separates_what_the_guards_would_reject() -> None:
    def part(*texts: str) -> str:
        return partition_key(req(), "user:a", exact_signature([features(t) for t in texts]))

    assert part("Convert 100 F to C") == part("please convert 100 fahrenheit to celsius")
    assert part("Add three apples") == part("add 3 apples")
    assert part("Convert 100 F to C") != part("Convert 200 F to C")
    assert part("Is it safe?") != part("Is it not safe?")
    assert part("Add 2 and 3", "then 4") != part("Add 2", "and 3 then 4")
    assert part("hello") != partition_key(req(), "user:a")


@settings(deadline=None)
@given(st.text(max_size=30), st.sampled_from([None, "x", [{"type": "text", "text": "a"}, {"type": "image_url",
       "image_url": {"url": "http://i"}}]]), st.sampled_from([{}, {"temperature": 0.5, "stop": "END"}, {"seed": 3}]),
       st.sampled_from(["user:a", "global"]), st.binary(max_size=4))
def test_request_keys_are_the_key_and_partition_worked_out_one_at_a_time(
    text: str, system: Any, params: dict[str, Any], scope: str, signature: bytes
) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": text}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    r = req(messages=messages, **params)
    keys = request_keys(r, scope)
    assert keys.key == cache_key(r, scope)
    assert keys.prefix == partition_prefix(r, scope)
    assert keys.partition(signature) == partition_key(r, scope, signature)
    assert request_keys(r, scope) == keys, "working the keys out leaves the request as it was"


def test_scope_for() -> None:
    alice = Caller(user="alice", key="k_1")
    assert scope_for("user", alice) == "user:alice"
    assert scope_for("key", alice) == "key:k_1"
    assert scope_for("global", alice) == "global"
    # Keyless callers never fall into one shared key scope.
    assert scope_for("key", Caller(user="bob")) == "user:bob"


def test_turn_texts_are_each_turn_in_order() -> None:
    r = req(messages=[{"role": "system", "content": " Be brief. "}, {"role": "user", "content": "hi"}])
    assert turn_texts(r) == ["Be brief.", "hi"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=6), json_values, min_size=1, max_size=4))
def test_tool_definitions_key_the_same_whatever_their_key_order(params: dict[str, Any]) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": params}}
    reordered = {"function": {"parameters": dict(reversed(list(params.items()))), "name": "f"}, "type": "function"}
    assert cache_key(req(tools=[tool]), "s") == cache_key(req(tools=[reordered]), "s")


@settings(deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_keys_are_sha256_hex_and_differ_when_texts_differ(a: str, b: str) -> None:
    ka = cache_key(req(messages=[{"role": "user", "content": a}]), "s")
    kb = cache_key(req(messages=[{"role": "user", "content": b}]), "s")
    assert len(ka) == 64 and int(ka, 16) >= 0
    assert (ka == kb) == (a.strip() == b.strip())


def _responses(body: dict[str, Any]) -> ChatRequest:
    """A Responses request as the edge hands it to the engine when a native deployment may serve it."""
    from axtui.server import responses_wire as rw

    problems: list[Any] = []
    chat = rw.to_chat_request(rw.ResponsesRequest.model_validate(body), [], problems)
    return chat.with_native(rw.native_request(body, [], problems))


def test_a_native_responses_request_keys_on_what_only_its_api_carries() -> None:
    def key(request: ChatRequest) -> str:
        return cache_key(request, "user:a")

    base = {"model": "m", "input": "What is new in Lisbon?"}
    chat = ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": base["input"]}]})
    assert key(_responses(base)) != key(chat), "a Responses answer is never served to chat, nor the reverse"
    assert key(_responses({**base, "metadata": {"run": "2"}, "store": False, "user": "bob"})) == key(_responses(base))
    for extra in ({"tools": [{"type": "web_search"}]}, {"include": ["web_search_call.action.sources"]},
                  {"truncation": "auto"}, {"text": {"verbosity": "low"}}):
        assert key(_responses({**base, **extra})) != key(_responses(base)), extra

    def with_file(file_id: str) -> dict[str, Any]:
        return {"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "Summarise this"}, {"type": "input_file", "file_id": file_id}]}]}

    # The translation leaves the file out; the key does not.
    assert key(_responses(with_file("file-a"))) != key(_responses(with_file("file-b")))
