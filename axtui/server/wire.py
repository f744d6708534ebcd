"""OpenAI's wire format: what ax answers on ``/v1/chat/completions`` and ``/v1/embeddings``.

Requests are validated with pydantic (`ChatRequest`, `EmbeddingRequest`);
answers are built as plain dicts and serialised once, which is what the hot
path can afford. The pydantic models of the answers (`ChatCompletion`,
`ChatCompletionChunk`, `EmbeddingList`) exist to document them in
``/openapi.json``; a test checks the dicts against them.

Streams follow OpenAI: the first chunk carries ``delta.role``, text comes
in ``delta.content``, the finish reason on its own chunk, and, when the
request set ``stream_options.include_usage``, every chunk has
``"usage": null`` and one last chunk with empty ``choices`` carries the
usage; ``data: [DONE]`` ends the stream.
"""

from __future__ import annotations

import base64
import struct
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, WithJsonSchema, field_validator
from pydantic_core import to_json

from axtui.providers.openai import openai_usage_body
from axtui.server.constraints import END_USER
from axtui.types import ChatResponse, Chunk, Thinking, Usage

__all__ = [
    "DONE",
    "ChatCompletion",
    "ChatCompletionChunk",
    "EmbeddingList",
    "EmbeddingRequest",
    "ModelList",
    "StreamEncoder",
    "completion_body",
    "embedding_body",
    "error_event",
    "usage_body",
]

DONE = b"data: [DONE]\n\n"


# -- documented shapes ----------------------------------------------------------------------


class PromptTokensDetails(BaseModel):
    """The part of the prompt read from the provider's prompt cache, and the part written to it."""

    cached_tokens: int = 0
    cache_write_tokens: int = 0


class CompletionTokensDetails(BaseModel):
    """The part of the output spent on reasoning."""

    reasoning_tokens: int = 0


class CompletionUsage(BaseModel):
    """Token counts of one call, as the provider reported them (or as ax estimated)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails


class AssistantMessage(BaseModel):
    """The answer: text, or tool calls (then ``content`` is null); the provider's thinking when it shared it."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    reasoning_content: str | None = None
    thinking_blocks: list[dict[str, Any]] | None = None


class Choice(BaseModel):
    """One choice (several when ``n > 1`` reached an OpenAI-compatible upstream)."""

    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: dict[str, Any] | None = None


class ChatCompletion(BaseModel):
    """A complete chat answer."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: str | None = None


class ChunkDelta(BaseModel):
    """What one chunk adds to the answer."""

    model_config = ConfigDict(extra="allow")

    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    reasoning_content: str | None = None


class ChunkChoice(BaseModel):
    """One streamed choice delta."""

    index: int
    delta: ChunkDelta
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed answer (``data: {...}``)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None


_MAX_TOKEN_ID = 2**31 - 1
_TOKEN_ID = {"type": "integer", "minimum": 0, "maximum": _MAX_TOKEN_ID}


class EmbeddingRequest(BaseModel):
    """An embeddings request in OpenAI's shape: texts, or token ids (as LangChain's OpenAIEmbeddings sends them)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: Annotated[str | list[str] | list[int] | list[list[int]], WithJsonSchema({"anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": 2048},
        {"type": "array", "items": _TOKEN_ID, "minItems": 1},
        {"type": "array", "items": {"type": "array", "items": _TOKEN_ID, "minItems": 1}, "minItems": 1,
         "maxItems": 2048},
    ]})] = Field(description="One text or a list of up to 2048 texts, each non-empty; or token ids: one array, or "
                             "up to 2048 arrays (served by OpenAI and Azure OpenAI deployments)")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[StrictInt | None, WithJsonSchema({"anyOf": [
        {"type": "integer", "minimum": 1, "maximum": 8192}, {"type": "null"}]})] = Field(
        default=None, ge=1, le=8192, description="The vectors' length, for models that can shorten theirs (OpenAI's "
                                                 "text-embedding-3, Gemini's outputDimensionality); passed on")
    user: str | None = Field(default=None, json_schema_extra={"pattern": END_USER},
                             description="The end user (a trusted key's; no spaces, commas or slashes)")

    @field_validator("input", mode="before")
    @classmethod
    def _inputs(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value:
                raise ValueError("input is empty; send a text or a list of texts")
            return value
        if not isinstance(value, list) or not value:
            raise ValueError("input must be a text, a list of texts, or token ids (a list of integers, or lists of "
                             "them); it is empty or of another kind")
        if all(_token_id(v) for v in value):
            return [int(v) for v in value]
        if all(isinstance(v, list) for v in value):
            if not all(v and all(_token_id(t) for t in v) for v in value):
                raise ValueError(f"input's token id arrays must each hold at least one token id (a whole number "
                                 f"from 0 to {_MAX_TOKEN_ID})")
            value = [[int(t) for t in v] for v in value]
        elif not all(isinstance(v, str) for v in value):
            raise ValueError("input must be texts only, or token ids only (whole numbers from 0 up, or arrays of "
                             "them); it mixes kinds or holds something else")
        elif any(not v for v in value):
            raise ValueError("input has an empty text; every text must have at least one character")
        if len(value) > 2048:
            raise ValueError(f"input has {len(value)} inputs; send at most 2048 per request")
        return value

    def inputs(self) -> list[str | list[int]]:
        """The inputs as a list: texts, or token id arrays."""
        value = self.input
        if isinstance(value, str) or (value and isinstance(value[0], int)):
            return [value]
        return list(value)  # type: ignore[arg-type]


def _token_id(value: Any) -> bool:
    """A whole number from 0 up to `_MAX_TOKEN_ID` (JSON's ``7.0`` is one too)."""
    whole = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float)
                                                                         and value.is_integer())
    return whole and 0 <= value <= _MAX_TOKEN_ID


class Embedding(BaseModel):
    """One vector: floats, or base64 of little-endian float32 when asked."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    """Tokens read."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    """Vectors in input order."""

    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class ModelCard(BaseModel):
    """A model or alias a caller may ask for."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    """Every model and alias this gateway serves."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


# -- answers --------------------------------------------------------------------------------


#: OpenAI's ``usage`` object for ax's `Usage` (one encoder, shared with the simulated upstream).
usage_body = openai_usage_body


def _full_tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls without the stream-only ``index``."""
    return [{k: v for k, v in call.items() if k != "index"} for call in calls]


def completion_body(response: ChatResponse, request_id: str) -> dict[str, Any]:
    """A ``chat.completion`` object for a complete answer."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": response.content if (response.content or not response.tool_calls) else None,
        "refusal": None,
    }
    if response.tool_calls:
        message["tool_calls"] = _full_tool_calls(response.tool_calls)
    if response.reasoning:
        message["reasoning_content"] = response.reasoning
    if response.thinking_blocks:
        # As LiteLLM names them: a client that sends the message back sends Anthropic its signed thinking too.
        message["thinking_blocks"] = response.thinking_blocks
    first = {"index": 0, "message": message, "finish_reason": response.finish_reason, "logprobs": response.logprobs}
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": response.created,
        "model": response.model,
        "choices": [first, *(response.extra_choices or ())],
        "usage": usage_body(response.usage),
        "system_fingerprint": None,
    }


def _indexed(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stream tool-call deltas need ``index``; a replayed cached answer has none."""
    if all("index" in c for c in calls):
        return calls
    return [{"index": i, **c} if "index" not in c else c for i, c in enumerate(calls)]


class StreamEncoder:
    """Turns ax `Chunk` objects into OpenAI ``chat.completion.chunk`` events.

    Args:
        request_id: the ``id`` every chunk carries.
        model: the model named until the chunks name one.
        created: the ``created`` timestamp every chunk carries.
        include_usage: the caller set ``stream_options.include_usage``.
    """

    __slots__ = ("_roles_sent", "_thinking", "created", "include_usage", "model", "request_id", "usage")

    def __init__(self, request_id: str, model: str, created: int, *, include_usage: bool) -> None:
        self.request_id = request_id
        self.model = model
        self.created = created
        self.include_usage = include_usage
        self.usage: Usage | None = None
        self._roles_sent: set[int] = set()  # the choices whose first delta named the role
        self._thinking = Thinking()

    def _event(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        body: dict[str, Any] = {
            "id": self.request_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "system_fingerprint": None,
        }
        if self.include_usage:
            body["usage"] = usage
        return b"data: " + to_json(body) + b"\n\n"

    def encode(self, chunk: Chunk) -> bytes:
        """The SSE bytes for one chunk (possibly empty: a usage chunk waits for the end).

        Thinking goes out as ``delta.reasoning_content``, as DeepSeek and
        vLLM send it, and Anthropic's signed thinking blocks all at once with
        the finish (``delta.thinking_blocks``, as in a whole answer's message:
        the SDKs' stream helpers put a list together only once), so a client
        that sends the message back sends Anthropic its thinking too.
        Choices after the first (``n > 1``) keep their index.
        """
        if chunk.model:
            self.model = chunk.model
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.choice == 0:
            self._thinking.take(chunk)
        if not (chunk.delta or chunk.tool_calls or chunk.finish_reason or chunk.reasoning or chunk.logprobs):
            return b""
        delta: dict[str, Any] = {}
        if chunk.choice not in self._roles_sent:
            delta["role"] = "assistant"
            self._roles_sent.add(chunk.choice)
        if chunk.reasoning:
            delta["reasoning_content"] = chunk.reasoning
        if chunk.delta:
            delta["content"] = chunk.delta
        elif not chunk.tool_calls and "role" in delta:
            delta["content"] = ""
        if chunk.tool_calls:
            delta["tool_calls"] = _indexed(chunk.tool_calls)
        if chunk.finish_reason and chunk.choice == 0 and self._thinking.blocks:
            delta["thinking_blocks"] = self._thinking.blocks
        return self._event([{"index": chunk.choice, "delta": delta, "finish_reason": chunk.finish_reason,
                             "logprobs": chunk.logprobs}])

    def finish(self) -> bytes:
        """The closing bytes: the usage chunk (when asked for), then ``[DONE]``."""
        out = b""
        if not self._roles_sent:
            out += self._event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None,
                                 "logprobs": None}])
            self._roles_sent.add(0)
        if self.include_usage:
            out += self._event([], usage_body(self.usage or Usage()))
        return out + DONE

    def error_event(self, body: dict[str, Any]) -> bytes:
        """What ends the stream on a failure after its headers: the `error_event`, then ``[DONE]``."""
        return error_event(body) + DONE


def error_event(body: dict[str, Any]) -> bytes:
    """An error after the stream has started: one ``data:`` event the SDKs raise on."""
    return b"data: " + to_json(body) + b"\n\n"


def _pack(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def embedding_body(
    vectors: list[list[float]], model: str, prompt_tokens: int, encoding_format: str
) -> dict[str, Any]:
    """An embeddings answer; base64 is little-endian float32, as OpenAI sends it."""
    pack = encoding_format == "base64"
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _pack(v) if pack else v} for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
