"""A scriptable provider for engine tests: each call takes the next scripted outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from axtui.config import ProviderConfig
from axtui.errors import AxError
from axtui.providers.base import Provider
from axtui.types import ChatRequest, ChatResponse, Chunk, Deployment, EmbeddingResponse, Usage


class ScriptedProvider(Provider):
    """Answers ``"<name> says hi"`` unless the script says to fail.

    ``script`` items: an AxError instance (raised), ``"ok"``, ``"no-usage"``
    (a stream without a usage chunk), ``("fail-after", n, exc)`` (a stream
    that yields n chunks then raises), ``"hang"`` (never finishes).
    """

    kind = "scripted"

    def __init__(self, name: str, script: list[Any] | None = None, words: int = 5) -> None:
        super().__init__(ProviderConfig(name=name, kind="openai", max_retries=0))
        self.script = list(script or [])
        self.calls = 0
        self.closed_streams = 0
        self.words = words

    def _next(self) -> Any:
        self.calls += 1
        return self.script.pop(0) if self.script else "ok"

    def _text(self) -> str:
        return " ".join([f"{self.name}"] + ["word"] * (self.words - 1))

    async def chat(self, request: ChatRequest, deployment: Deployment) -> ChatResponse:
        step = self._next()
        if isinstance(step, AxError):
            raise step
        if step == "hang":
            await asyncio.sleep(3600)
        return ChatResponse(content=self._text(), model=deployment.upstream_model,
                            usage=Usage(input_tokens=10, output_tokens=self.words))

    async def stream(self, request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:  # type: ignore[override]
        step = self._next()
        try:
            if isinstance(step, AxError):
                raise step
            fail_after = step[1] if isinstance(step, tuple) else None
            for i, word in enumerate(self._text().split(" ")):
                if fail_after is not None and i == fail_after:
                    raise step[2]
                if step == "hang" and i == 2:
                    await asyncio.sleep(3600)
                yield Chunk(delta=word if i == 0 else " " + word)
            yield Chunk(finish_reason="stop")
            if step != "no-usage":
                yield Chunk(usage=Usage(input_tokens=10, output_tokens=self.words))
        finally:
            self.closed_streams += 1

    async def embed(self, inputs: list[str], model: str) -> EmbeddingResponse:
        step = self._next()
        if isinstance(step, AxError):
            raise step
        return EmbeddingResponse([[1.0, 0.0] for _ in inputs], model, Usage(input_tokens=len(inputs)))

    async def list_models(self) -> list[str]:
        return ["m"]
