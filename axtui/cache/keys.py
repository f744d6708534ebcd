"""Cache keys: what makes two requests the same request.

The exact key is the SHA-256 of a canonical JSON form of

- the scope (``user:alice``, ``key:k_1`` or ``global``),
- the model the caller asked for (alias or model, as named),
- every message: role, content, name, tool calls and tool results, with
  tool-call ids renumbered in order (they are random per call, and the
  same conversation should hit whatever ids the agent drew),
- every parameter that changes the answer: temperature, top_p, the output
  limit (``max_tokens`` and ``max_completion_tokens`` mean the same),
  stop, seed, penalties, tools, tool_choice, response_format and any
  provider-specific extra.

Left out because they do not change the answer: ``stream``,
``stream_options``, ``user``, ``metadata``, ``n`` (always 1) and a few
extras that only steer billing or logging upstream (`IGNORED_EXTRAS`).
Text is compared as sent, except that leading and trailing whitespace is
dropped and a content list made only of text parts equals the same text.

The partition key is the same hash without the texts, plus what the
guards require to be equal (numbers and negations, `axtui.cache.guards.exact_signature`):
the entries of one partition may be compared by meaning (semantic lookup);
entries of different partitions never are.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from axtui.types import Caller, ChatRequest, Message

__all__ = [
    "IGNORED_EXTRAS",
    "KEY_VERSION",
    "RequestKeys",
    "cache_key",
    "normalised_request",
    "partition_key",
    "partition_of",
    "partition_prefix",
    "request_keys",
    "scope_for",
    "turn_texts",
]

#: Bumped when the normal form changes, so old entries simply stop matching.
KEY_VERSION = 1

#: Extra request fields that never change the answer.
IGNORED_EXTRAS = frozenset(
    {"store", "service_tier", "prompt_cache_key", "safety_identifier", "user", "metadata", "stream", "stream_options"}
)

_PARAMS = ("temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty", "tools", "tool_choice",
           "response_format")  # fmt: skip


def scope_for(scope: Literal["user", "key", "global"], caller: Caller) -> str:
    """The scope an entry belongs to, as stored: ``user:NAME``, ``key:ID`` or ``global``.

    A ``key`` scope for a caller without a gateway key falls back to the
    user, so keyless callers never share answers by accident.
    """
    if scope == "global":
        return "global"
    if scope == "key" and caller.key:
        return f"key:{caller.key}"
    return f"user:{caller.user}"


def _content(content: str | list[dict[str, Any]] | None) -> Any:
    if content is None:
        return None
    if isinstance(content, str):
        return content.strip()
    if all(p.get("type") in ("text", "input_text") for p in content):
        return "\n".join(str(p.get("text", "")) for p in content).strip()
    return content


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    ids: dict[str, str] = {}

    def renumber(call_id: Any) -> Any:
        if not isinstance(call_id, str):
            return call_id
        return ids.setdefault(call_id, f"call_{len(ids)}")

    out: list[dict[str, Any]] = []
    for m in messages:
        item: dict[str, Any] = {"role": m.role, "content": _content(m.content)}
        if m.name:
            item["name"] = m.name
        if m.tool_calls:
            item["tool_calls"] = [{**tc, "id": renumber(tc.get("id"))} if "id" in tc else tc for tc in m.tool_calls]
        if m.tool_call_id:
            item["tool_call_id"] = renumber(m.tool_call_id)
        extra = m.model_extra
        if extra:
            item["extra"] = extra
        out.append(item)
    return out


def _params(request: ChatRequest) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in _PARAMS:
        value = getattr(request, name)
        if value is not None:
            params[name] = value
    if isinstance(params.get("stop"), str):
        params["stop"] = [params["stop"]]
    limit = request.output_limit
    if limit is not None:
        params["max_tokens"] = limit
    extras = {k: v for k, v in request.passthrough().items() if k not in IGNORED_EXTRAS}
    if extras:
        params["extra"] = extras
    if request.native is not None:
        # A request sent natively is answered in its API's shape: never shared with chat's entries.
        params["native"] = {"api": request.native.api, **request.native.keyed}
    return params


#: One encoder for every key (``json.dumps`` with options builds a new one per call).
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


def _canonical(obj: Any) -> bytes:
    return _ENCODE(obj).encode()


@dataclass(frozen=True, slots=True)
class RequestKeys:
    """A request's exact key and its part of the partition key, in one scope (`request_keys`)."""

    key: str
    prefix: bytes

    def partition(self, signature: bytes = b"") -> str:
        """The partition key with the guards' ``signature`` (`partition_key`)."""
        return partition_of(self.prefix, signature)


def request_keys(request: ChatRequest, scope: str) -> RequestKeys:
    """`cache_key` and `partition_prefix` of ``request`` together, from one normal form of it."""
    messages, params = _messages(request.messages), _params(request)
    return RequestKeys(_key(request.model, scope, messages, params), _prefix(request.model, scope, messages, params))


def normalised_request(request: ChatRequest) -> dict[str, Any]:
    """The request in the normal form the exact key hashes (without the scope)."""
    return {"model": request.model, "messages": _messages(request.messages), "params": _params(request)}


def cache_key(request: ChatRequest, scope: str) -> str:
    """The exact cache key of ``request`` within ``scope`` (64 hex digits)."""
    return _key(request.model, scope, _messages(request.messages), _params(request))


def partition_key(request: ChatRequest, scope: str, signature: bytes = b"") -> str:
    """What a semantic match must share: model, parameters, scope, every non-text part and ``signature``.

    The texts of the turns are left out (they are compared by meaning);
    the roles, names, tool calls and non-text content parts (images) are
    kept, so two conversations of different shapes never match.
    ``signature`` is the guards' `axtui.cache.guards.exact_signature` of the turns.
    """
    return partition_of(partition_prefix(request, scope), signature)


def partition_prefix(request: ChatRequest, scope: str) -> bytes:
    """The request's part of its partition key (the guards' signature is the rest: `partition_of`)."""
    return _prefix(request.model, scope, _messages(request.messages), _params(request))


def partition_of(prefix: bytes, signature: bytes) -> str:
    """The partition key from the request's part (`partition_prefix`) and the guards' signature."""
    return hashlib.sha256(prefix + signature).hexdigest()[:32]


def _key(model: str, scope: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    body = {"v": KEY_VERSION, "scope": scope, "model": model, "messages": messages, "params": params}
    return hashlib.sha256(_canonical(body)).hexdigest()


def _prefix(model: str, scope: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> bytes:
    """The partition's part of the normal form; takes the texts out of ``messages`` (hash them first)."""
    for item in messages:
        content = item.pop("content")
        if not isinstance(content, (str, type(None))):
            item["parts"] = [p for p in content if p.get("type") not in ("text", "input_text")]
    return _canonical({"v": KEY_VERSION, "scope": scope, "model": model, "params": params, "shape": messages})


def turn_texts(request: ChatRequest) -> list[str]:
    """The text of each turn, in order (what the embedder and the guards read)."""
    return [m.text().strip() for m in request.messages]
