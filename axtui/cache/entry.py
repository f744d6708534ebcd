"""A cached answer, and how it is written to and read from the store.

The answer is stored as zlib-compressed JSON; the turn vectors as raw
float32 bytes; the guard features as JSON of hashes. Anything that does
not decode is a `CorruptEntry`: the cache treats it as a miss and removes it.
"""

from __future__ import annotations

import copy
import json
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from axtui.cache.guards import GuardFeatures
from axtui.types import ChatResponse, Usage

__all__ = [
    "CorruptEntry",
    "Entry",
    "copy_response",
    "decode_guards",
    "decode_response",
    "decode_vectors",
    "encode_guards",
    "encode_response",
]

_USAGE_FIELDS = ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
                 "cache_write_1h_tokens", "reasoning_tokens", "estimated")  # fmt: skip

#: One encoder for every body, one for every guards column (``json.dumps`` with options builds one per call).
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_ENCODE_GUARDS = json.JSONEncoder(separators=(",", ":")).encode


class CorruptEntry(ValueError):
    """A stored entry that cannot be decoded."""


@dataclass(slots=True)
class Entry:
    """One cached answer as the cache holds it in memory."""

    key: str
    partition: str
    scope: str
    user: str
    model: str
    response: ChatResponse
    cost_nanos: int | None
    created_at: float
    #: Epoch seconds; 0 means kept until evicted.
    expires_at: float
    guards: tuple[GuardFeatures, ...] | None = None

    def alive(self, now: float, min_created: float = 0.0) -> bool:
        """Not expired at ``now``, and stored no earlier than ``min_created``."""
        return (self.expires_at == 0 or self.expires_at > now) and self.created_at >= min_created

    def size(self) -> int:
        """Approximate bytes held in memory (for the memory tier's bound)."""
        r = self.response
        extra = len(json.dumps(r.tool_calls, default=repr)) if r.tool_calls else 0
        extra += len(json.dumps(r.native, default=repr)) if r.native is not None else 0
        guards = sum(g.nbytes for g in self.guards) if self.guards else 0
        # Measured with tracemalloc: the Entry, response, usage and key strings take about 900 bytes.
        return 900 + len(r.content) + extra + guards


def copy_response(response: ChatResponse) -> ChatResponse:
    """A copy the engine may change (it sets the id) without touching the cache."""
    u = response.usage
    return ChatResponse(
        content=response.content,
        model=response.model,
        usage=Usage(u.input_tokens, u.output_tokens, u.cached_input_tokens, u.cache_write_tokens,
                    u.cache_write_1h_tokens, u.reasoning_tokens, u.estimated),
        finish_reason=response.finish_reason,
        tool_calls=copy.deepcopy(response.tool_calls) if response.tool_calls else None,
        id=response.id,
        provider=response.provider,
        created=response.created,
        reasoning=response.reasoning,
        thinking_blocks=copy.deepcopy(response.thinking_blocks) if response.thinking_blocks else None,
        native=copy.deepcopy(response.native) if response.native is not None else None,
        stop_sequence=response.stop_sequence,
    )


def encode_response(response: ChatResponse) -> bytes:
    """The answer as compressed JSON (the ``body`` column)."""
    u = response.usage
    data = {
        "content": response.content,
        "model": response.model,
        "provider": response.provider,
        "finish_reason": response.finish_reason,
        "tool_calls": response.tool_calls,
        "created": response.created,
        "reasoning": response.reasoning,
        "thinking_blocks": response.thinking_blocks,
        "native": response.native,
        "stop_sequence": response.stop_sequence,
        "usage": {f: getattr(u, f) for f in _USAGE_FIELDS},
    }
    return zlib.compress(_ENCODE(data).encode(), 6)


def decode_response(blob: bytes) -> ChatResponse:
    """The inverse of `encode_response`.

    Raises:
        CorruptEntry: the bytes are not a stored answer.
    """
    try:
        data: dict[str, Any] = json.loads(zlib.decompress(blob))
        usage = data["usage"]
        return ChatResponse(
            content=str(data["content"]),
            model=str(data["model"]),
            usage=Usage(**{f: usage[f] for f in _USAGE_FIELDS}),
            finish_reason=str(data["finish_reason"]),
            tool_calls=data.get("tool_calls"),
            provider=str(data.get("provider", "")),
            created=int(data["created"]),
            reasoning=str(data.get("reasoning") or ""),
            thinking_blocks=data.get("thinking_blocks"),
            native=data.get("native"),
            stop_sequence=str(data["stop_sequence"]) if data.get("stop_sequence") is not None else None,
        )
    except (zlib.error, ValueError, KeyError, TypeError) as exc:
        raise CorruptEntry(f"cached answer does not decode: {exc}") from None


def encode_guards(guards: tuple[GuardFeatures, ...]) -> str:
    """Guard features as JSON (the ``guards`` column)."""
    return _ENCODE_GUARDS([g.to_json() for g in guards])


def decode_guards(text: str | None) -> tuple[GuardFeatures, ...] | None:
    """The inverse of `encode_guards` (None stays None).

    Raises:
        CorruptEntry: the text is not stored guard features.
    """
    if text is None:
        return None
    try:
        return tuple(GuardFeatures.from_json(item) for item in json.loads(text))
    except (ValueError, TypeError) as exc:
        raise CorruptEntry(f"cached guard features do not decode: {exc}") from None


def decode_vectors(blob: bytes, turns: int) -> np.ndarray:
    """Turn vectors from the ``vector`` column, shape ``(turns, dim)``.

    Raises:
        CorruptEntry: the bytes do not split into ``turns`` float32 vectors.
    """
    if turns < 1 or len(blob) % (4 * turns):
        raise CorruptEntry(f"cached vectors of {len(blob)} bytes do not split into {turns} turns")
    vec = np.frombuffer(blob, dtype=np.float32).reshape(turns, -1)
    if not np.all(np.isfinite(vec)):
        raise CorruptEntry("cached vectors hold NaN or infinite values")
    return vec
