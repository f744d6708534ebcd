"""The subsystems' sections: recorder, cache, rate limits, budgets, webhooks, alerts, metrics, server, telemetry, UI."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from axtui.config._base import _check_glob, _Section

__all__ = [
    "AlertsConfig",
    "BudgetsConfig",
    "CacheConfig",
    "CachePolicy",
    "MetricsConfig",
    "RateLimitConfig",
    "RecorderConfig",
    "ServerConfig",
    "TelemetryConfig",
    "UIConfig",
    "WebhooksConfig",
]


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

    @field_validator("stream_keepalive_s")
    @classmethod
    def _keepalive_pace(cls, value: float) -> float:
        if 0 < value < 0.1:
            raise ValueError(f"stream_keepalive_s = {value} would send a keep-alive {1 / value:,.0f} times a second; "
                             "give 0 (never) or at least 0.1 seconds (10, the default, suits proxies that drop a "
                             "connection idle for 60 s)")
        return value

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
