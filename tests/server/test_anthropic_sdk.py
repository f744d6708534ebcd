"""The official Anthropic SDK against the gateway's /v1/messages."""

from __future__ import annotations

import anthropic
import pytest

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
