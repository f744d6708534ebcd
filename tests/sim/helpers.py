"""Small builders shared by the simulated fleet's tests."""

from __future__ import annotations

from typing import Any

from axtui.types import ChatRequest, Deployment


def ask(prompt: str, model: str = "gpt-4o", **fields: Any) -> ChatRequest:
    """A one-message chat request."""
    return ChatRequest(model=model, messages=[{"role": "user", "content": prompt}], **fields)


def deployment(provider: str, model: str) -> Deployment:
    """A deployment of ``model`` at ``provider``."""
    return Deployment(provider=provider, model=model, upstream_model=model)
