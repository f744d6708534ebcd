"""A provider that answers at once (or after a fixed time on its clock), for engine-level limit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

from axtui.clock import Clock
from axtui.config import ProviderConfig
from axtui.providers.base import Provider, UpstreamLimits
from axtui.types import ChatRequest, ChatResponse, Chunk, Deployment, EmbeddingResponse, Usage


class InstantProvider(Provider):
    """Answers every call with ``latency_s`` on its clock (0: at once) and fixed usage.

    ``then_says`` sets the upstream limits it reports after each answer, as a
    real adapter learns them from ``x-ratelimit-*`` headers.
    """

    kind = "instant"

    def __init__(self, name: str, clock: Clock, *, latency_s: float = 0.0, then_says: UpstreamLimits | None = None) -> None:
        super().__init__(ProviderConfig(name=name, kind="openai", models=["m"], max_retries=0))
        self.clock = clock
        self.latency_s = latency_s
        self.then_says = then_says
        self.calls = 0

    async def chat(self, request: ChatRequest, deployment: Deployment) -> ChatResponse:
        self.calls += 1
        if self.latency_s:
            await self.clock.sleep(self.latency_s)
        if self.then_says is not None:
            says = self.then_says
            self.upstream_limits = UpstreamLimits(
                says.limit_requests, says.limit_tokens, says.remaining_requests, says.remaining_tokens,
                says.reset_requests_s, says.reset_tokens_s, self.clock.now(),
            )
        return ChatResponse(content=f"{self.name} says hi", model=deployment.upstream_model,
                            usage=Usage(input_tokens=20, output_tokens=5))

    async def stream(self, request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:  # type: ignore[override]
        response = await self.chat(request, deployment)
        yield Chunk(delta=response.content)
        yield Chunk(finish_reason="stop")
        yield Chunk(usage=response.usage)

    async def embed(self, inputs: list[str], model: str) -> EmbeddingResponse:
        return EmbeddingResponse([[1.0, 0.0] for _ in inputs], model, Usage(input_tokens=len(inputs)))

    async def list_models(self) -> list[str]:
        return ["m"]
