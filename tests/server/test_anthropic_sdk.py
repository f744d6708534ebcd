"""The official Anthropic SDK against the gateway's /v1/messages."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from axtui.server.key_limits import apply_key_limits
from axtui.server.keys import create_key
from axtui.store import Store

from ._live import LiveServer

HELLO = [{"role": "user", "content": "Say hello in one line"}]


def client(live: LiveServer, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live.url, api_key=key, max_retries=0, timeout=30)


def test_plain_message(live: LiveServer, key: str) -> None:
    raw = client(live, key).messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=200, system="Be brief.", messages=HELLO
    )
    message = raw.parse()
    assert message.role == "assistant" and message.stop_reason in ("end_turn", "max_tokens")
    assert message.content[0].type == "text" and message.content[0].text
    assert message.usage.output_tokens > 0 and message.usage.input_tokens > 0
    assert raw.headers["x-ax-provider"] == "anthropic"
    assert message.id == raw.headers["x-ax-request-id"]


def test_streamed_message(live: LiveServer, key: str) -> None:
    with client(live, key).messages.stream(model="claude-haiku-4-5", max_tokens=200, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text
    assert final.usage.output_tokens > 0 and final.stop_reason == "end_turn"


async def test_async_message_served_by_another_provider(live: LiveServer, key: str) -> None:
    api = anthropic.AsyncAnthropic(base_url=live.url, api_key=key, max_retries=0)
    message = await api.messages.create(model="gpt-4o-mini", max_tokens=100, messages=HELLO)
    assert message.content[0].text
    await api.close()


def test_errors_in_the_sdks_classes(live: LiveServer, key: str) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client(live, key).messages.create(model="claude-9", max_tokens=10, messages=HELLO)
    assert "claude-haiku-4-5" in str(info.value)
    with pytest.raises(anthropic.AuthenticationError):
        client(live, "wrong").messages.create(model="claude-haiku-4-5", max_tokens=10, messages=HELLO)
    with pytest.raises(anthropic.BadRequestError) as bad:
        client(live, key).messages.create(model="claude-haiku-4-5", max_tokens=0, messages=HELLO)
    assert "max_tokens" in str(bad.value)


def test_errors_carry_anthropics_types_and_the_request_id(live: LiveServer, key: str) -> None:
    api = client(live, key)
    with pytest.raises(anthropic.NotFoundError) as missing:
        api.messages.create(model="claude-9", max_tokens=10, messages=HELLO)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert missing.value.request_id and missing.value.request_id.startswith("msg_ax")
    with pytest.raises(anthropic.NotFoundError) as uncounted:
        api.messages.count_tokens(model="claude-9", messages=HELLO)
    assert uncounted.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError) as unknown_key:
        client(live, "wrong").messages.create(model="claude-haiku-4-5", max_tokens=10, messages=HELLO)
    assert unknown_key.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        api.messages.create(model="claude-haiku-4-5", max_tokens=0, messages=HELLO)
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    # A served call: the SDK's request_id is the id ax recorded the call under.
    raw = api.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=20, messages=HELLO)
    assert raw.parse()._request_id == raw.headers["x-ax-request-id"] == raw.parse().id


def test_a_rate_limited_messages_call_is_a_rate_limit_error(live: LiveServer, store: Store) -> None:
    raw, info = create_key(store, "limited", rpm=1)
    apply_key_limits(store, info)
    api = client(live, raw)
    api.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=HELLO)
    with pytest.raises(anthropic.RateLimitError) as limited:
        api.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=HELLO)
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_the_openai_sdk_reads_the_same_request_id(live: LiveServer, key: str) -> None:
    api = openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0, timeout=30)
    raw = api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HELLO)  # type: ignore[arg-type]
    assert raw.parse()._request_id == raw.headers["x-ax-request-id"] == raw.parse().id
    with pytest.raises(openai.NotFoundError) as missing:
        api.chat.completions.create(model="gpt-9", messages=HELLO)  # type: ignore[arg-type]
    assert missing.value.request_id and missing.value.request_id.startswith("chatcmpl-ax")
    assert missing.value.body["type"] == "invalid_request_error"  # type: ignore[index]  # OpenAI's shape stays


def test_the_anthropic_sdk_lists_and_retrieves_models_in_anthropics_shape(live: LiveServer, key: str) -> None:
    api = client(live, key)
    served = [m["id"] for m in httpx.get(f"{live.url}/v1/models", headers={"Authorization": f"Bearer {key}"})
              .json()["data"]]
    page = api.models.list(limit=2)
    assert [m.id for m in page.data] == served[:2] and page.has_more and page.last_id == served[1]
    listed = list(api.models.list(limit=2))  # the SDK follows the pages by after_id
    assert [m.id for m in listed] == served
    assert all(m.type == "model" and m.display_name == m.id and m.created_at.tzinfo is not None for m in listed)
    one = api.models.retrieve("claude-haiku-4-5")
    assert (one.type, one.id) == ("model", "claude-haiku-4-5")
    with pytest.raises(anthropic.NotFoundError) as missing:
        api.models.retrieve("claude-9")
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
