"""The nouns every layer shares: requests, responses, usage, callers, records.

Requests arrive from outside and are validated, so they are pydantic models.
Everything ax makes itself on the hot path (usage, chunks, responses, call
records) is a slotted dataclass: cheap to build, cheap to copy.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from axtui.request_shapes import check_response_format, check_tool_calls, check_tool_choice, check_tools

#: The request fields whose tool and schema parts are checked, and their checks (`axtui.request_shapes`).
_SHAPE_CHECKS: dict[str, Callable[[Any], None]] = {"tools": check_tools, "tool_choice": check_tool_choice,
                                 "response_format": check_response_format}

__all__ = [
    "MAX_TOKENS",
    "REASONING_EFFORTS",
    "CacheStatus",
    "CallRecord",
    "CallStatus",
    "Caller",
    "ChatRequest",
    "ChatResponse",
    "Chunk",
    "Deployment",
    "EmbeddingResponse",
    "Message",
    "NativeRequest",
    "Thinking",
    "Usage",
    "assemble_tool_calls",
    "token_count",
]

#: The values of ``reasoning_effort`` (chat) and ``reasoning.effort`` (responses).
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
CallStatus = Literal["ok", "error", "rate_limited", "budget_refused", "cancelled"]
CacheStatus = Literal["miss", "exact", "semantic", "off"]


class Message(BaseModel):
    """One turn of a conversation, in OpenAI's shape.

    ``content`` is a string or a list of content parts (text, image_url, …);
    unknown fields are kept so provider-specific ones pass through.
    Function calls in ``tool_calls`` must have OpenAI's shape (see
    `axtui.request_shapes`).
    """

    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The plain text of the message, parts joined by newlines."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") in ("text", "input_text"))

    def has_images(self) -> bool:
        """Whether any content part is an image."""
        return isinstance(self.content, list) and any(
            p.get("type") in ("image_url", "input_image", "image") for p in self.content
        )

    @field_validator("tool_calls")
    @classmethod
    def _shaped_tool_calls(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value:
            check_tool_calls(value)
        return value


@dataclass(slots=True)
class NativeRequest:
    """A request as the client sent it in a provider's own API, beside its chat translation.

    A provider that speaks ``api`` natively sends ``body`` upstream instead
    of translating the chat request (see `axtui.providers.base.Provider.speaks`);
    every other provider serves the translation. ``problem`` says why the
    translation falls short (a field only the native API serves, ``param``
    names it): such a request is refused by providers that do not speak
    ``api``. ``keyed`` is what the cache keys on beyond the translation, so a
    native request never shares an entry with a chat one that reads the same.
    ``headers`` are the client's headers of that API that go upstream with
    ``body`` (Anthropic's ``anthropic-beta``).
    """

    api: str
    body: dict[str, Any]
    keyed: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class ChatRequest(BaseModel):
    """A chat completion request in OpenAI's shape.

    Fields that change the answer are named; any other field (provider
    specific parameters) is kept in ``model_extra`` and passed through.
    ``tools``, ``tool_choice`` and ``response_format`` stay as sent, but
    their function and JSON schema parts must have OpenAI's shape (see
    `axtui.request_shapes`): a malformed one is refused here, naming it.
    """

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    # Strict: a number is a JSON number ("10" and true are refused, not read as 10 and 1).
    temperature: StrictFloat | None = Field(default=None, ge=0, le=2)
    top_p: StrictFloat | None = Field(default=None, ge=0, le=1)
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: StrictInt | None = None
    n: StrictInt | None = Field(default=None, ge=1, le=128)
    presence_penalty: StrictFloat | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: StrictFloat | None = Field(default=None, ge=-2, le=2)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    stream: StrictBool = False
    stream_options: dict[str, Any] | None = None
    user: str | None = None
    metadata: dict[str, Any] | None = None
    #: The prompt's estimated token count, filled in once by `axtui.tokens`.
    _prompt_tokens: int | None = PrivateAttr(default=None)
    #: The request in a provider's own API, when it came through one (see `NativeRequest`).
    _native: NativeRequest | None = PrivateAttr(default=None)

    @property
    def native(self) -> NativeRequest | None:
        """The request as sent in a provider's own API (the Responses or Messages API), if it came so."""
        # Read from pydantic's own dict: ``self._native`` goes through its ``__getattr__`` (~1.5 µs, and
        # every call asks several times: the cache key, routing, the provider).
        private = self.__pydantic_private__
        return private.get("_native") if private else None

    def with_native(self, native: NativeRequest) -> ChatRequest:
        """This request, carrying ``native`` for a provider that speaks its API; returns itself."""
        self._native = native
        return self

    @property
    def output_limit(self) -> int | None:
        """The most output tokens the caller allows, whichever field set it."""
        return self.max_completion_tokens or self.max_tokens

    def prompt_text(self) -> str:
        """Every message's text, joined; used for estimates and hashing."""
        return "\n".join(m.text() for m in self.messages)

    def passthrough(self) -> dict[str, Any]:
        """Provider-specific parameters the caller sent that ax does not name."""
        return dict(self.model_extra or {})

    @property
    def reasoning_effort(self) -> str | None:
        """OpenAI's ``reasoning_effort`` (``none``, ``minimal``, ``low``, ``medium``, ``high``), if sent.

        It stays a pass-through field (so it keys the cache as it always
        did); adapters that have no such field map it to their thinking budget.
        """
        value = (self.model_extra or {}).get("reasoning_effort")
        return str(value) if value is not None else None

    @field_validator("tools", "tool_choice", "response_format")
    @classmethod
    def _shaped(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None:
            _SHAPE_CHECKS[str(info.field_name)](value)
        return value

    @model_validator(mode="after")
    def _check_openai_extras(self) -> ChatRequest:
        extra = self.model_extra or {}
        effort = extra.get("reasoning_effort")
        if effort is not None and effort not in REASONING_EFFORTS:
            raise ValueError(f"reasoning_effort must be one of {', '.join(REASONING_EFFORTS)}, not {effort!r}")
        top = extra.get("top_logprobs")
        if top is not None and (not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= 20):
            raise ValueError(f"top_logprobs must be an integer from 0 to 20, not {top!r}")
        logprobs = extra.get("logprobs")
        if logprobs is not None and not isinstance(logprobs, bool):
            raise ValueError(f"logprobs must be true or false, not {logprobs!r}")
        return self


#: The most tokens one count may say (2^31 - 1: what every store's integer column holds).
#: No model reads or writes a thousandth of it in one call.
MAX_TOKENS = 2**31 - 1


def token_count(value: Any) -> int:
    """A token count from an upstream's usage, validated and clamped to ``0..MAX_TOKENS``.

    Anything that is not a finite number (a string, null, NaN, a bool) is 0;
    a negative count is 0; a count past `MAX_TOKENS` (an upstream once sent
    one over 2^63) is `MAX_TOKENS`. Every provider's usage goes through
    this before it reaches pricing, budgets and the store.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    n = int(value)
    return 0 if n < 0 else min(n, MAX_TOKENS)


@dataclass(slots=True)
class Usage:
    """Token counts of one call, with one meaning across providers.

    ``input_tokens`` counts every prompt token; ``cached_input_tokens`` and
    ``cache_write_tokens`` are the parts of it read from and written to the
    provider's prompt cache (``cache_write_1h_tokens`` is the part of the
    writes kept for an hour, which Anthropic bills higher).
    ``reasoning_tokens`` are the part of ``output_tokens`` spent thinking.
    ``estimated`` is true when ax counted the tokens itself because the
    provider reported none.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.estimated or other.estimated,
        )


@dataclass(slots=True)
class ChatResponse:
    """A complete answer from a provider (or from the cache)."""

    content: str
    model: str
    usage: Usage
    finish_reason: str = "stop"
    tool_calls: list[dict[str, Any]] | None = None
    id: str = ""
    provider: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    #: The provider's thinking as text (chat's ``reasoning_content``), when it shared it.
    reasoning: str = ""
    #: Anthropic's thinking blocks (``thinking`` with its ``signature``,
    #: ``redacted_thinking``) as sent, so a client can send them back.
    thinking_blocks: list[dict[str, Any]] | None = None
    #: Choices after the first (``n > 1``), in OpenAI's ``choices`` shape.
    extra_choices: list[dict[str, Any]] | None = None
    #: The first choice's ``logprobs``, as the provider sent them.
    logprobs: dict[str, Any] | None = None
    #: The whole answer in the provider's own API, when the request went upstream natively (`NativeRequest`).
    native: dict[str, Any] | None = None
    #: The stop sequence that ended the answer, when the provider says which (Anthropic does; OpenAI does not).
    stop_sequence: str | None = None


@dataclass(slots=True)
class Chunk:
    """One piece of a streamed answer.

    The last chunk of a stream carries ``finish_reason``; the usage arrives
    on a chunk of its own (``usage`` set, ``delta`` empty) when known.
    """

    delta: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    tool_calls: list[dict[str, Any]] | None = None
    model: str = ""
    id: str = ""
    #: A piece of the provider's thinking text.
    reasoning: str = ""
    #: The signature that closes the current thinking block (Anthropic).
    reasoning_signature: str | None = None
    #: A whole ``redacted_thinking`` block's data (Anthropic).
    reasoning_redacted: str | None = None
    #: The choice this chunk belongs to (``n > 1``).
    choice: int = 0
    #: This piece's ``logprobs``, as the provider sent them.
    logprobs: dict[str, Any] | None = None
    #: The provider's own stream events this chunk stands for (a native stream, see `NativeRequest`).
    native_events: list[dict[str, Any]] | None = None
    #: The whole native answer: on the last chunk of a native stream, the first of a replayed one.
    native: dict[str, Any] | None = None
    #: On the chunk with the finish reason: the stop sequence that ended the answer, when the provider says which.
    stop_sequence: str | None = None


class Thinking:
    """The thinking of a streamed answer, put together from its chunks as `ChatResponse` holds it.

    ``text`` is all of it (chat's ``reasoning_content``); ``blocks`` Anthropic's
    signed ``thinking`` and ``redacted_thinking`` blocks, each ``thinking``
    block's text the part since the block before it.
    """

    __slots__ = ("_block", "blocks", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.blocks: list[dict[str, Any]] = []
        self._block: list[str] = []

    def take(self, chunk: Chunk) -> bool:
        """Add what ``chunk`` carries of the thinking; True when it carried some."""
        carried = False
        if chunk.reasoning:
            self.parts.append(chunk.reasoning)
            self._block.append(chunk.reasoning)
            carried = True
        if chunk.reasoning_signature is not None:
            self.blocks.append({"type": "thinking", "thinking": "".join(self._block),
                                "signature": chunk.reasoning_signature})
            self._block = []
            carried = True
        if chunk.reasoning_redacted is not None:
            self.blocks.append({"type": "redacted_thinking", "data": chunk.reasoning_redacted})
            carried = True
        return carried

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @staticmethod
    def chunks(response: ChatResponse, request_id: str) -> list[Chunk]:
        """``response``'s thinking as chunks that `take` puts together again (its blocks, or its text)."""
        model = response.model
        if not response.thinking_blocks:
            return [Chunk(reasoning=response.reasoning, id=request_id, model=model)] if response.reasoning else []
        out = []
        for block in response.thinking_blocks:
            if block.get("type") == "redacted_thinking":
                out.append(Chunk(reasoning_redacted=str(block.get("data", "")), id=request_id, model=model))
                continue
            if block.get("thinking"):
                out.append(Chunk(reasoning=str(block["thinking"]), id=request_id, model=model))
            out.append(Chunk(reasoning_signature=str(block.get("signature", "")), id=request_id, model=model))
        return out


def tool_calls_problem(calls: Any, *, fragments: bool = False) -> str | None:
    """What is wrong with the OpenAI-shaped tool calls an upstream answered, or None.

    Args:
        calls: a response's ``tool_calls`` (whole calls), or a stream chunk's.
        fragments: a stream's pieces: each may carry an ``index`` (an integer) and
            leave out its function, name or arguments until a later piece.
    """
    if calls is None:
        return None
    if not isinstance(calls, list):
        return f"tool_calls is a {type(calls).__name__}, not a list"
    for i, call in enumerate(calls):
        if not isinstance(call, dict):
            return f"tool_calls[{i}] is a {type(call).__name__}, not an object"
        index = call.get("index")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
            return f"tool_calls[{i}].index is {index!r:.20}, not an integer"
        if call.get("id") is not None and not isinstance(call["id"], str):
            return f"tool_calls[{i}].id is not a string"
        fn = call.get("function")
        if fn is None and (fragments or call.get("type") not in (None, "function")):
            continue  # a later piece brings it, or a call of another kind (OpenAI's custom tools)
        if not isinstance(fn, dict):
            return f"tool_calls[{i}].function is not an object"
        name, arguments = fn.get("name"), fn.get("arguments")
        if (name is not None or not fragments) and not isinstance(name, str):
            return f"tool_calls[{i}].function.name is not a string"
        # Some compatible servers send the arguments as an object; they are written out as JSON.
        if arguments is not None and not isinstance(arguments, str | dict):
            return f"tool_calls[{i}].function.arguments is neither a string nor an object"
    return None


def assemble_tool_calls(fragments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Whole tool calls from streamed fragments, joined by ``index``.

    A stream sends each call's id and name first and its arguments in
    pieces, all tagged with the call's ``index``; this joins them into
    OpenAI's complete ``tool_calls`` (no ``index``). Calls that are already
    whole (no ``index``: an answer that never streamed) are kept as they
    are, so the function is safe to apply twice.
    """
    calls: dict[int, dict[str, Any]] = {}
    order: list[int] = []
    whole: list[dict[str, Any]] = []
    for fragment in fragments:
        if "index" not in fragment:
            whole.append(fragment)
            continue
        index = int(fragment["index"])
        call = calls.get(index)
        if call is None:
            call = calls[index] = {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            order.append(index)
        if fragment.get("id"):
            call["id"] = str(fragment["id"])
        if fragment.get("type"):
            call["type"] = str(fragment["type"])
        fn = fragment.get("function") or {}
        if fn.get("name"):
            call["function"]["name"] = str(fn["name"])
        arguments = fn.get("arguments")
        if arguments:
            call["function"]["arguments"] += arguments if isinstance(arguments, str) else json.dumps(arguments)
        for key, value in fragment.items():
            if key not in ("index", "id", "type", "function"):
                call[key] = value
    return whole + [calls[i] for i in sorted(order)]


@dataclass(slots=True)
class EmbeddingResponse:
    """Vectors for a list of inputs, in input order."""

    vectors: list[list[float]]
    model: str
    usage: Usage


@dataclass(slots=True, frozen=True)
class Caller:
    """Who makes a call: the end user, the gateway key, free-form tags, the team."""

    user: str = "anonymous"
    key: str | None = None
    tags: tuple[str, ...] = ()
    #: The team the call counts for (its budget and limits, scope ``team:NAME``).
    team: str | None = None


@dataclass(slots=True)
class Deployment:
    """One way to serve a logical model: a provider plus its model name.

    ``id`` is ``provider/upstream_model``; ``model`` is the logical name
    callers ask for (several deployments may serve the same one).
    ``base_model`` names the model the upstream one serves when its name
    says none (a Bedrock application inference profile's ARN): its prices
    and features apply.
    """

    provider: str
    model: str
    upstream_model: str
    region: str = ""
    weight: float = 1.0
    context_window: int | None = None
    max_output: int | None = None
    supports_tools: bool = True
    supports_vision: bool = False
    supports_json: bool = True
    tags: tuple[str, ...] = ()
    base_model: str = ""

    @property
    def id(self) -> str:
        """``provider/upstream_model``: unique within a gateway."""
        return f"{self.provider}/{self.upstream_model}"


@dataclass(slots=True)
class CallRecord:
    """What happened to one call: one record per call, failed ones too.

    Money is integer nano-dollars (``cost_nanos``; None when the price is
    unknown). Times are epoch seconds (``ts`` is when the call started).
    """

    ts: float
    user: str
    requested_model: str
    status: CallStatus = "ok"
    key: str | None = None
    tags: tuple[str, ...] = ()
    provider: str | None = None
    model: str | None = None
    deployment: str | None = None
    error_class: str | None = None
    error_message: str | None = None
    http_status: int | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    usage_estimated: bool = False
    cost_nanos: int | None = None
    saved_nanos: int | None = None
    cache: CacheStatus = "miss"
    similarity: float | None = None
    attempts: int = 0
    route: str | None = None
    rule: str | None = None
    variant: str | None = None
    region: str | None = None
    prompt_hash: str | None = None
    stream: bool = False
    request_id: str = ""
    prompt: str | None = None
    endpoint: str = "chat"
    #: The team the call counted for (the key's, else its user's), when it had one.
    team: str | None = None

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


def prompt_hash(request: ChatRequest) -> str:
    """A short, stable hash of the conversation (for the log, not the cache)."""
    h = hashlib.sha256()
    for m in request.messages:
        h.update(m.role.encode())
        h.update(b"\0")
        h.update(m.text().encode())
        h.update(b"\1")
    return h.hexdigest()[:16]
