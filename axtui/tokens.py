"""Token estimates, for admission and for streams that report no usage.

Real tokenizers need vocabulary files ax cannot assume are present; about
four characters a token (plus a few per message) is what OpenAI documents
as the rule of thumb, and estimates are corrected by reported usage later.
"""

from __future__ import annotations

from axtui.types import ChatRequest

__all__ = ["estimate_prompt_tokens", "estimate_tokens"]

_PER_MESSAGE = 4
_PER_IMAGE = 765


def estimate_tokens(text: str) -> int:
    """About one token per four characters; at least one for any text."""
    return (len(text) + 3) // 4 if text else 0


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """Tokens a request's prompt will take, messages and tools included.

    Remembered on the request: admission, routing and budgets all ask.
    """
    cached = request.__pydantic_private__.get("_prompt_tokens") if request.__pydantic_private__ else None
    if cached is not None:
        return int(cached)
    total = 3
    for m in request.messages:
        total += _PER_MESSAGE + estimate_tokens(m.text())
        if m.has_images():
            total += _PER_IMAGE
    if request.tools:
        total += sum(estimate_tokens(str(t)) for t in request.tools)
    request._prompt_tokens = total
    return total
