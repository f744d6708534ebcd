"""`SimProvider`: a simulated provider account, in process, with no HTTP.

It plays one provider of a profile (the config's ``name`` picks which),
waiting on its clock as long as the real provider would (a `FakeClock`
makes that instant) and failing the way the profile says, with the same
error types a real adapter raises. Tests can also force faults:
`SimProvider.inject` queues them for the next calls, and a request whose
``metadata`` has ``sim_fault`` gets that one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import ProviderConfig
from axtui.errors import ProviderBadRequest
from axtui.providers._wire import refuse_choices_and_logprobs, refuse_json_object
from axtui.providers.base import Provider
from axtui.providers.sim.profiles import resolve_profile
from axtui.providers.sim.simulate import ChatPlan, Outcome, Simulator, parse_fault, thinking_signature
from axtui.providers.sim.spec import Profile
from axtui.providers.sim.wire import token_text
from axtui.providers.sim.wire_openai import logprobs_for
from axtui.types import ChatRequest, ChatResponse, Chunk, Deployment, EmbeddingResponse

__all__ = ["SimProvider"]

# Refusals (429, 401) come back quickly: the real provider never starts work.
_REFUSAL_SHARE = 0.1
_API_NAMES = {"anthropic": "Anthropic", "gemini": "Gemini"}


class SimProvider(Provider):
    """A simulated provider account (config kind ``sim``).

    Args:
        config: the account; ``profile`` names the profile (default
            ``demo``), ``name`` the provider it plays, ``models`` and
            ``region`` narrow or relabel what it serves.
        clock: waits and degradation windows use it; `FakeClock` for tests.
        seed: the same seed, prompt and call index give the same outcome.
        profile: a profile or profile name that replaces the config's.
        transport: accepted for the registry's sake and ignored (no HTTP).

    Attributes:
        served: calls handled per model (failed ones included).
        spec: the `ProviderProfile` this account plays.
    """

    kind = "sim"

    def __init__(
        self,
        config: ProviderConfig,
        *,
        clock: Clock | None = None,
        seed: int = 0,
        profile: str | Profile | None = None,
        transport: Any = None,
    ) -> None:
        super().__init__(config)
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.profile = resolve_profile(profile if profile is not None else config.profile)
        self.spec = self.profile.provider_for(config.name, models=config.models, region=config.region)
        self.simulator = Simulator(seed=seed, clock=self.clock)
        self.served: dict[str, int] = {}
        self._injected: deque[Outcome] = deque()

    def inject(self, *faults: str) -> None:
        """Make the next calls fail: one fault name per call, in order.

        Args:
            faults: names from `FAULTS` (``500``, ``503``, ``429``,
                ``timeout``, ``malformed``, ``cut``, ``401``).

        Raises:
            ValueError: a name is unknown.
        """
        self._injected.extend(parse_fault(f) for f in faults)

    def _forced(self, request: ChatRequest | None = None) -> Outcome | None:
        if self._injected:
            return self._injected.popleft()
        wanted = (request.metadata or {}).get("sim_fault") if request is not None else None
        if not wanted:
            return None
        try:
            return parse_fault(str(wanted))
        except ValueError as exc:
            raise ProviderBadRequest(str(exc), provider=self.name, http_status=400) from None

    def speaks(self, api: str, model: str = "") -> bool:
        """A simulated Anthropic takes a Messages client's request as sent, as Anthropic does (it answers from
        its translation: server tools and blocks the translation leaves out are taken, not refused)."""
        return api == "messages" and self.spec.api == "anthropic"

    def _refuse_unsupported(self, request: ChatRequest) -> None:
        """Refuse what ax's adapter for this provider's API refuses before calling it.

        Raises:
            UnsupportedParameter: ``n > 1``, ``logprobs`` or ``top_logprobs`` at an
                Anthropic or Gemini provider, ``json_object`` at an Anthropic one.
        """
        kind = _API_NAMES.get(self.spec.api)
        if kind is None:
            return
        refuse_choices_and_logprobs(request, self.name, kind)
        if self.spec.api == "anthropic":
            refuse_json_object(request, self.name, kind)

    def _plan(self, request: ChatRequest, model: str, *, stream: bool) -> ChatPlan:
        self._refuse_unsupported(request)
        index = self.served.get(model, 0)
        plan = self.simulator.plan_chat(
            self.spec, request, model=model, index=index, stream=stream, fault=self._forced(request)
        )
        self.served[model] = index + 1
        return plan

    async def _wait(self, seconds: float) -> None:
        # Zero waits skip the clock entirely: the `fast` profile's calls
        # then cost no event-loop round trip.
        if seconds > 0:
            await self.clock.sleep(seconds)

    async def _fail(self, outcome: Outcome, plan_error: Exception | None, *, first_s: float, total_s: float,
                    hang_s: float) -> None:
        """Wait as the failing provider would, then raise its error."""
        if plan_error is None:
            return
        if outcome in ("rate_limited", "auth"):
            await self._wait(first_s * _REFUSAL_SHARE)
        elif outcome == "timeout":
            # The provider hangs; the adapter gives up at its own timeout.
            await self._wait(min(hang_s, self.config.timeout_s))
        elif outcome in ("malformed", "cut"):
            await self._wait(total_s if outcome == "malformed" else total_s / 2)
        else:
            await self._wait(first_s)
        raise plan_error

    async def chat(self, request: ChatRequest, deployment: Deployment) -> ChatResponse:
        """One complete answer, after the simulated latency.

        Raises:
            ProviderBadRequest: unknown model or a feature the model lacks.
            ContextTooLong: the prompt does not fit the model.
            ProviderError: the fault the profile (or an injection) decided.
        """
        model = deployment.upstream_model
        plan = self._plan(request, model, stream=False)
        await self._fail(plan.outcome, plan.error(stream=False), first_s=plan.ttft_s, total_s=plan.total_s,
                         hang_s=plan.hang_s)
        await self._wait(plan.total_s)
        calls = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                 for c in plan.tool_calls]
        blocks = None
        if plan.thinking and isinstance(request.passthrough().get("thinking"), dict):
            blocks = [{"type": "thinking", "thinking": plan.thinking, "signature": thinking_signature(plan.thinking)}]
        return ChatResponse(
            content=plan.text,
            model=model,
            usage=plan.usage,
            finish_reason=plan.finish_reason,
            tool_calls=calls or None,
            id=f"sim-{plan.response_id}",
            provider=self.name,
            created=int(self.clock.now()),
            reasoning=plan.thinking,
            thinking_blocks=blocks,
            extra_choices=self._extra_choices(request, plan, calls),
            logprobs=logprobs_for(request, plan.text),
        )

    @staticmethod
    def _extra_choices(request: ChatRequest, plan: ChatPlan, calls: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Choices after the first for ``n > 1``: the simulation answers each the same way."""
        if (request.n or 1) < 2:
            return None
        message: dict[str, Any] = {"role": "assistant", "content": plan.text or None}
        if calls:
            message["tool_calls"] = calls
        return [{"index": i, "message": message, "finish_reason": plan.finish_reason,
                 "logprobs": logprobs_for(request, plan.text)} for i in range(1, request.n or 1)]

    async def stream(self, request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:
        """The answer in pieces: text chunks, a finish chunk, a usage chunk.

        With ``n > 1`` each piece, tool call and finish comes once per choice
        (`Chunk.choice`), as OpenAI streams them; with ``logprobs`` each piece
        carries its own. A ``cut`` fault yields the first half of the text,
        then raises `StreamInterrupted`; other faults raise before any chunk.
        """
        model = deployment.upstream_model
        plan = self._plan(request, model, stream=True)
        response_id = f"sim-{plan.response_id}"
        if plan.outcome != "cut":
            await self._fail(plan.outcome, plan.error(), first_s=plan.ttft_s, total_s=plan.ttft_s, hang_s=plan.hang_s)
        if plan.thinking:
            yield Chunk(reasoning=plan.thinking, model=model, id=response_id)
            if isinstance(request.passthrough().get("thinking"), dict):
                yield Chunk(reasoning_signature=thinking_signature(plan.thinking), model=model, id=response_id)
        choices = range(request.n or 1)
        count = plan.cut_at if plan.outcome == "cut" else len(plan.chunks)
        for piece, delay in zip(plan.chunks[:count], plan.delays, strict=False):
            await self._wait(delay)
            logprobs = logprobs_for(request, piece)
            for c in choices:
                yield Chunk(delta=piece, model=model, id=response_id, choice=c, logprobs=logprobs)
        error = plan.error()
        if error is not None:
            raise error
        if not plan.chunks:
            await self._wait(plan.ttft_s)
        for c in choices:
            for i, (call, pieces) in enumerate(zip(plan.tool_calls, plan.fragments, strict=True)):
                head = {"index": i, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
                yield Chunk(tool_calls=[head], model=model, id=response_id, choice=c)
                for piece in pieces:
                    yield Chunk(tool_calls=[{"index": i, "function": {"arguments": piece}}], model=model,
                                id=response_id, choice=c)
        for c in choices:
            yield Chunk(finish_reason=plan.finish_reason, model=model, id=response_id, choice=c)
        yield Chunk(usage=plan.usage, model=model, id=response_id)

    @property
    def embeds_token_ids(self) -> bool:  # type: ignore[override]
        """As the API it plays: token ids where it plays OpenAI's."""
        return self.spec.api == "openai"

    async def embed(self, inputs: list[str], model: str, *, dimensions: int | None = None) -> EmbeddingResponse:
        """Deterministic unit vectors for ``inputs`` (token ids embed as their digits), one per input, in order.

        Raises:
            ProviderBadRequest: unknown model or a chat model.
            ContextTooLong: an input is longer than the model accepts.
            ProviderError: the fault the profile (or an injection) decided.
        """
        index = self.served.get(model, 0)
        inputs = [t if isinstance(t, str) else token_text(t) for t in inputs]
        plan = self.simulator.plan_embed(self.spec, inputs, model=model, index=index, dimensions=dimensions,
                                         fault=self._forced())
        self.served[model] = index + 1
        await self._fail(plan.outcome, plan.error(), first_s=plan.latency_s, total_s=plan.latency_s,
                         hang_s=plan.hang_s)
        await self._wait(plan.latency_s)
        return EmbeddingResponse(vectors=plan.vectors, model=model, usage=plan.usage)

    async def list_models(self) -> list[str]:
        """Every model this account serves, chat and embedding ones."""
        return self.spec.model_names
