"""Which cache policy applies to a request, and what the caller asked for.

The policy of a request comes from ``[cache]`` in the config, overridden by
the first entry of ``[cache.models]`` that names the requested model or
alias exactly, else by the most specific glob pattern that matches it
(``"gpt-4o*"``, ``"*"``). Unset fields of an entry inherit from ``[cache]``.

A name that stands for other models (an alias, or a ``provider/model``
deployment) and has no entry of its own takes its models' policies, the
strictest of each field: off if any is off, the shortest TTL, the highest
threshold, the lowest temperature ceiling; models cached in different
scopes leave it uncached. So naming a deployment or an alias never
widens who shares an answer.

The default policy (no ``[cache]`` section at all): on; entries live an
hour (``ttl_s = 3600``; 0 keeps them until evicted); scoped to the user;
semantic lookup on with the built-in embedder at similarity 0.9; no
temperature ceiling.

A request may narrow the policy with ``X-Ax-Cache`` (or the request's
metadata ``{"ax_cache": "..."}``): ``no-cache`` (do not read, still
write), ``no-store`` (neither), ``ttl=SECONDS`` (accept only answers at
most that old, and keep this one that long, never longer than the
policy's ``ttl_s``; ``ttl=0`` never reads or keeps).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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
        """Seconds an answer stored now lives (0: until evicted): a request's ``ttl=`` only shortens the policy's."""
        asked = directive.ttl_s
        if asked is None or (self.ttl_s and asked > self.ttl_s):
            return self.ttl_s
        return asked

    def _temperature_ok(self, request: ChatRequest) -> bool:
        ceiling = self.max_temperature
        return ceiling is None or (request.temperature or 0.0) <= ceiling


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


class PolicyBook:
    """Resolves and remembers the policy of each requested model.

    Args:
        config: the ``[cache]`` settings.
        behind: the models an alias or a deployment id stands for (empty for
            any other name; None: names stand for themselves); asked on every
            call, as aliases change live.
    """

    def __init__(self, config: CacheConfig, behind: Callable[[str], Sequence[str]] | None = None) -> None:
        self.config = config
        self.behind = behind
        self._memo: dict[str, EffectivePolicy] = {}
        self._merged: dict[tuple[str, tuple[str, ...]], EffectivePolicy] = {}
        # Most specific patterns first: longer, then fewer wildcards.
        self._patterns = sorted(
            (n for n in config.models if _is_pattern(n)),
            key=lambda n: (-len(n.replace("*", "")), n.count("*")),
        )

    def for_model(self, model: str) -> EffectivePolicy:
        """The policy for requests that name ``model`` (a model, an alias or a deployment)."""
        if self.behind is not None and model not in self.config.models:
            models = tuple(self.behind(model))
            if models:
                got = self._merged.get((model, models))
                if got is None:
                    got = self._merged[(model, models)] = self._strictest(model, models)
                return got
        return self._own(model)

    def _own(self, model: str) -> EffectivePolicy:
        got = self._memo.get(model)
        if got is None:
            got = self._memo[model] = self._resolve(model)
        return got

    def _strictest(self, name: str, models: tuple[str, ...]) -> EffectivePolicy:
        policies = [self._own(m) for m in dict.fromkeys(models)]
        sources = ", ".join(dict.fromkeys(p.source for p in policies))
        ceilings = [p.max_temperature for p in policies if p.max_temperature is not None]
        scopes = {p.scope for p in policies}
        merged = replace(
            policies[0],
            enabled=all(p.enabled for p in policies) and len(scopes) == 1,
            # 0 keeps an answer until it is evicted: the longest of all.
            ttl_s=min((p.ttl_s for p in policies), key=lambda t: (t == 0, t)),
            semantic=all(p.semantic for p in policies),
            threshold=max(p.threshold for p in policies),
            max_temperature=min(ceilings) if ceilings else None,
            source=f"{sources} (the strictest of the models {name!r} stands for)",
        )
        if len(scopes) > 1:
            merged = replace(merged, source=(
                f"off: the models {name!r} stands for are cached in different scopes ({sources}); give "
                f"[cache.models.{name!r}] a scope of its own to cache it"))
        return merged

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
