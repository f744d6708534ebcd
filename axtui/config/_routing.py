"""Routing: strategies, rules, A/B tests and aliases."""

from __future__ import annotations

import re

from pydantic import Field, model_validator

from axtui.config._base import _check_glob, _Section

#: The routing strategies a rule, the config or a call may name.
ROUTING_STRATEGIES: tuple[str, ...] = (
    "latency", "cost", "balanced", "capability", "weighted", "least-busy", "round-robin"
)

__all__ = ["ROUTING_STRATEGIES", "ABTestConfig", "ABVariant", "RoutingConfig", "RoutingRule"]


def _known_strategy(value: str | None, where: str) -> None:
    if value is not None and value not in ROUTING_STRATEGIES:
        raise ValueError(f"{where}: unknown strategy {value!r}; use one of: {', '.join(ROUTING_STRATEGIES)}")


class ABVariant(_Section):
    """One arm of an A/B test: the model its callers get, and their share."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    model: str = Field(min_length=1)
    percent: float = Field(ge=0, le=100)


class ABTestConfig(_Section):
    """Split the callers of a model between variants, sticky per user.

    ``model`` is the name callers ask for (a glob such as ``gpt-4o*`` is
    allowed); each caller is hashed with the test's name into one variant
    and keeps it while the splits stay the same.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    model: str = Field(min_length=1)
    variants: list[ABVariant] = Field(min_length=2)
    enabled: bool = True

    @model_validator(mode="after")
    def _splits_add_up(self) -> ABTestConfig:
        _check_glob(self.model, f"A/B test {self.name!r}, field model", "model")
        total = sum(v.percent for v in self.variants)
        if abs(total - 100) > 1e-6:
            raise ValueError(
                f"A/B test {self.name!r}: the variants' percent must add up to 100, not {total:g}; adjust the splits"
            )
        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"A/B test {self.name!r}: variant names must differ; {', '.join(dupes)} appears twice")
        return self


class RoutingRule(_Section):
    """A routing rule; the first that matches a call decides its route.

    A rule matches when every condition it sets holds: the requested model,
    the user and the gateway key (globs), every tag in ``tags``, the
    estimated prompt size (``min_prompt_tokens`` .. ``max_prompt_tokens``)
    and the hour of day in ``timezone`` (``hours = "9-17"`` is 09:00 to
    16:59; ``"22-6"`` wraps past midnight). It then names a ``strategy``,
    the ``deployments`` to choose among (ids, models or aliases; empty
    keeps the requested model's), ``fallbacks`` tried after them in order,
    and a ``region`` to prefer, or to stay in when ``require_region``.
    ``max_p95_ms`` bounds the recent p95 latency of the deployments the
    ``balanced`` strategy may pick (see `RoutingConfig.max_p95_ms`).
    """

    name: str = Field(min_length=1)
    model: str = Field(default="*", min_length=1)
    user: str = Field(default="*", min_length=1)
    key: str = Field(default="*", min_length=1)
    tags: list[str] = Field(default_factory=list)
    min_prompt_tokens: int | None = Field(default=None, ge=0)
    max_prompt_tokens: int | None = Field(default=None, ge=0)
    hours: str | None = None
    timezone: str = "UTC"
    strategy: str | None = None
    deployments: list[str] = Field(default_factory=list)
    fallbacks: list[str] = Field(default_factory=list)
    region: str | None = None
    require_region: bool = False
    max_p95_ms: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> RoutingRule:
        where = f"rule {self.name!r}"
        _known_strategy(self.strategy, f"{where}, field strategy")
        for field_name in ("model", "user", "key"):
            _check_glob(getattr(self, field_name), f"{where}, field {field_name}", field_name)
        if (
            self.min_prompt_tokens is not None
            and self.max_prompt_tokens is not None
            and self.min_prompt_tokens > self.max_prompt_tokens
        ):
            raise ValueError(
                f"{where}: min_prompt_tokens ({self.min_prompt_tokens}) is above max_prompt_tokens "
                f"({self.max_prompt_tokens}); swap them"
            )
        if self.hours is not None:
            m = re.fullmatch(r"\s*(\d{1,2})\s*-\s*(\d{1,2})\s*", self.hours)
            start, end = (int(m.group(1)), int(m.group(2))) if m else (-1, -1)
            if not (0 <= start <= 23 and 0 <= end <= 24) or start == end:
                raise ValueError(
                    f"{where}, field hours: {self.hours!r} is not a range of hours; write START-END with "
                    "START 0..23 and END 0..24, different, e.g. \"9-17\" or \"22-6\""
                )
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{where}, field timezone: unknown time zone {self.timezone!r}; use a name like 'UTC' or "
                "'Europe/Paris'"
            ) from None
        if self.require_region and not self.region:
            raise ValueError(f"{where}: require_region is set but region is not; name the region to stay in")
        for field_name in ("deployments", "fallbacks", "tags"):
            if any(not item.strip() for item in getattr(self, field_name)):
                raise ValueError(f"{where}, field {field_name}: an entry is empty; remove it or name something")
        return self


class RoutingConfig(_Section):
    """How deployments are chosen, and when one is taken out of rotation.

    ``strategy`` applies when no rule names one. Health is judged over the
    last ``window_s`` seconds. A deployment's circuit opens after
    ``circuit_failures`` failures in a row, or when at least
    ``circuit_min_calls`` calls in the window failed at
    ``circuit_error_rate`` or more; after ``circuit_cooldown_s`` one probe
    call is let through, and a success closes it. An upstream 429 rests the
    deployment for its Retry-After (``rate_limit_cooldown_s`` when it gives
    none). ``exploration`` is the share of latency-routed calls sent to a
    deployment other than the fastest, so one that recovered is noticed.
    ``max_p95_ms`` bounds, per model or alias asked for (``"*"`` for any),
    the recent p95 latency of the deployments the ``balanced`` strategy
    may pick; a rule's own ``max_p95_ms`` comes first.
    """

    strategy: str = "latency"
    aliases: dict[str, list[str]] = Field(default_factory=dict)
    rules: list[RoutingRule] = Field(default_factory=list)
    ab_tests: list[ABTestConfig] = Field(default_factory=list)
    exploration: float = Field(default=0.05, ge=0, le=1)
    window_s: float = Field(default=60.0, ge=5, le=3_600)
    circuit_failures: int = Field(default=5, ge=1)
    circuit_error_rate: float = Field(default=0.5, gt=0, le=1)
    circuit_min_calls: int = Field(default=10, ge=1)
    circuit_cooldown_s: float = Field(default=30.0, gt=0)
    rate_limit_cooldown_s: float = Field(default=5.0, ge=0, le=3_600)
    max_attempts: int = Field(default=3, ge=1, le=10)
    max_p95_ms: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> RoutingConfig:
        _known_strategy(self.strategy, "routing.strategy")
        for name, bound in self.max_p95_ms.items():
            if not bound > 0:
                raise ValueError(f"routing.max_p95_ms.{name}: {bound:g} is not a latency; give milliseconds above 0")
        for kind, names in (("rules", [r.name for r in self.rules]), ("A/B tests", [t.name for t in self.ab_tests])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"two routing {kind} are named {dupes[0]!r}; give each a unique name")
        enabled = [t for t in self.ab_tests if t.enabled]
        for i, a in enumerate(enabled):
            for b in enabled[i + 1 :]:
                if a.model == b.model:
                    raise ValueError(
                        f"A/B tests {a.name!r} and {b.name!r} both split model {a.model!r}; only the first would "
                        "ever apply, so disable one (enabled = false)"
                    )
        for alias, models in self.aliases.items():
            if not models:
                raise ValueError(f"alias {alias!r} names no model; list at least one, or remove it")
        return self
