"""What a dashboard screen needs, as plain dataclasses that round-trip JSON.

`Snapshot` is produced by `axtui.metrics.live.LiveMetrics.snapshot` and
sent by the server's metrics API and SSE stream; the dashboard rebuilds it
with `Snapshot.from_json`. Money is exact: ``Decimal`` in Python, a decimal
string in JSON, integer nano-dollars in per-second series.

JSON shape (schema 1)::

    {"schema": 1, "at": 1750000000.0, "source": "local", "window_s": 900,
     "recent_s": 60, "started": ..., "totals": STATS, "lifetime": STATS,
     "series": SERIES, "providers": [STATS...], "deployments": [...],
     "models": [...], "users": [...], "recent": [CALL...], "alerts": [ALERT...]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, TypeVar

from axtui.money import NANOS_PER_USD

__all__ = ["SCHEMA", "AlertSummary", "RecentCall", "Series", "Snapshot", "Stats"]

#: Bumped when the JSON shape changes incompatibly.
SCHEMA = 1

T = TypeVar("T")


@dataclass(slots=True)
class Stats:
    """Aggregates of the calls in a window, for one key (or everything).

    Latency quantiles cover served calls (status ok or error); refused and
    cancelled calls count in ``requests`` but have no latency. Rates are
    per second of the window actually covered (``seconds``).
    """

    key: str = ""
    seconds: float = 0.0
    requests: int = 0
    ok: int = 0
    errors: int = 0
    rate_limited: int = 0
    budget_refused: int = 0
    cancelled: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nanos: int = 0
    unknown_cost: int = 0
    rps: float = 0.0
    error_rate: float | None = None
    cache_hit_rate: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    cost_usd: Decimal = Decimal(0)
    cost_per_min_usd: Decimal = Decimal(0)
    tokens_per_min: float = 0.0
    last_seen: float | None = None

    @property
    def served(self) -> int:
        """Calls that reached a provider or the cache (ok plus errors)."""
        return self.ok + self.errors


@dataclass(slots=True)
class Series:
    """Per-second (``step_s``) points, oldest first, the last one still filling.

    Counts are per step; quantiles are None for a step without served calls.
    """

    start: int = 0
    step_s: int = 1
    requests: list[int] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    rate_limited: list[int] = field(default_factory=list)
    budget_refused: list[int] = field(default_factory=list)
    cache_hits: list[int] = field(default_factory=list)
    served: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    cost_nanos: list[int] = field(default_factory=list)
    p50_ms: list[float | None] = field(default_factory=list)
    p95_ms: list[float | None] = field(default_factory=list)
    p99_ms: list[float | None] = field(default_factory=list)
    ttft_ms: list[float | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.requests)

    def rps(self) -> list[float]:
        """Calls per second at each point."""
        return [r / self.step_s for r in self.requests]

    def error_rate(self) -> list[float | None]:
        """Errors / calls at each point (None without calls)."""
        return [e / r if r else None for e, r in zip(self.errors, self.requests, strict=True)]

    def cache_hit_rate(self) -> list[float | None]:
        """Cache hits / served calls at each point (None without served calls)."""
        return [h / s if s else None for h, s in zip(self.cache_hits, self.served, strict=True)]

    def cost_per_min_usd(self) -> list[float]:
        """Spend per minute at each point, as floats: for drawing only, never for sums."""
        k = 60 / self.step_s / NANOS_PER_USD
        return [c * k for c in self.cost_nanos]

    def tokens_per_min(self) -> list[float]:
        """Tokens per minute at each point."""
        k = 60 / self.step_s
        return [t * k for t in self.tokens]


@dataclass(slots=True)
class RecentCall:
    """One recent call, for the live log."""

    ts: float
    user: str
    requested_model: str
    status: str
    provider: str | None = None
    model: str | None = None
    deployment: str | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal | None = None
    cache: str = "miss"
    error_class: str | None = None
    request_id: str = ""


@dataclass(slots=True)
class AlertSummary:
    """An alert rule that is pending or firing, for the header and notifications."""

    rule_id: int
    name: str
    severity: str
    state: str
    since: float
    value: float | None = None
    rule: str = ""


@dataclass(slots=True)
class Snapshot:
    """Everything a live screen draws, computed in one cheap call.

    ``totals`` and the per-key rows cover the last ``recent_s`` seconds;
    ``lifetime`` everything since ``started``; ``series`` the last seconds
    asked for (up to ``window_s``). ``source`` is ``local`` (this process's
    bus) or ``store`` (the shared per-second rollups of every process).
    """

    at: float
    window_s: int
    recent_s: int
    started: float
    totals: Stats
    lifetime: Stats
    series: Series
    providers: list[Stats] = field(default_factory=list)
    deployments: list[Stats] = field(default_factory=list)
    models: list[Stats] = field(default_factory=list)
    users: list[Stats] = field(default_factory=list)
    recent: list[RecentCall] = field(default_factory=list)
    alerts: list[AlertSummary] = field(default_factory=list)
    source: str = "local"
    schema: int = SCHEMA

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (Decimals as exact strings)."""
        return _dump(self)  # type: ignore[no-any-return]

    def dumps(self) -> str:
        """The snapshot as JSON text."""
        return json.dumps(self.to_json(), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: dict[str, Any] | str | bytes) -> Snapshot:
        """Rebuild a snapshot from `to_json` output (or its text).

        Raises:
            ValueError: the data is not a snapshot of a known schema.
        """
        if isinstance(data, (str, bytes)):
            data = json.loads(data)
        if not isinstance(data, dict):
            raise ValueError("a metrics snapshot is a JSON object")
        schema = data.get("schema")
        if schema != SCHEMA:
            raise ValueError(f"metrics snapshot schema {schema!r} is not {SCHEMA}; upgrade ax on both ends")
        try:
            return Snapshot(
                at=float(data["at"]),
                window_s=int(data["window_s"]),
                recent_s=int(data["recent_s"]),
                started=float(data["started"]),
                totals=_load(Stats, data["totals"]),
                lifetime=_load(Stats, data["lifetime"]),
                series=_load(Series, data["series"]),
                providers=[_load(Stats, s) for s in data.get("providers", [])],
                deployments=[_load(Stats, s) for s in data.get("deployments", [])],
                models=[_load(Stats, s) for s in data.get("models", [])],
                users=[_load(Stats, s) for s in data.get("users", [])],
                recent=[_load(RecentCall, c) for c in data.get("recent", [])],
                alerts=[_load(AlertSummary, a) for a in data.get("alerts", [])],
                source=str(data.get("source", "local")),
            )
        except (KeyError, TypeError, ArithmeticError) as exc:
            raise ValueError(f"not a metrics snapshot: {exc!r}") from None


_DECIMAL_FIELDS = {"cost_usd", "cost_per_min_usd"}


_FIELDS: dict[type, tuple[str, ...]] = {}


def _dump(value: Any) -> Any:
    """Dataclasses to dicts, Decimals to exact strings; lists of numbers as they are."""
    cls = type(value)
    names = _FIELDS.get(cls)
    if names is None:
        if not hasattr(value, "__dataclass_fields__"):
            return value
        names = _FIELDS[cls] = tuple(f.name for f in fields(value))
    out = {}
    for name in names:
        v = getattr(value, name)
        if isinstance(v, Decimal):
            v = format(v, "f")
        elif isinstance(v, list):
            v = [_dump(x) for x in v] if v and hasattr(v[0], "__dataclass_fields__") else list(v)
        elif hasattr(v, "__dataclass_fields__"):
            v = _dump(v)
        out[name] = v
    return out


def _load(cls: type[T], data: dict[str, Any]) -> T:
    kwargs: dict[str, Any] = {}
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    for k, v in data.items():
        if k not in names:
            continue  # a newer peer's extra field
        if k in _DECIMAL_FIELDS and v is not None:
            v = Decimal(v)
        kwargs[k] = v
    return cls(**kwargs)
