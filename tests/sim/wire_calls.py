"""Requests in each wire format and readers of their answers, for the server tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant-test"}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}


@dataclass
class WireCall:
    """One HTTP request: where to send it, the body, the headers."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]


def chat_call(wire: str, prompt: str, *, model: str | None = None, stream: bool = False,
              max_tokens: int | None = None) -> WireCall:
    """A chat request for ``prompt`` in ``wire``'s format."""
    model = model or MODELS[wire]
    if wire == "openai":
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        if max_tokens:
            body["max_tokens"] = max_tokens
        return WireCall("/v1/chat/completions", body, {"Authorization": "Bearer sk-test"})
    if wire == "anthropic":
        body = {"model": model, "max_tokens": max_tokens or 4096, "stream": stream,
                "messages": [{"role": "user", "content": prompt}]}
        return WireCall("/v1/messages", body, dict(ANTHROPIC_HEADERS))
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    if max_tokens:
        body["generationConfig"] = {"maxOutputTokens": max_tokens}
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return WireCall(f"/v1beta/models/{model}:{action}", body, {"x-goog-api-key": "test"})


def events(raw: str) -> list[tuple[str | None, str]]:
    """Server-sent events as ``(event name, data)`` pairs."""
    out = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        out.append((name, "\n".join(data)))
    return out


def plain_text(wire: str, body: dict[str, Any]) -> str:
    """The answer's text from a plain (non-streamed) answer."""
    if wire == "openai":
        return str(body["choices"][0]["message"]["content"])
    if wire == "anthropic":
        return "".join(b["text"] for b in body["content"])
    return "".join(p["text"] for p in body["candidates"][0]["content"]["parts"])


def stream_text(wire: str, raw: str) -> str:
    """The answer's text put back together from a stream."""
    pieces = []
    for _, data in events(raw):
        if data == "[DONE]":
            continue
        obj = json.loads(data)
        if wire == "openai":
            pieces += [c["delta"].get("content") or "" for c in obj["choices"]]
        elif wire == "anthropic":
            if obj["type"] == "content_block_delta":
                pieces.append(obj["delta"]["text"])
        else:
            pieces += [p.get("text", "") for p in obj["candidates"][0]["content"]["parts"]]
    return "".join(pieces)


def ended_properly(wire: str, raw: str) -> bool:
    """Whether a stream carries its format's end marker."""
    evs = events(raw)
    if not evs:
        return False
    if wire == "openai":
        return evs[-1][1] == "[DONE]"
    if wire == "anthropic":
        return evs[-1][0] == "message_stop"
    last = json.loads(evs[-1][1])
    return "finishReason" in last["candidates"][0]
