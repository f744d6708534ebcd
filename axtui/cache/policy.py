"""Which cache policy applies to a request, and what the caller asked for.

The policy of a request comes from ``[cache]`` in the config, overridden by
the first entry of ``[cache.models]`` that names the requested model or
alias exactly, else by the most specific glob pattern that matches it
(``"gpt-4o*"``, ``"*"``). Unset fields of an entry inherit from ``[cache]``.

The default policy (no ``[cache]`` section at all): on; entries live an
hour (``ttl_s = 3600``; 0 keeps them until evicted); scoped to the user;
semantic lookup on with the built-in embedder at similarity 0.9; no
temperature ceiling.

A request may narrow the policy with ``X-Ax-Cache`` (or the request's
metadata ``{"ax_cache": "..."}``): ``no-cache`` (do not read, still
write), ``no-store`` (neither), ``ttl=SECONDS`` (accept only answers at
most that old, and keep this one that long; ``ttl=0`` never reads or
keeps).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Literal

from axtui.config import CacheConfig, CachePolicy
from axtui.errors import InvalidRequest
from axtui.ports import CacheDirective
from axtui.types import ChatRequest

__all__ = ["EffectivePolicy", "PolicyBook", "directive_for"]


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    """The cache policy of one requested model, every field resolved."""

    enabled: bool
    ttl_s: int
    scope: Literal["user", "key", "global"]
    semantic: bool
    threshold: float
    max_temperature: float | None
    #: The ``[cache.models]`` entry that decided, or ``"[cache]"``.
    source: str = "[cache]"

    def reads(self, request: ChatRequest, directive: CacheDirective) -> bool:
        """Whether a lookup may answer this request from the cache."""
        return self.enabled and directive.read and directive.ttl_s != 0 and self._temperature_ok(request)

    def writes(self, request: ChatRequest, directive: CacheDirective) -> bool:
        """Whether this request's answer may be kept."""
        return self.enabled and directive.write and directive.ttl_s != 0 and self._temperature_ok(request)

    def ttl_for(self, directive: CacheDirective) -> int:
        """Seconds an answer stored now lives (0: until evicted)."""
        return directive.ttl_s if directive.ttl_s is not None else self.ttl_s

    def _temperature_ok(self, request: ChatRequest) -> bool:
        ceiling = self.max_temperature
        return ceiling is None or (request.temperature or 0.0) <= ceiling


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


class PolicyBook:
    """Resolves and remembers the policy of each requested model."""

    def __init__(self, config: CacheConfig) -> None:
        self.config = config
        self._memo: dict[str, EffectivePolicy] = {}
        # Most specific patterns first: longer, then fewer wildcards.
        self._patterns = sorted(
            (n for n in config.models if _is_pattern(n)),
            key=lambda n: (-len(n.replace("*", "")), n.count("*")),
        )

    def for_model(self, model: str) -> EffectivePolicy:
        """The policy for requests that name ``model`` (a model or an alias)."""
        got = self._memo.get(model)
        if got is None:
            got = self._memo[model] = self._resolve(model)
        return got

    def _resolve(self, model: str) -> EffectivePolicy:
        c = self.config
        source = "[cache]"
        rule: CachePolicy | None = c.models.get(model)
        if rule is not None:
            source = f"[cache.models.{model!r}]"
        else:
            for pattern in self._patterns:
                if fnmatch.fnmatchcase(model, pattern):
                    rule = c.models[pattern]
                    source = f"[cache.models.{pattern!r}]"
                    break
        rule = rule or CachePolicy()

        def pick(name: str) -> Any:
            value = getattr(rule, name)
            return getattr(c, name) if value is None else value

        return EffectivePolicy(
            enabled=bool(pick("enabled")),
            ttl_s=int(pick("ttl_s")),
            scope=pick("scope"),
            semantic=bool(pick("semantic")),
            threshold=float(pick("threshold")),
            max_temperature=pick("max_temperature"),
            source=source,
        )


def directive_for(header: str | None, metadata: dict[str, Any] | None = None) -> CacheDirective:
    """The caller's cache directive: the ``X-Ax-Cache`` header, else ``metadata["ax_cache"]``.

    Raises:
        InvalidRequest: the directive is malformed; the message lists the valid forms.
    """
    value = header
    if not value and metadata:
        raw = metadata.get("ax_cache")
        if raw is not None and not isinstance(raw, str):
            raise InvalidRequest(
                'metadata "ax_cache" must be a string such as "no-cache", "no-store" or "ttl=600"', param="metadata"
            )
        value = raw
    try:
        return CacheDirective.parse(value)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="X-Ax-Cache") from None
