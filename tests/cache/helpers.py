"""Requests and answers for the cache tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from axtui.cache import BuiltinEmbedder
from axtui.config import ProviderConfig, Settings
from axtui.providers.base import Provider
from axtui.types import ChatRequest, ChatResponse, Chunk, Deployment, EmbeddingResponse, Usage


def request(text: str = "What is the capital of France?", model: str = "m", **params: Any) -> ChatRequest:
    """A one-turn chat request."""
    return ChatRequest.model_validate({"model": model, "messages": [{"role": "user", "content": text}], **params})


def conversation(*turns: tuple[str, str], model: str = "m", **params: Any) -> ChatRequest:
    """A request of several (role, text) turns."""
    msgs = [{"role": r, "content": t} for r, t in turns]
    return ChatRequest.model_validate({"model": model, "messages": msgs, **params})


def answer(text: str = "Paris.", provider: str = "p", model: str = "m-1") -> ChatResponse:
    """An upstream answer."""
    return ChatResponse(content=text, model=model, usage=Usage(input_tokens=12, output_tokens=3), provider=provider)


class CountingProvider(Provider):
    """Answers every question with a numbered answer, counting the calls that reached it."""

    kind = "counting"

    def __init__(self, name: str = "up") -> None:
        super().__init__(ProviderConfig(name=name, kind="openai", max_retries=0, models=["m", "emb"]))
        self.calls = 0
        self.embed_calls = 0

    def _text(self, request: ChatRequest) -> str:
        return f"answer {self.calls} to {request.messages[-1].text()!r}, told in several words"

    async def chat(self, request: ChatRequest, deployment: Deployment) -> ChatResponse:
        self.calls += 1
        return ChatResponse(content=self._text(request), model=deployment.upstream_model,
                            usage=Usage(input_tokens=10, output_tokens=8))

    async def stream(self, request: ChatRequest, deployment: Deployment) -> AsyncIterator[Chunk]:  # type: ignore[override]
        self.calls += 1
        words = self._text(request).split(" ")
        for i, word in enumerate(words):
            yield Chunk(delta=word if i == 0 else " " + word)
            await asyncio.sleep(0)
        yield Chunk(finish_reason="stop")
        yield Chunk(usage=Usage(input_tokens=10, output_tokens=len(words)))

    async def embed(self, inputs: list[str], model: str) -> EmbeddingResponse:
        self.embed_calls += 1
        vectors = BuiltinEmbedder(dim=64).embed_sync(inputs).tolist()
        return EmbeddingResponse(vectors, model, Usage(input_tokens=sum(len(t.split()) for t in inputs)))

    async def list_models(self) -> list[str]:
        return ["m", "emb"]


def settings_for(provider: CountingProvider, **cache: Any) -> Settings:
    """Settings serving ``m`` (and the embedding model ``emb``) from ``provider``."""
    return Settings.model_validate({
        "providers": [{"name": provider.name, "kind": "openai", "models": ["m", "emb"], "max_retries": 0}],
        "cache": cache,
    })
