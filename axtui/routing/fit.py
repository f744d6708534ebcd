"""What a request needs from a deployment, and whether a deployment has it.

Requirements come from the request itself: tools need tool calling, an
image needs vision, ``response_format`` JSON needs JSON mode, and the
estimated prompt plus the output the caller allows must fit the context
window (and the output alone the deployment's output limit).
"""

from __future__ import annotations

from dataclasses import dataclass

from axtui.tokens import estimate_prompt_tokens
from axtui.types import ChatRequest, Deployment

__all__ = ["Requirements", "misfit"]

_JSON_FORMATS = ("json_object", "json_schema")


@dataclass(frozen=True, slots=True)
class Requirements:
    """What one call needs.

    ``prompt_tokens`` is an estimate (about four characters a token), so a
    deployment whose window it only just fits is still tried, with
    larger-context ones right behind it.
    """

    prompt_tokens: int = 0
    output_tokens: int | None = None
    tools: bool = False
    vision: bool = False
    json_mode: bool = False

    @classmethod
    def of(cls, request: ChatRequest) -> Requirements:
        """The requirements of ``request``."""
        fmt = request.response_format.get("type") if request.response_format else None
        return cls(
            prompt_tokens=estimate_prompt_tokens(request),
            output_tokens=request.output_limit,
            tools=bool(request.tools) and request.tool_choice != "none",
            vision=any(m.has_images() for m in request.messages),
            json_mode=fmt in _JSON_FORMATS,
        )

    @property
    def context_tokens(self) -> int:
        """Tokens the context window must hold: the prompt plus the output allowed."""
        return self.prompt_tokens + (self.output_tokens or 0)

    def describe(self) -> str:
        """A short phrase, e.g. ``~1,200 prompt tokens + 512 output, tools, images``."""
        parts = [f"~{self.prompt_tokens:,} prompt tokens" + (f" + {self.output_tokens:,} output"
                                                             if self.output_tokens else "")]
        parts += [name for name, on in (("tools", self.tools), ("images", self.vision), ("JSON mode", self.json_mode))
                  if on]
        return ", ".join(parts)


def misfit(dep: Deployment, req: Requirements) -> str | None:
    """Why ``dep`` cannot serve ``req``, or None when it can."""
    if req.tools and not dep.supports_tools:
        return "no tool calling (the request has tools)"
    if req.vision and not dep.supports_vision:
        return "no vision (the request has images)"
    if req.json_mode and not dep.supports_json:
        return "no JSON mode (the request asks for JSON)"
    if req.output_tokens and dep.max_output and req.output_tokens > dep.max_output:
        return f"max output {dep.max_output:,} < {req.output_tokens:,} tokens asked"
    if dep.context_window and req.context_tokens > dep.context_window:
        return f"context window {dep.context_window:,} < ~{req.context_tokens:,} tokens needed"
    return None
