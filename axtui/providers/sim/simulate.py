"""The simulation itself: what one call to a simulated provider does.

`Simulator.plan_chat` decides, before any time passes, everything about a
call: whether it fails and how, how long the first token and each later
chunk take, the answer's text and the usage reported. The in-process
`SimProvider` and the HTTP server both play a plan out, so the two behave
the same. Plans are deterministic: the outcome and timing come from a
`random.Random` seeded with the seed, provider, model, call index and a
hash of the prompt; the answer from the seed, model and prompt alone (the
same question gets the same answer on every call).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
from dataclasses import dataclass, field
from typing import Literal

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.errors import (
    ContextTooLong,
    MalformedResponse,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimited,
    ProviderServerError,
    ProviderTimeout,
    StreamInterrupted,
)
from axtui.providers.sim.schema import schema_instance
from axtui.providers.sim.spec import Faults, Latency, ModelProfile, ProviderProfile
from axtui.providers.sim.text import answer_text, embed_text, keywords, split_chunks, truncate_to_tokens
from axtui.providers.sim.tools import SimToolCall, argument_fragments, plan_tool_calls
from axtui.tokens import estimate_prompt_tokens, estimate_tokens
from axtui.types import ChatRequest, Usage

__all__ = ["FAULTS", "ChatPlan", "ContextOverflow", "EmbedPlan", "Outcome", "Simulator", "fault_error", "parse_fault", "thinking_signature", "thinking_text", "wants_thinking"]

Outcome = Literal["ok", "error", "overloaded", "rate_limited", "timeout", "malformed", "cut", "auth"]

#: Fault names a caller may force (the HTTP header ``X-Sim-Fault``), and what they do.
FAULTS: dict[str, Outcome] = {
    "500": "error",
    "503": "overloaded",
    "429": "rate_limited",
    "timeout": "timeout",
    "malformed": "malformed",
    "cut": "cut",
    "401": "auth",
}

# Providers cache prompts from this many tokens on, in blocks of this size
# (OpenAI's documented minimum and increment; close enough for the others).
_CACHE_MIN_TOKENS = 1024
_CACHE_BLOCK = 128
_JSON_FORMATS = ("json_object", "json_schema")


class ContextOverflow(Exception):
    """The numbers behind a simulated `ContextTooLong`, attached as its cause.

    Each wire format words the refusal its own way (OpenAI's "maximum
    context length", Anthropic's "prompt is too long", Gemini's "input
    token count"), so the server needs the numbers, not the sentence.
    """

    def __init__(self, prompt_tokens: int, output_tokens: int, context_window: int) -> None:
        super().__init__(f"{prompt_tokens} + {output_tokens} > {context_window}")
        self.prompt_tokens = prompt_tokens
        self.output_tokens = output_tokens
        self.context_window = context_window


def parse_fault(value: str) -> Outcome:
    """The outcome a fault name forces.

    Raises:
        ValueError: the name is unknown; the message lists the known ones.
    """
    outcome = FAULTS.get(value.strip().lower())
    if outcome is None:
        raise ValueError(f"unknown simulated fault {value!r}; use one of: {', '.join(FAULTS)}")
    return outcome


def _seed_of(*parts: object) -> int:
    # A stable hash: Python's own hash() of a str changes with every process.
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _prompt_digest(request: ChatRequest) -> str:
    h = hashlib.blake2b(digest_size=12)
    for m in request.messages:
        h.update(m.role.encode())
        h.update(b"\0")
        h.update(m.text().encode())
        h.update(b"\1")
    return h.hexdigest()


def wants_thinking(request: ChatRequest) -> bool:
    """Whether the request asks to see the model think.

    Anthropic's ``thinking: {"type": "enabled"}``, a ``reasoning_effort``
    other than ``none``, or Gemini's ``thinkingConfig`` with
    ``includeThoughts``.
    """
    extra = request.passthrough()
    thinking = extra.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        return True
    effort = extra.get("reasoning_effort")
    if effort is not None and effort != "none":
        return True
    config = extra.get("thinkingConfig") or extra.get("thinking_config")
    return isinstance(config, dict) and bool(config.get("includeThoughts") or config.get("include_thoughts"))


def thinking_text(request: ChatRequest, rng: random.Random) -> str:
    """The model's visible thinking, when asked for (empty otherwise)."""
    if not wants_thinking(request):
        return ""
    last_user = next((m.text() for m in reversed(request.messages) if m.role == "user"), request.prompt_text())
    return "Let me think this through. " + answer_text(last_user, rng, 40)


def thinking_signature(thinking: str) -> str:
    """The signature a simulated Anthropic model puts on its thinking.

    Real signatures are opaque and checked when the thinking comes back;
    the simulation's are a keyed hash of the text, so a client (or a
    gateway) that alters or drops the thinking is refused just the same.
    """
    digest = hashlib.blake2b(thinking.encode(), key=b"ax-sim-thinking", digest_size=24).digest()
    return base64.b64encode(digest).decode()


def _lognormal(rng: random.Random, p50_ms: float, p95_ms: float) -> float:
    """Seconds drawn from a log-normal with the given median and p95."""
    if p50_ms <= 0:
        return 0.0
    sigma = math.log(max(p95_ms, p50_ms) / p50_ms) / 1.6449
    # A cap keeps the rare extreme draw from stalling a whole demo.
    return min(p50_ms * math.exp(sigma * rng.gauss(0.0, 1.0)), 3 * max(p95_ms, p50_ms)) / 1000.0


def fault_error(
    outcome: Outcome, provider: str, model: str, retry_after_s: float = 1.0, *, stream: bool = True
) -> ProviderError | None:
    """The error a simulated call with ``outcome`` ends with (None for ``ok``)."""
    where = f"simulated provider {provider!r} ({model})"
    if outcome == "error":
        return ProviderServerError(
            f"{where} answered 500 (internal error); try again or another deployment",
            provider=provider,
            http_status=500,
        )
    if outcome == "overloaded":
        return ProviderServerError(
            f"{where} answered 503 (overloaded); try another deployment",
            provider=provider,
            http_status=503,
        )
    if outcome == "rate_limited":
        return ProviderRateLimited(
            f"{where} answered 429 (rate limited); retry after {retry_after_s:g} s",
            provider=provider,
            retry_after=retry_after_s,
        )
    if outcome == "timeout":
        return ProviderTimeout(f"{where} did not answer in time; try again or another deployment", provider=provider)
    if outcome == "malformed":
        return MalformedResponse(
            f"{where} answered with invalid JSON; try again or another deployment", provider=provider, http_status=200
        )
    if outcome == "cut" and not stream:
        return ProviderConnectionError(
            f"{where} dropped the connection halfway through its answer; try again", provider=provider
        )
    if outcome == "cut":
        return StreamInterrupted(
            f"{where} closed the stream before its end marker; the answer is incomplete", provider=provider
        )
    if outcome == "auth":
        return ProviderAuthError(f"{where} refused the API key (401); check the key", provider=provider, http_status=401)
    return None


@dataclass(slots=True)
class ChatPlan:
    """Everything one chat call will do, decided up front.

    ``delays[i]`` is the wait before chunk ``i`` (``delays[0]`` is the time
    to first token). A failed call still carries its text and timing: a
    ``cut`` stream delivers the first half of the chunks.
    """

    provider: str
    model: str
    outcome: Outcome
    text: str
    chunks: list[str]
    delays: list[float]
    finish_reason: str
    usage: Usage
    response_id: str
    stop_sequence: str | None = None
    retry_after_s: float = 0.0
    hang_s: float = 0.0
    #: Tool calls the answer makes instead of text (``finish_reason`` is ``tool_calls``).
    tool_calls: list[SimToolCall] = field(default_factory=list)
    #: Each call's arguments in the pieces a stream sends them in.
    fragments: list[list[str]] = field(default_factory=list)
    #: The thinking shown before the answer, when the request asked for it.
    thinking: str = ""

    @property
    def ttft_s(self) -> float:
        """Seconds to the first chunk."""
        return self.delays[0] if self.delays else 0.0

    @property
    def total_s(self) -> float:
        """Seconds the whole answer takes."""
        return sum(self.delays)

    @property
    def cut_at(self) -> int:
        """How many chunks a cut stream delivers before it stops (about half)."""
        return max(1, len(self.chunks) // 2) if len(self.chunks) > 1 else 0

    def error(self, *, stream: bool = True) -> ProviderError | None:
        """The error this call ends with, or None when it succeeds.

        A ``cut`` is a `StreamInterrupted` for a stream and a dropped
        connection (`ProviderConnectionError`) for a plain answer.
        """
        return fault_error(self.outcome, self.provider, self.model, self.retry_after_s, stream=stream)


@dataclass(slots=True)
class EmbedPlan:
    """Everything one embeddings call will do, decided up front."""

    provider: str
    model: str
    outcome: Outcome
    vectors: list[list[float]]
    usage: Usage
    latency_s: float
    retry_after_s: float = 0.0
    hang_s: float = 0.0

    def error(self) -> ProviderError | None:
        """The error this call ends with, or None when it succeeds."""
        return fault_error(self.outcome, self.provider, self.model, self.retry_after_s, stream=False)


@dataclass
class Simulator:
    """Plans calls to simulated providers; one per in-process provider or server.

    Args:
        seed: changes every random choice; the same seed replays the same run.
        clock: reads the time of the degradation windows (they are relative to
            the moment the simulator was made).
    """

    seed: int = 0
    clock: Clock = field(default=SYSTEM_CLOCK)
    started_at: float = field(init=False)

    def __post_init__(self) -> None:
        self.started_at = self.clock.now()

    def elapsed(self) -> float:
        """Seconds since the simulation started."""
        return self.clock.now() - self.started_at

    def _model(self, provider: ProviderProfile, name: str) -> ModelProfile:
        model = provider.model(name)
        if model is None:
            raise ProviderBadRequest(
                f"model {name!r} is not served by simulated provider {provider.name!r}; "
                f"it serves: {', '.join(provider.model_names) or '(nothing)'}",
                provider=provider.name,
                http_status=404,
            )
        return model

    def _check_chat(self, provider: ProviderProfile, model: ModelProfile, request: ChatRequest, prompt_tokens: int) -> None:
        name, where = model.name, provider.name

        def refuse(reason: str) -> ProviderBadRequest:
            return ProviderBadRequest(f"{name} on {where!r}: {reason}", provider=where, http_status=400)

        if model.is_embedding:
            raise refuse("is an embedding model and cannot chat; ask a chat model")
        if request.tools and not model.tools:
            raise refuse("does not support tools; drop them or route to a model that does")
        if not model.vision and any(m.has_images() for m in request.messages):
            raise refuse("does not accept images; route to a vision model")
        fmt = (request.response_format or {}).get("type")
        if fmt in _JSON_FORMATS and not model.json_mode:
            raise refuse("has no JSON mode; drop response_format or route to a model that has one")
        limit = request.output_limit
        if limit is not None and limit > model.max_output:
            raise refuse(f"max_tokens is too large: {limit}; this model writes at most {model.max_output} tokens")
        if prompt_tokens > model.context_window or prompt_tokens + (limit or 0) > model.context_window:
            asked = f"{prompt_tokens} prompt tokens" + (f" plus {limit} output tokens" if limit else "")
            raise ContextTooLong(
                f"{name} on {where!r}: {asked} exceed its context window of {model.context_window} tokens; "
                f"shorten the prompt or route to a model with a larger window",
                provider=where,
                http_status=400,
            ) from ContextOverflow(prompt_tokens, limit or 0, model.context_window)

    def _outcome(
        self, rng: random.Random, provider: ProviderProfile, model: ModelProfile, *, stream: bool
    ) -> tuple[Outcome, float]:
        """The drawn outcome and the slowdown in force."""
        spell = provider.degradation_at(self.elapsed(), model.name)
        slowdown = spell.slowdown if spell else 1.0
        # Two draws, so a bad spell adds to the usual faults instead of
        # reshuffling which calls get them.
        if spell is not None and rng.random() < spell.error_rate:
            return "overloaded", slowdown
        faults = provider.faults_for(model)
        u = rng.random()
        bands: list[tuple[float, Outcome]] = [
            (faults.error_rate, "error"),
            (faults.rate_limit_rate, "rate_limited"),
            (faults.timeout_rate, "timeout"),
            (faults.malformed_rate, "malformed"),
        ]
        if stream:
            bands.append((faults.cut_rate, "cut"))
        edge = 0.0
        for rate, outcome in bands:
            edge += rate
            if u < edge:
                return outcome, slowdown
        return "ok", slowdown

    @staticmethod
    def _retry_after(rng: random.Random, faults: Faults) -> float:
        # Whole seconds: Retry-After carries an integer on the wire.
        return float(max(1, round(faults.retry_after_s * rng.uniform(0.5, 1.5))))

    def plan_chat(
        self,
        provider: ProviderProfile,
        request: ChatRequest,
        *,
        model: str,
        index: int,
        stream: bool = False,
        fault: Outcome | None = None,
    ) -> ChatPlan:
        """Decide one chat call.

        Args:
            provider: the provider that serves it.
            request: the request (its ``model`` is ignored for ``model``).
            model: the model name at that provider.
            index: how many calls this provider's model served before.
            stream: whether the answer streams (only streams can be cut).
            fault: force this outcome instead of drawing one.

        Raises:
            ProviderBadRequest: unknown model, embedding model, or a feature
                the model lacks (tools, images, JSON mode, max_tokens).
            ContextTooLong: the prompt does not fit the context window.
        """
        spec = self._model(provider, model)
        prompt_tokens = estimate_prompt_tokens(request)
        self._check_chat(provider, spec, request, prompt_tokens)
        digest = _prompt_digest(request)
        rng = random.Random(_seed_of(self.seed, provider.name, model, index, digest))
        text_rng = random.Random(_seed_of(self.seed, model, digest))

        outcome, slowdown = self._outcome(rng, provider, spec, stream=stream)
        if fault is not None:
            outcome = fault
        budget = self._budget(spec, request, prompt_tokens)
        calls = plan_tool_calls(request, text_rng, digest)
        if calls:
            text, finish, stop_seq = "", "tool_calls", None
            text_tokens = sum(estimate_tokens(c.name + c.arguments) + 3 for c in calls)
        else:
            text, finish, stop_seq = self._answer(request, prompt_tokens, budget, text_rng)
            text_tokens = estimate_tokens(text)
        thinking = thinking_text(request, text_rng)
        if thinking:
            reasoning = estimate_tokens(thinking)
        else:
            reasoning = int(text_tokens * text_rng.uniform(0.5, 3.0)) if spec.reasoning else 0
        if text_tokens + reasoning > budget:
            # Thinking counts within the output limit (max_tokens, maxOutputTokens), as upstream.
            # Hidden thinking is cut short; shown thinking came first, so the answer gets what is left.
            if not thinking:
                reasoning = max(0, budget - text_tokens)
            else:
                thinking = truncate_to_tokens(thinking, budget - 1)[0] if budget > 1 else ""
                reasoning = estimate_tokens(thinking)
                if not calls and text_tokens > budget - reasoning:
                    text = truncate_to_tokens(text, budget - reasoning)[0]
                    text_tokens, finish, stop_seq = estimate_tokens(text), "length", None
        chunks = split_chunks(text, text_rng)
        fragments = [argument_fragments(c.arguments, text_rng) for c in calls]
        delays = self._delays(rng, provider.latency_for(spec), slowdown, chunks, reasoning)
        cached, written = self._cache(rng, provider, prompt_tokens)
        faults = provider.faults_for(spec)
        return ChatPlan(
            provider=provider.name,
            model=model,
            outcome=outcome,
            text=text,
            chunks=chunks,
            delays=delays,
            finish_reason=finish,
            stop_sequence=stop_seq,
            usage=Usage(
                input_tokens=prompt_tokens,
                output_tokens=text_tokens + reasoning,
                cached_input_tokens=cached,
                cache_write_tokens=written,
                reasoning_tokens=reasoning,
            ),
            response_id=f"{_seed_of(self.seed, provider.name, model, index, digest):016x}",
            retry_after_s=self._retry_after(rng, faults),
            hang_s=faults.hang_s,
            tool_calls=calls,
            fragments=fragments,
            thinking=thinking,
        )

    @staticmethod
    def _budget(model: ModelProfile, request: ChatRequest, prompt_tokens: int) -> int:
        """The most tokens the answer may take, thinking included (at least one)."""
        limits = [model.max_output, model.context_window - prompt_tokens]
        if request.output_limit is not None:
            limits.append(request.output_limit)
        return max(1, min(limits))

    def _answer(
        self, request: ChatRequest, prompt_tokens: int, budget: int, rng: random.Random
    ) -> tuple[str, str, str | None]:
        """Text, finish reason and the stop sequence that ended it, if any.

        A ``json_schema`` response format is answered with a value of its
        schema, ``json_object`` with ``{"answer": ...}``; either may still be
        cut by a stop sequence or the token budget, as upstream.
        """
        last_user = next((m.text() for m in reversed(request.messages) if m.role == "user"), request.prompt_text())
        # Longer prompts get somewhat longer answers, as with real models.
        target = int(rng.lognormvariate(math.log(90), 0.55)) + min(prompt_tokens // 6, 400)
        fmt = request.response_format or {}
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
        if isinstance(schema, dict):
            value = schema_instance(schema, rng, keywords(last_user), sentence=lambda: answer_text(last_user, rng, 1))
            text = json.dumps(value)
        else:
            text = answer_text(last_user, rng, target)
            if fmt.get("type") in _JSON_FORMATS:
                text = json.dumps({"answer": text})
        stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
        hits = [(text.find(s), s) for s in stops if s and s in text]
        stop_seq = None
        if hits:
            at, stop_seq = min(hits)
            text = text[:at]
        text, cut = truncate_to_tokens(text, budget)
        if cut:
            return text, "length", None
        return text, "stop", stop_seq

    @staticmethod
    def _delays(
        rng: random.Random, latency: Latency, slowdown: float, chunks: list[str], reasoning: int
    ) -> list[float]:
        ttft = _lognormal(rng, latency.ttft_p50_ms, latency.ttft_p95_ms) * slowdown
        tps = latency.tokens_per_s / slowdown * rng.uniform(0.85, 1.15)
        if math.isinf(tps):
            return [ttft] + [0.0] * (len(chunks) - 1) if chunks else [ttft]
        # Thinking happens before the first visible token.
        ttft += reasoning / tps
        per_char = 1.0 / (4.0 * tps)
        return [ttft] + [len(c) * per_char for c in chunks[1:]]

    @staticmethod
    def _cache(rng: random.Random, provider: ProviderProfile, prompt_tokens: int) -> tuple[int, int]:
        """Cached-read and cache-write tokens for a prompt of this size."""
        if provider.prompt_caching == "none" or prompt_tokens < _CACHE_MIN_TOKENS:
            return 0, 0
        # A stable system prompt and history make most of a long prompt's
        # prefix cacheable; whether it is still warm is a matter of luck.
        block = int(prompt_tokens * rng.uniform(0.5, 0.95)) // _CACHE_BLOCK * _CACHE_BLOCK
        if rng.random() < 0.6:
            return block, 0
        return 0, block if provider.prompt_caching == "explicit" else 0

    def plan_embed(
        self,
        provider: ProviderProfile,
        inputs: list[str],
        *,
        model: str,
        index: int,
        dimensions: int | None = None,
        fault: Outcome | None = None,
    ) -> EmbedPlan:
        """Decide one embeddings call.

        Raises:
            ProviderBadRequest: unknown model, a chat model, or bad dimensions.
            ContextTooLong: an input is longer than the model accepts.
        """
        spec = self._model(provider, model)
        if spec.embedding_dim is None:
            raise ProviderBadRequest(
                f"{model} on {provider.name!r} is a chat model and makes no embeddings; ask an embedding model",
                provider=provider.name,
                http_status=400,
            )
        dim = dimensions or spec.embedding_dim
        if dim < 1 or dim > 8192:
            raise ProviderBadRequest(f"dimensions must be within 1..8192, not {dim}", provider=provider.name, http_status=400)
        counts = [estimate_tokens(t) for t in inputs]
        for i, n in enumerate(counts):
            if n > spec.context_window:
                raise ContextTooLong(
                    f"input {i} has {n} tokens; {model} embeds at most {spec.context_window}; shorten it",
                    provider=provider.name,
                    http_status=400,
                ) from ContextOverflow(n, 0, spec.context_window)
        rng = random.Random(_seed_of(self.seed, provider.name, model, index, *inputs))
        outcome, slowdown = self._outcome(rng, provider, spec, stream=False)
        if fault is not None:
            outcome = fault
        latency = provider.latency_for(spec)
        # Embeddings need no decoding: a fraction of a chat call's first token.
        seconds = _lognormal(rng, latency.ttft_p50_ms, latency.ttft_p95_ms) * slowdown * 0.25
        faults = provider.faults_for(spec)
        return EmbedPlan(
            provider=provider.name,
            model=model,
            outcome=outcome,
            vectors=[embed_text(t, dim) for t in inputs],
            usage=Usage(input_tokens=sum(counts)),
            latency_s=seconds,
            retry_after_s=self._retry_after(rng, faults),
            hang_s=faults.hang_s,
        )
