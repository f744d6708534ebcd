"""Settings: one TOML file, validated by pydantic, written back keeping the user's text.

`load_settings` reads the file (``AX_CONFIG`` or the config dir's
``config.toml``); a missing file means the defaults, which serve the
built-in demo fleet. A broken file raises `ConfigError` naming the file,
line, key and the fix. `save_settings` writes the settings back (the
dashboard and the API edit routing this way, the CLI budgets and limits)
atomically: a new file is written with tomli-w, readable by its owner
only; an existing one is edited with tomlkit, touching only the settings
that changed, so its comments, order and file mode stay as they were.

Each subsystem owns one section class here; the sections only hold plain
data and validation, never behaviour.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from axtui import locations
from axtui.errors import ConfigError

__all__ = [
    "ROUTING_STRATEGIES",
    "ABTestConfig",
    "ABVariant",
    "AlertsConfig",
    "BudgetsConfig",
    "CacheConfig",
    "CachePolicy",
    "DeploymentConfig",
    "MetricsConfig",
    "PriceOverride",
    "ProviderConfig",
    "RateLimitConfig",
    "RecorderConfig",
    "RoutingConfig",
    "RoutingRule",
    "ServerConfig",
    "Settings",
    "TelemetryConfig",
    "UIConfig",
    "WebhooksConfig",
    "load_settings",
    "parse_settings",
    "save_settings",
    "write_config_text",
]


class _Section(BaseModel):
    # No setting is infinite or not a number: a timeout of inf would wait forever, a price of nan poisons sums.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class _At(ValueError):
    """A validation failure about one setting inside the value being validated.

    ``loc`` is the setting's path from that value (``("models", "gpt[")``
    under ``[cache]``); `parse_settings` adds it to pydantic's location, so
    the error names the setting's own line and key rather than its table's.
    """

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.loc = loc


#: Characters no host name holds (the WHATWG URL standard's forbidden domain code points, less the controls).
_NOT_IN_HOST = frozenset(" #%/:<>?@[\\]^|")


def _control(text: str, *, tab: bool = False) -> str | None:
    """The first control character in ``text`` (a tab allowed when ``tab``), or None."""
    return next((c for c in text if (ord(c) < 32 and not (tab and c == "\t")) or 127 <= ord(c) < 160), None)


def _url_problem(value: str) -> str | None:
    """Why ``value`` is not an http(s) URL a request can be sent to (``is not …``, ``has …``), or None."""
    bad = _control(value)
    if bad is not None:
        return f"holds the control character {bad!r}"
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return "is not an http:// or https:// URL"
    hostport = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    if hostport.startswith("["):
        end = hostport.find("]")
        if end == -1:
            return "opens the [ of an IPv6 address and never closes it"
        host, after = hostport[1:end], hostport[end + 1 :]
        try:
            ipaddress.IPv6Address(host.replace("%25", "%", 1))
        except ValueError:
            return f"has [{host}] where an IPv6 address goes, and that is not one"
        if after and not after.startswith(":"):
            return f"has {after!r} after its IPv6 address, where only :PORT may follow"
        port = after[1:]
    else:
        host, _, port = hostport.partition(":")
        if ":" in port:
            return "has an IPv6 address outside brackets (they go in brackets: http://[::1]:8080/v1)"
        if not host:
            return "names no host"
        bad = next((c for c in host if c in _NOT_IN_HOST or c.isspace()), None)
        if bad is not None:
            return f"has the host {host!r}, and no host name holds {bad!r}"
    if port and not (re.fullmatch(r"[0-9]+", port) and 1 <= int(port) <= 65535):
        return f"has the port {port!r}, which is not a number from 1 to 65535"
    return None


def _shown_url(value: str) -> str:
    """``value`` as an error may print it: a user and password in it are never printed back."""
    scheme, sep, rest = value.partition("://")
    userinfo, at, _ = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")
    return f"{scheme}://***@{rest[len(userinfo) + 1 :]}" if sep and at else value


#: A header name: an HTTP token (RFC 9110, 5.1).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class PriceOverride(_Section):
    """Per-million-token prices in dollars that replace the price sheet's.

    Keyed in ``[prices]`` by a deployment id (``"local/llama3.1:8b"``) or a
    model name (``"gpt-4o"``). Unset cache and reasoning prices fall back
    to the input (cache reads and writes) or output (reasoning) price; a
    self-hosted model is ``{ input = 0, output = 0 }``.
    """

    input: Decimal = Field(default=Decimal(0), ge=0)
    output: Decimal = Field(default=Decimal(0), ge=0)
    cached_input: Decimal | None = Field(default=None, ge=0)
    cache_write: Decimal | None = Field(default=None, ge=0)
    cache_write_1h: Decimal | None = Field(default=None, ge=0)
    reasoning: Decimal | None = Field(default=None, ge=0)


class ProviderConfig(_Section):
    """One upstream provider account.

    ``kind`` names a registered provider kind (``openai``, ``anthropic``,
    ``gemini``, ``azure``, ``bedrock``, ``vertex``, ``sim``, or a plugin's). The key is read from the
    environment variable named by ``api_key_env`` at call time; it is never
    stored.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str = "openai"
    base_url: str | None = None
    api_key_env: str | None = None
    models: list[str] = Field(default_factory=list)
    region: str = ""
    #: Azure OpenAI: the ``api-version`` query parameter.
    api_version: str | None = None
    #: Azure OpenAI: model name -> the Azure deployment that serves it.
    deployments: dict[str, str] = Field(default_factory=dict)
    #: Bedrock and Vertex AI: an endpoint that replaces the regional one.
    endpoint_url: str | None = None
    #: Vertex AI: the Google Cloud project and location (region).
    project: str | None = None
    location: str | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    headers: dict[str, str] = Field(default_factory=dict)
    profile: str | None = None
    enabled: bool = True
    #: OpenAI and Azure: how ``/v1/responses`` reaches this provider: ``native``
    #: (its own ``POST /responses``) or ``translate`` (as chat completions).
    #: Unset: native for api.openai.com, translate elsewhere (many servers lack it).
    responses: str | None = None

    @field_validator("responses")
    @classmethod
    def _responses_mode(cls, value: str | None) -> str | None:
        if value is not None and value not in ("native", "translate"):
            raise ValueError(
                f"responses must be \"native\" (the server has POST /responses) or \"translate\" (serve the "
                f"Responses API as chat completions), not {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _responses_kind(self) -> ProviderConfig:
        if self.responses == "native" and self.kind not in ("openai", "azure"):
            raise ValueError(
                f"provider {self.name!r}: responses = \"native\" is for kinds \"openai\" and \"azure\" (a "
                f"server with POST /responses); a provider of kind {self.kind!r} serves the Responses API "
                f"translated, so leave responses out"
            )
        return self

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        problem = None if value is None else _url_problem(value)
        if problem is not None:
            raise ValueError(
                f"base_url {_shown_url(str(value))!r} {problem}; write it like "
                "https://api.openai.com/v1 or http://127.0.0.1:11434/v1 (http:// or https://, a host name or "
                "address, an IPv6 address in brackets as in http://[::1]:8080/v1, an optional :PORT from 1 to "
                "65535, then the path)"
            )
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        problem = None if value is None else _url_problem(value)
        if problem is not None:
            raise ValueError(
                f"endpoint_url {_shown_url(str(value))!r} {problem}; write it like "
                "https://bedrock-runtime.us-east-1.amazonaws.com (http:// or https://, a host, an optional :PORT "
                "from 1 to 65535), or leave it out for the region's own endpoint"
            )
        return value

    @field_validator("headers")
    @classmethod
    def _header_lines(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise _At(
                    f"{name!r} is not a header name; a name is letters, digits and - (like "
                    "X-Request-Source), without spaces, colons or control characters",
                    name,
                )
            # The value is never echoed: it may be a credential.
            bad = _control(text, tab=True)
            if bad is not None:
                raise _At(
                    f"the value of header {name!r} holds the control character {bad!r}; a header value is one "
                    "line of text (a newline would end the header and start another), so remove it",
                    name,
                )
        return value

    @field_validator("api_key_env")
    @classmethod
    def _variable_name(cls, value: str | None) -> str | None:
        # The value is never echoed: a key pasted here by mistake must not
        # be printed back.
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(
                "api_key_env names the environment variable that holds the key (like OPENAI_API_KEY), not the "
                "key itself; put the key in that variable (export OPENAI_API_KEY=...) and write its name here"
            )
        return value


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DeploymentConfig(_Section):
    """One way to serve a logical model, beyond a provider's ``models`` list."""

    model: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    upstream_model: str | None = None
    region: str | None = None
    weight: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    context_window: int | None = Field(default=None, gt=0)
    max_output: int | None = Field(default=None, gt=0)
    tools: bool | None = None
    vision: bool | None = None
    json_mode: bool | None = None
    price: PriceOverride | None = None

    @field_validator("weight", mode="before")
    @classmethod
    def _finite_weight(cls, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(
                f"weight {value} is not a weight; give a finite number, 0 or more: the deployment's share of "
                "the weighted strategy's draws (1 when left out; 0 makes it the last choice)"
            )
        return value


class RecorderConfig(_Section):
    """How call records are written.

    At most ``max_pending`` records wait in memory; past that, a new call
    waits up to ``full_wait_s`` for room and is then refused with a 503
    rather than served unrecorded. Once no record could be written for
    ``full_wait_s`` (a read-only, full or locked database), new calls are
    refused with a 503 until one is.
    """

    flush_interval_ms: int = Field(default=250, ge=10, le=60_000)
    batch_size: int = Field(default=2_000, ge=1, le=100_000)
    max_pending: int = Field(default=100_000, ge=1, le=10_000_000)
    full_wait_s: float = Field(default=5.0, ge=0, le=300)
    log_prompts: bool = False


class CachePolicy(_Section):
    """Cache settings for one model, alias or glob pattern of them (unset fields inherit ``[cache]``)."""

    enabled: bool | None = None
    ttl_s: int | None = Field(default=None, ge=0)
    scope: Literal["user", "key", "global"] | None = None
    semantic: bool | None = None
    threshold: float | None = Field(default=None, gt=0, le=1)
    max_temperature: float | None = Field(default=None, ge=0, le=2)


class CacheConfig(_Section):
    """The response cache (exact, then semantic).

    ``ttl_s`` 0 keeps entries until evicted. ``scope`` decides who shares
    answers: each user (default), each gateway key, or everyone.
    ``threshold`` is the least cosine similarity, turn by turn, of a
    semantic hit. ``embedder`` is ``builtin`` (offline, near-duplicates) or
    ``provider``: the embedding model ``embedder_model`` (optionally on
    ``embedder_provider``) called through the gateway. ``models`` maps a
    model, alias or glob pattern to a `CachePolicy`.
    """

    enabled: bool = True
    ttl_s: int = Field(default=3600, ge=0)
    scope: Literal["user", "key", "global"] = "user"
    semantic: bool = True
    threshold: float = Field(default=0.9, gt=0, le=1)
    embedder: Literal["builtin", "provider"] = "builtin"
    embedder_provider: str | None = None
    embedder_model: str | None = None
    max_temperature: float | None = Field(default=None, ge=0, le=2)
    semantic_max_turns: int = Field(default=16, ge=1, le=256)
    memory_entries: int = Field(default=10_000, ge=0)
    memory_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    store_bytes: int = Field(default=512 * 1024 * 1024, ge=0)
    #: The most entries this process's semantic index holds (0: no bound); the least recently
    #: used leave the index and the memory tier together (~1.5 kB each at 256 dimensions).
    index_entries: int = Field(default=100_000, ge=0)
    #: With the built-in embedder: the index, the guards and the embedding live in a process of
    #: their own beside each gateway process (`axtui.cache.worker`), so they never hold the event loop.
    semantic_process: bool = True
    #: Writes waiting for the store; when full, a new write is dropped and counted
    #: (``dropped_writes``): a cache may lose a write, it never holds up a call.
    write_queue: int = Field(default=10_000, ge=1)
    models: dict[str, CachePolicy] = Field(default_factory=dict)

    @field_validator("models")
    @classmethod
    def _closed_globs(cls, value: dict[str, CachePolicy]) -> dict[str, CachePolicy]:
        for pattern in value:
            _check_glob(pattern, "", pattern)
        return value

    @model_validator(mode="after")
    def _provider_embedder_named(self) -> CacheConfig:
        if self.embedder == "provider" and not self.embedder_model:
            raise ValueError(
                'embedder = "provider" needs embedder_model, the embedding model to call '
                '(for example embedder_model = "text-embedding-3-small")'
            )
        return self


#: The routing strategies a rule, the config or a call may name.
ROUTING_STRATEGIES: tuple[str, ...] = (
    "latency", "cost", "balanced", "capability", "weighted", "least-busy", "round-robin"
)


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


def _check_glob(pattern: str, where: str, *loc: str | int) -> None:
    """Refuse a glob whose ``[`` is never closed: it would match only itself, letter for letter.

    The sets are read as `fnmatch` reads them (a ``]`` just after ``[`` or
    ``[!`` is a member, not the end), so what passes here is what fnmatch
    sees as a set. ``where`` starts the message (when the error's key does
    not say it all); ``loc`` is the setting's path, for the error's line.
    """
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] != "[":
            i += 1
            continue
        j = i + 1
        if j < n and pattern[j] == "!":
            j += 1
        if j < n and pattern[j] == "]":
            j += 1
        while j < n and pattern[j] != "]":
            j += 1
        if j >= n:
            lead = f"{where}: " if where else ""
            raise _At(
                f"{lead}the glob {pattern!r} opens a [ set that never closes; close it (eu-[abc]*) or, to match a "
                "literal bracket, write [[]",
                *loc,
            )
        i = j + 1


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


class RateLimitConfig(_Section):
    """Rate limits: where their state lives and the defaults per scope.

    A limit is written ``60/minute``, ``1000/hour``, ``100000/day`` (the
    `limits` library's notation). ``user_*`` and ``key_*`` apply to each
    user and each API key separately; per-subject limits set with
    ``ax ratelimit set`` (kept in the store) replace them. ``backend`` is
    where the counters live: ``store`` (the database, so every local ax
    process shares them), ``memory`` (one process, fastest) or ``redis``
    (several replicas; ``AX_REDIS_URL`` or ``redis_url``). Left unset, it
    is ``redis`` when a Redis URL is given and ``store`` otherwise.
    """

    backend: Literal["store", "memory", "redis"] | None = None
    redis_url: str | None = None
    algorithm: Literal["token-bucket", "sliding-window"] = "token-bucket"
    global_requests: str | None = None
    global_tokens: str | None = None
    user_requests: str | None = None
    user_tokens: str | None = None
    key_requests: str | None = None
    key_tokens: str | None = None
    provider_requests: dict[str, str] = Field(default_factory=dict)
    provider_tokens: dict[str, str] = Field(default_factory=dict)
    #: How often a running engine looks for per-subject limits changed by another process.
    poll_s: float = Field(default=1.0, gt=0, le=300)

    @field_validator("global_requests", "global_tokens", "user_requests", "user_tokens", "key_requests", "key_tokens")
    @classmethod
    def _valid_limit(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from axtui.ratelimit.parse import parse_rate

        return parse_rate(value).text

    @field_validator("provider_requests", "provider_tokens")
    @classmethod
    def _valid_provider_limits(cls, value: dict[str, str]) -> dict[str, str]:
        from axtui.ratelimit.parse import parse_rate

        out = {}
        for name, limit in value.items():
            try:
                out[name] = parse_rate(limit).text
            except ValueError as exc:
                raise ValueError(f"provider {name!r}: {exc}") from None
        return out


class BudgetsConfig(_Section):
    """Budget periods and alert defaults (the budgets live in the store).

    ``timezone`` sets where days, weeks (from Monday) and months begin.
    ``thresholds`` are the default alert points in percent of a budget;
    ``webhook`` receives each alert as a JSON POST. ``typical_output_tokens``
    is the output a call is assumed to produce when it sets no max_tokens.
    """

    timezone: str = "UTC"
    thresholds: list[int] = Field(default_factory=lambda: [50, 80, 100])
    webhook: str | None = None
    typical_output_tokens: int = Field(default=512, ge=1)
    webhook_attempts: int = Field(default=3, ge=1, le=10)
    refresh_s: float = Field(default=2.0, gt=0)
    #: How long budget room held by a process that stopped renewing it (it died) stays held.
    lease_s: float = Field(default=10.0, ge=1.0, le=3600.0)

    @field_validator("thresholds")
    @classmethod
    def _sane_thresholds(cls, value: list[int]) -> list[int]:
        if not value or any(t <= 0 or t > 1000 for t in value):
            raise ValueError("thresholds are percentages above 0 and at most 1000, like [50, 80, 100]")
        return sorted(set(value))

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"webhook {value!r} must be an http:// or https:// URL")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use a name like 'UTC' or 'Europe/Paris'") from None
        return value


class WebhooksConfig(_Section):
    """Where webhooks (budget alerts and alert rules alike) may point.

    Link-local and cloud metadata addresses are refused always. Loopback
    (a receiver on this machine) and private ranges (the LAN, the VPC) are
    refused unless allowed here: whoever may add an alert rule chooses its
    URL, and must not reach the operator's internal services through it.
    """

    allow_loopback: bool = False
    allow_private: bool = False


class AlertsConfig(_Section):
    """Alert rule evaluation and delivery (the rules live in the store).

    A rule is checked every ``interval_s`` on the last ``window_s`` seconds
    of live metrics. A firing rule resolves only once its value has been
    past the threshold by ``hysteresis`` (a fraction of the threshold) for
    ``resolve_after_s``; after resolving it cannot notify again for
    ``cooldown_s``. ``webhook`` receives every rule's events unless the rule
    names its own; a delivery is tried ``webhook_attempts`` times.
    """

    interval_s: float = Field(default=5.0, gt=0)
    window_s: int = Field(default=60, ge=5, le=900)
    cooldown_s: float = Field(default=300.0, ge=0)
    hysteresis: float = Field(default=0.1, ge=0, lt=1)
    resolve_after_s: float = Field(default=30.0, ge=0)
    webhook: str | None = Field(default=None, pattern=r"^https?://")
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_attempts: int = Field(default=4, ge=1, le=20)
    spend_refresh_s: float = Field(default=30.0, gt=0)


class MetricsConfig(_Section):
    """Live windows, per-second rollups and rollup retention.

    Live windows keep ``window_s`` seconds of per-second buckets (users in
    ``user_slot_s`` buckets, at most ``max_users`` of them, the idlest
    forgotten first); table rows and totals cover the last ``recent_s``.
    Per-second rollups in the store (for dashboards over several processes)
    are kept ``second_retention_s``, pruned every ``prune_interval_s``; the
    per-minute and per-hour rollups ``minute_retention_days`` and
    ``hour_retention_days``.
    """

    window_s: int = Field(default=900, ge=60, le=86_400)
    recent_s: int = Field(default=60, ge=5, le=3_600)
    recent_calls: int = Field(default=200, ge=0, le=100_000)
    user_slot_s: int = Field(default=10, ge=1, le=600)
    max_users: int = Field(default=500, ge=1)
    store_seconds: bool = True
    second_retention_s: int = Field(default=3_600, ge=60)
    minute_retention_days: int = Field(default=7, ge=1)
    hour_retention_days: int = Field(default=365, ge=1)
    prune_interval_s: float = Field(default=600.0, gt=0)

    @model_validator(mode="after")
    def _recent_within_window(self) -> MetricsConfig:
        if self.recent_s > self.window_s:
            raise ValueError(f"recent_s ({self.recent_s}) cannot exceed window_s ({self.window_s})")
        return self


class ServerConfig(_Section):
    """`ax serve`: where it listens and how it guards itself.

    ``admin_key_env`` names the environment variable holding the admin key
    that guards writes under ``/api/*``; the key itself is never stored.
    ``key_cache_s`` is how long a verified gateway key is trusted without
    asking the store again, so a key revoked on another machine stops
    working within that many seconds (on this one, at once: see
    `axtui.store.markers`). ``drain_timeout_s`` bounds how long
    a graceful stop waits for calls in flight. ``allowed_hosts`` are more
    names requests may give as their Host (besides the address listened on
    and loopback names): exact names, ``*.example.com``, or ``*`` for any.
    ``max_streams_per_key`` caps the metrics streams one key holds at once.
    ``user_map`` makes an end user of a trusted key a real user: keys are
    the namespaced names (``acme/alice``), values the users they are.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)  # as Anthropic takes: screenshots in base64
    admin_key_env: str = Field(default="AX_ADMIN_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    key_cache_s: float = Field(default=2.0, ge=0, le=300)
    drain_timeout_s: float = Field(default=30.0, ge=0, le=3600)
    access_log: bool = False
    allowed_hosts: list[str] = Field(default_factory=list)
    max_streams_per_key: int = Field(default=4, ge=1, le=1000)
    # A stream with no first chunk after this long is sent (200, headers) and kept alive with an SSE comment
    # every as long until it comes, so proxies do not drop it; 0: never (see axtui.server.keepalive).
    stream_keepalive_s: float = Field(default=10.0, ge=0, le=3600)
    user_map: dict[str, str] = Field(default_factory=dict)

    @field_validator("user_map")
    @classmethod
    def _namespaced(cls, value: dict[str, str]) -> dict[str, str]:
        for named, user in value.items():
            if "/" not in named.strip("/"):
                raise ValueError(f"user_map key {named!r} is not a trusted key's end user; write it as "
                                 "\"KEYUSER/ENDUSER\" (e.g. \"acme/alice\")")
            if not user or any(c.isspace() or c == "," for c in user):
                raise ValueError(f"user_map[{named!r}] = {user!r} is not a user name (no spaces or commas)")
        return value


class TelemetryConfig(_Section):
    """OpenTelemetry traces of every call (off unless an endpoint is set).

    ``otlp_endpoint`` is the collector's OTLP/HTTP base URL (spans go to
    ``<endpoint>/v1/traces``); unset, the standard
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``
    variables are used, and with neither, nothing is traced.
    ``service_name`` falls back to ``OTEL_SERVICE_NAME``, then ``ax``.
    ``capture_content`` adds prompts and answers (scrubbed of secrets) to
    the spans. At most ``max_queue`` calls' traces wait for export; past that they
    are dropped and counted, so a dead collector never slows a call.
    ``export_metrics`` also pushes the figures of ``GET /metrics`` to the
    same collector every ``metrics_interval_s``.
    """

    otlp_endpoint: str | None = Field(default=None, pattern=r"^https?://")
    service_name: str | None = Field(default=None, min_length=1)
    capture_content: bool = False
    max_queue: int = Field(default=8192, ge=16, le=1_000_000)
    export_timeout_s: float = Field(default=5.0, gt=0, le=60)
    export_metrics: bool = False
    metrics_interval_s: float = Field(default=15.0, ge=1, le=3600)


class UIConfig(_Section):
    """The dashboard."""

    theme: str = "dark"
    refresh_hz: float = Field(default=2.0, gt=0, le=20)


class Settings(_Section):
    """Everything configurable. An empty file serves the demo fleet."""

    providers: list[ProviderConfig] = Field(default_factory=list)
    deployments: list[DeploymentConfig] = Field(default_factory=list)
    recorder: RecorderConfig = Field(default_factory=RecorderConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    ratelimit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    budgets: BudgetsConfig = Field(default_factory=BudgetsConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    ui: UIConfig = Field(default_factory=UIConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    prices: dict[str, PriceOverride] = Field(default_factory=dict)

    @property
    def uses_demo_fleet(self) -> bool:
        """True when no provider is configured: the built-in fleet serves."""
        return not any(p.enabled for p in self.providers)

    @model_validator(mode="after")
    def _names_unique(self) -> Settings:
        seen: set[str] = set()
        for p in self.providers:
            if p.name in seen:
                raise ValueError(f"two providers are named {p.name!r}; give each a unique name")
            seen.add(p.name)
        for d in self.deployments:
            if self.providers and d.provider not in seen:
                raise ValueError(
                    f"deployment of {d.model!r} names provider {d.provider!r}, which is not configured; "
                    f"configured: {', '.join(sorted(seen))}"
                )
        self._one_model_per_deployment()
        return self

    def _one_model_per_deployment(self) -> None:
        """Refuse two model names for one provider/upstream_model: the catalog would serve only the first.

        A deployment is identified by ``provider/upstream_model`` (health,
        weights, prices and records are kept by it), so one upstream model
        of one provider is one deployment, of one model. An entry with the
        same model as a provider's ``models`` list or an earlier entry
        refines that deployment, as before.
        """
        first: dict[str, tuple[str, str]] = {}  # deployment id -> (what declared it first, its model)
        for p in self.providers:
            for m in p.models:
                first.setdefault(f"{p.name}/{m}", (f"the models list of provider {p.name!r}", m))
        for i, d in enumerate(self.deployments):
            upstream = d.upstream_model or d.model
            dep_id = f"{d.provider}/{upstream}"
            before, model = first.setdefault(dep_id, (f"[[deployments]] number {i + 1}", d.model))
            if model == d.model:
                continue
            served_elsewhere = any(m == d.model for p in self.providers for m in p.models) or any(
                e.model == d.model and f"{e.provider}/{e.upstream_model or e.model}" != dep_id
                for e in self.deployments
            )
            fix = (
                f"remove this entry ({d.model!r} keeps its other deployments), or point it at another provider "
                "or upstream model"
                if served_elsewhere
                else f"to call it by both names, remove this entry and add an alias: [routing.aliases] "
                f"{_toml_key(d.model)} = [{_toml_string(model)}]"
            )
            raise _At(
                f"[[deployments]] number {i + 1} serves model {d.model!r} from upstream model {upstream!r} of "
                f"provider {d.provider!r}, which {before} already serves as model {model!r}; a deployment is "
                f"identified by provider/upstream_model ({dep_id!r}), so only {model!r} would be served by it and "
                f"this entry would be dropped: {fix}",
                "deployments",
                i,
            )


def _toml_key(name: str) -> str:
    """``name`` as a TOML key: bare when it can be, quoted otherwise."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml_string(name)


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string."""
    return tomli_w.dumps({"x": text}).partition("=")[2].strip()


def parse_settings(text: str, path: Path | str = "<config>") -> Settings:
    """Parse and validate TOML text; errors name the line, key and fix."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}. Fix the syntax there, or move the file away "
                          f"and run `ax config init`.") from None
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, text, path)) from None


def load_settings(path: Path | None = None) -> Settings:
    """Read the config file; defaults when it does not exist."""
    path = path or locations.config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}); check its permissions and encoding (UTF-8)") from None
    return parse_settings(text, path)


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write settings as TOML, atomically (a temp file renamed over the old); returns the file written.

    An existing file keeps its comments, its order, the spelling of every
    setting that did not change, and its mode; a symlink stays a symlink
    (its target is rewritten). A new file is created readable by its owner only.
    """
    path = path or locations.config_path()
    minimal = settings.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    try:
        before: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        before = None
    text = tomli_w.dumps(minimal)
    if before is not None:
        import tomlkit

        try:
            doc = tomlkit.parse(before)
            old = Settings.model_validate(tomllib.loads(before)).model_dump(mode="json", exclude_none=True)
        except (tomllib.TOMLDecodeError, ValidationError, tomlkit.exceptions.TOMLKitError):
            doc = None  # the file is broken: it is replaced whole, as before
        if doc is not None:
            _sync(doc, old, settings.model_dump(mode="json", exclude_none=True), minimal)
            text = tomlkit.dumps(doc)
    write_config_text(path, text)
    return path


def write_config_text(path: Path, text: str) -> None:
    """Write a whole config file atomically: a new one readable by its owner only, an existing one keeping its
    mode, a symlink staying one (`axtui.locations.replace_private`)."""
    with locations.replace_private(path) as out:
        out.write(text)


def _sync(doc: Any, old: dict[str, Any], new: dict[str, Any], minimal: dict[str, Any]) -> None:
    """Edit the TOML container ``doc`` from ``old`` settings to ``new`` ones, touching only what changed.

    ``old`` and ``new`` are full dumps (defaults included); ``minimal`` is
    ``new`` without defaults (what a new key or table is written as).
    """
    for key in [*old, *(k for k in new if k not in old)]:
        o, n, m = old.get(key), new.get(key), minimal.get(key)
        if o == n:
            continue
        if key not in doc:
            if m is not None and m != {} and m != []:
                doc[key] = m
            continue
        here = doc[key]
        if n is None:
            del doc[key]
        elif isinstance(o, dict) and isinstance(n, dict) and isinstance(here, dict):
            _sync(here, o, n, m if isinstance(m, dict) else {})
        elif (isinstance(o, list) and isinstance(n, list) and isinstance(here, list) and len(here) == len(o)
              and all(isinstance(x, dict) for x in (*o, *n, *here))):  # fmt: skip
            mins = m if isinstance(m, list) and len(m) == len(n) else n
            for i in range(min(len(o), len(n))):
                _sync(here[i], o[i], n[i], mins[i])
            for _ in range(len(o) - len(n)):
                here.pop()
            for extra in mins[len(o):]:
                here.append(extra)
        else:
            doc[key] = n


def where_in_file(loc: tuple[Any, ...], path: Path | None = None) -> str:
    """``PATH, line N`` of the setting at ``loc`` in the config file (just ``PATH`` when not found)."""
    path = path or locations.config_path()
    try:
        line = _locate(path.read_text(encoding="utf-8"), loc)
    except (OSError, UnicodeDecodeError):
        line = None
    return f"{path}, line {line}" if line else str(path)


def _explain(exc: ValidationError, text: str, path: Path | str) -> str:
    from axtui.validation import field_problems

    lines = []
    for problem in field_problems(exc):
        loc = problem.loc
        error = problem.ctx.get("error")
        if isinstance(error, _At):
            loc = (*loc, *error.loc)
        line = _locate(text, loc)
        where = f"{path}, line {line}" if line else str(path)
        msg = problem.message
        if problem.type == "extra_forbidden":
            msg = f"unknown setting {str(problem.loc[-1])!r}; check its spelling (see `ax config init` for every setting)"
        key = ".".join(str(part) for part in loc) if loc else "(top level)"
        lines.append(f"{where}: {key}: {msg}")
    return "invalid config:\n  " + "\n  ".join(lines) + "\nFix the value there and run the command again."


_TOML_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_TOML_DOTTED = rf"{_TOML_KEY_PART}(?:\s*\.\s*{_TOML_KEY_PART})*"
_TOML_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_TOML_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_TOML_ASSIGN = re.compile(rf"^\s*({_TOML_DOTTED})\s*=")


def _key_parts(dotted: str) -> list[str]:
    return [part.strip("\"'") for part in re.findall(_TOML_KEY_PART, dotted)]


def _locate(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line of the setting at ``loc`` (a pydantic error location), or of the nearest table holding it.

    Every table header and ``key =`` line is read as the full path it
    defines (``[[providers]]`` entries counted, so the second provider's
    ``kind`` is ``providers.1.kind``); the line whose path is the longest
    prefix of ``loc`` wins, so a key of the same name in another table
    never matches. It is a pointer for people, never used to read values.
    """
    want = list(loc)
    arrays: dict[tuple[str, ...], int] = {}  # the current entry of each array of tables

    def indexed(names: list[str]) -> list[str | int]:
        path: list[str | int] = []
        for k, name in enumerate(names):
            path.append(name)
            key = tuple(names[: k + 1])
            if key in arrays and k < len(names) - 1:
                path.append(arrays[key])
        return path

    table: list[str | int] = []
    best_len, best_line = 0, None
    for number, line in enumerate(text.splitlines(), 1):
        header = _TOML_HEADER.match(line)
        if header:
            names = _key_parts(header.group(2))
            if header.group(1) == "[[":
                arrays[tuple(names)] = arrays.get(tuple(names), -1) + 1
                # A new entry starts the arrays nested in it afresh.
                for key in [k for k in arrays if len(k) > len(names) and k[: len(names)] == tuple(names)]:
                    del arrays[key]
                table = [*indexed(names), arrays[tuple(names)]]
            else:
                table = indexed(names)
            path = table
        else:
            assign = _TOML_ASSIGN.match(line)
            if not assign:
                continue
            path = [*table, *_key_parts(assign.group(1))]
        if len(path) > best_len and want[: len(path)] == path:
            best_len, best_line = len(path), number
    return best_line
