"""The shape of a simulated fleet: profiles of providers and their models.

A `Profile` names a set of `ProviderProfile` objects; each serves some
`ModelProfile` objects and says how fast it answers (`Latency`), how often
it fails (`Faults`) and when it has a bad spell (`Degradation`). Models may
override their provider's latency and faults. Everything here is plain,
frozen data: tests build custom profiles in code and `dataclasses.replace`
derives variants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from axtui.types import Deployment

__all__ = [
    "Degradation",
    "Faults",
    "Latency",
    "ModelProfile",
    "Profile",
    "ProviderProfile",
]

PromptCaching = Literal["none", "automatic", "explicit"]
#: The API a simulated provider speaks, which bounds what a request to it in process may carry.
ProviderAPI = Literal["openai", "anthropic", "gemini"]


@dataclass(frozen=True, slots=True)
class Latency:
    """How long answers take.

    Time to first token is log-normal with the given median and 95th
    percentile; output then flows at ``tokens_per_s`` (``math.inf`` means
    instantly), so a longer answer takes longer.
    """

    ttft_p50_ms: float = 0.0
    ttft_p95_ms: float = 0.0
    tokens_per_s: float = math.inf

    @classmethod
    def instant(cls) -> Latency:
        """No latency at all: for tests and benchmarks."""
        return cls(0.0, 0.0, math.inf)

    def scaled(self, factor: float) -> Latency:
        """The same distribution, ``factor`` times slower."""
        return Latency(self.ttft_p50_ms * factor, self.ttft_p95_ms * factor, self.tokens_per_s / factor)


@dataclass(frozen=True, slots=True)
class Faults:
    """How often calls fail, each rate a probability per call.

    ``cut_rate`` only applies to streams (a stream closed halfway).
    ``retry_after_s`` is the typical wait a 429 asks for; ``hang_s`` bounds
    how long a timed-out call hangs before giving up.
    """

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    timeout_rate: float = 0.0
    malformed_rate: float = 0.0
    cut_rate: float = 0.0
    retry_after_s: float = 2.0
    hang_s: float = 30.0

    @classmethod
    def none(cls) -> Faults:
        """A provider that never fails."""
        return cls()

    @property
    def total_rate(self) -> float:
        """The chance that a streamed call fails one way or another."""
        return self.error_rate + self.rate_limit_rate + self.timeout_rate + self.malformed_rate + self.cut_rate


@dataclass(frozen=True, slots=True)
class Degradation:
    """A bad spell: a window during which a provider slows and/or fails.

    The window opens ``offset_s`` after the simulation started and lasts
    ``duration_s``; with ``period_s`` set it repeats every period (offset
    and duration are then within each period). During the window latency
    is ``slowdown`` times longer and calls fail (503, overloaded) with
    probability ``error_rate``. ``models`` limits it to some models; empty
    means all of the provider's models.
    """

    offset_s: float
    duration_s: float
    period_s: float | None = None
    slowdown: float = 1.0
    error_rate: float = 0.0
    models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.duration_s <= 0 or self.offset_s < 0:
            raise ValueError("a degradation needs offset_s >= 0 and duration_s > 0")
        if self.period_s is not None and self.offset_s + self.duration_s > self.period_s:
            raise ValueError("a repeating degradation must fit within its period (offset_s + duration_s <= period_s)")
        if self.slowdown < 1.0 or not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("slowdown must be >= 1 and error_rate within 0..1")

    def active(self, elapsed_s: float, model: str | None = None) -> bool:
        """Whether the window is open ``elapsed_s`` after the start (for ``model``)."""
        if model is not None and self.models and model not in self.models:
            return False
        if elapsed_s < 0:
            return False
        at = elapsed_s % self.period_s if self.period_s else elapsed_s
        return self.offset_s <= at < self.offset_s + self.duration_s


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """One model a provider serves: what it can do, and any overrides.

    ``json_mode`` says it answers ``response_format`` with JSON (a JSON
    schema, and ``json_object`` where its provider's API has that).
    ``embedding_dim`` set makes it an embedding model (no chat).
    ``reasoning`` models spend hidden thinking tokens before answering.
    ``latency`` and ``faults`` replace the provider's when set.
    """

    name: str
    context_window: int = 128_000
    max_output: int = 16_384
    tools: bool = True
    vision: bool = False
    json_mode: bool = True
    reasoning: bool = False
    embedding_dim: int | None = None
    latency: Latency | None = None
    faults: Faults | None = None

    @property
    def is_embedding(self) -> bool:
        """Whether this model makes embeddings rather than chat answers."""
        return self.embedding_dim is not None


@dataclass(frozen=True, slots=True)
class ProviderProfile:
    """One simulated provider: its models, speed, failures and bad spells.

    ``prompt_caching`` says how the provider reports cached prompt tokens:
    ``automatic`` reports cache reads (OpenAI, Gemini), ``explicit`` reads
    and writes (Anthropic), ``none`` neither. ``api`` is the API it plays
    in process: ``anthropic`` and ``gemini`` refuse what ax's adapters for
    them refuse (``n > 1``, ``logprobs``, ``top_logprobs``; Anthropic also
    ``json_object``), so the in-process fleet and the real one agree.
    """

    name: str
    models: tuple[ModelProfile, ...]
    region: str = ""
    latency: Latency = field(default_factory=Latency.instant)
    faults: Faults = field(default_factory=Faults.none)
    degradations: tuple[Degradation, ...] = ()
    prompt_caching: PromptCaching = "none"
    api: ProviderAPI = "openai"

    def model(self, name: str) -> ModelProfile | None:
        """The model called ``name``, or None when this provider lacks it."""
        for m in self.models:
            if m.name == name:
                return m
        return None

    @property
    def model_names(self) -> list[str]:
        """The names of every model served, in declaration order."""
        return [m.name for m in self.models]

    def latency_for(self, model: ModelProfile) -> Latency:
        """The model's own latency, else the provider's."""
        return model.latency or self.latency

    def faults_for(self, model: ModelProfile) -> Faults:
        """The model's own fault rates, else the provider's."""
        return model.faults or self.faults

    def degradation_at(self, elapsed_s: float, model: str | None = None) -> Degradation | None:
        """The bad spell in force ``elapsed_s`` after the start, if any."""
        for d in self.degradations:
            if d.active(elapsed_s, model):
                return d
        return None

    def deployments(self, *, embedding: bool = False) -> list[Deployment]:
        """One `Deployment` per chat model (or per embedding model), with its capabilities."""
        return [
            Deployment(
                provider=self.name,
                model=m.name,
                upstream_model=m.name,
                region=self.region,
                context_window=m.context_window,
                max_output=m.max_output,
                supports_tools=m.tools,
                supports_vision=m.vision,
                supports_json=m.json_mode,
            )
            for m in self.models
            if m.is_embedding == embedding
        ]


@dataclass(frozen=True, slots=True)
class Profile:
    """A named fleet of simulated providers."""

    name: str
    providers: tuple[ProviderProfile, ...]
    description: str = ""

    def __post_init__(self) -> None:
        names = [p.name for p in self.providers]
        if len(set(names)) != len(names):
            raise ValueError(f"profile {self.name!r} names a provider twice: {names}")

    def provider(self, name: str) -> ProviderProfile | None:
        """The provider called ``name``, or None."""
        for p in self.providers:
            if p.name == name:
                return p
        return None

    @property
    def provider_names(self) -> list[str]:
        """Every provider's name, in declaration order."""
        return [p.name for p in self.providers]

    @property
    def model_names(self) -> list[str]:
        """Every model any provider serves, each once, in declaration order."""
        return list(dict.fromkeys(m.name for p in self.providers for m in p.models))

    def serving(self, model: str) -> ProviderProfile | None:
        """The first provider that serves ``model``, or None."""
        for p in self.providers:
            if p.model(model) is not None:
                return p
        return None

    def provider_for(self, name: str, *, models: list[str] | None = None, region: str = "") -> ProviderProfile:
        """The provider a configured sim account plays.

        A name the profile knows plays that provider; any other name plays a
        provider serving every model of the profile through OpenAI's API,
        with the first provider's latency and faults. ``models`` (a config's list) restricts
        the models served; a name the profile lacks is served with default
        capabilities, so a config may simulate any model. ``region``
        replaces the profile's region when given.
        """
        base = self.provider(name)
        if base is None:
            first = self.providers[0] if self.providers else ProviderProfile(name=name, models=())
            catalogue = {m.name: m for p in reversed(self.providers) for m in p.models}
            base = replace(first, name=name, models=tuple(catalogue[n] for n in self.model_names), degradations=(),
                           api="openai")
        if models:
            known = {m.name: m for m in base.models}
            base = replace(base, models=tuple(known.get(n) or ModelProfile(name=n) for n in models))
        if region:
            base = replace(base, region=region)
        return base

    def deployments(self) -> list[Deployment]:
        """Every chat deployment of every provider, in declaration order."""
        return [d for p in self.providers for d in p.deployments()]
