"""History: traffic, spend and latency over time, from the per-minute and per-hour rollups.

Reads the rollup tables the cost subsystem maintains as calls are recorded
(``cost_rollup_minute``, ``_hour``, ``_day``; see `axtui.store.tables_cost`)
— never the call log — so a query over ten million calls reads a few
thousand rows. The server's ``GET /api/metrics/history`` and the
dashboard's history charts use `history`.

Retention (``metrics.minute_retention_days``, ``metrics.hour_retention_days``)
is applied by the rollup hook as calls are recorded, and by `prune`; day
rows are kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from axtui.config import MetricsConfig
from axtui.cost.rollups import Totals
from axtui.errors import InvalidRequest
from axtui.metrics.shared import prune_seconds
from axtui.money import nanos_to_usd
from axtui.store import Store
from axtui.store.tables_cost import MEASURE_COLUMNS, ROLLUP_TABLES

__all__ = ["BY", "STEPS", "History", "HistoryPoint", "auto_step", "history", "prune"]

Step = Literal["minute", "hour", "day"]
#: Grains a history can be read at.
STEPS: tuple[Step, ...] = ("minute", "hour", "day")
#: What a history can be broken down by (None: no breakdown).
BY: tuple[str, ...] = ("provider", "model", "user", "key", "tag")
_DIM = {"model": "model", "user": "user", "key": "key", "tag": "tags"}
OTHER = "(other)"


@dataclass(slots=True)
class HistoryPoint:
    """What the calls of one bucket (and one key) came to."""

    start: float
    key: str
    calls: int
    errors: int
    refused: int
    cache_hits: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    unknown_price_calls: int
    saved_usd: Decimal
    error_rate: float | None
    cache_hit_rate: float | None
    mean_latency_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ttft_ms: float | None

    @classmethod
    def of(cls, start: float, key: str, t: Totals) -> HistoryPoint:
        """A point from rollup totals."""
        served = t.calls - t.refused
        return cls(
            start=start,
            key=key,
            calls=t.calls,
            errors=t.errors,
            refused=t.refused,
            cache_hits=t.cache_hits,
            input_tokens=t.input_tokens,
            output_tokens=t.output_tokens,
            cost_usd=nanos_to_usd(t.cost_nanos),
            unknown_price_calls=t.unknown_price_calls,
            saved_usd=nanos_to_usd(t.saved_nanos),
            error_rate=t.errors / t.calls if t.calls else None,
            cache_hit_rate=t.cache_hits / served if served > 0 else None,
            mean_latency_ms=t.mean_latency_ms,
            p50_ms=t.latency_quantile(0.5),
            p95_ms=t.latency_quantile(0.95),
            p99_ms=t.latency_quantile(0.99),
            mean_ttft_ms=t.ttft_ms_sum / t.ttft_calls if t.ttft_calls else None,
        )


@dataclass(slots=True)
class History:
    """Points over ``[since, until)`` at ``step``, oldest first; per key when ``by`` is set.

    ``keys`` lists the keys in order of calls (the busiest first), with
    ``(other)`` last when more keys existed than were asked for.
    """

    since: float
    until: float
    step: Step
    by: str | None
    keys: list[str] = field(default_factory=list)
    points: list[HistoryPoint] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (money as exact decimal strings)."""
        data = asdict(self)
        for p in data["points"]:
            p["cost_usd"] = format(p["cost_usd"], "f")
            p["saved_usd"] = format(p["saved_usd"], "f")
        data["step_s"] = ROLLUP_TABLES[self.step][0]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> History:
        """Rebuild from `to_json` output."""
        points = []
        for p in data.get("points", []):
            p = dict(p)
            p["cost_usd"] = Decimal(p["cost_usd"])
            p["saved_usd"] = Decimal(p["saved_usd"])
            points.append(HistoryPoint(**p))
        return cls(data["since"], data["until"], data["step"], data.get("by"), list(data.get("keys", [])), points)


def auto_step(since: float, until: float) -> Step:
    """Minutes up to 3 hours, hours up to 8 days, days beyond (a few hundred points at most)."""
    span = until - since
    if span <= 3 * 3600:
        return "minute"
    if span <= 8 * 86400:
        return "hour"
    return "day"


def _filters(
    by: str | None, provider: str | None, model: str | None, user: str | None, key: str | None
) -> tuple[str, str | None]:
    """The rollup dimension to read and its value filter."""
    named = {d: v for d, v in (("model", model), ("user", user), ("key", key)) if v is not None}
    if by in _DIM:
        if named:
            raise InvalidRequest(
                f"history by {by} can filter by provider only, not by {', '.join(named)}: "
                "the rollups keep models, users and keys apart",
                param="by",
            )
        return _DIM[by], None
    if len(named) > 1:
        raise InvalidRequest(
            f"history can filter by provider and one of model, user or key, not {' and '.join(named)}", param="user"
        )
    if named:
        dim, value = next(iter(named.items()))
        return dim, value
    return "all", None


def _sums(table: Any) -> list[Any]:
    return [func.sum(table.c[m]) for m in MEASURE_COLUMNS]


def history(
    store: Store,
    since: float,
    until: float,
    *,
    by: str | None = None,
    step: Step | None = None,
    provider: str | None = None,
    model: str | None = None,
    user: str | None = None,
    key: str | None = None,
    limit: int = 10,
) -> History:
    """Traffic, spend and latency over ``[since, until)``.

    Args:
        by: break down by provider, model, user, key or tag (None: totals).
        step: minute, hour or day (None: `auto_step`).
        provider: only this provider.
        model, user, key: only this one (one of them, and not with ``by``
            other than provider).
        limit: with ``by``, the busiest ``limit`` keys; the rest sum into ``(other)``.

    Raises:
        InvalidRequest: an unknown ``by`` or ``step``, a bad range, or filters
            the rollups cannot answer.
    """
    if by is not None and by not in BY:
        raise InvalidRequest(f"cannot break history down by {by!r}; use one of {', '.join(BY)}", param="by")
    step = step or auto_step(since, until)
    if step not in STEPS:
        raise InvalidRequest(f"unknown step {step!r}; use minute, hour or day", param="step")
    if since >= until:
        raise InvalidRequest("the start of a history range must be before its end", param="since")
    dim, value = _filters(by, provider, model, user, key)
    width, table = ROLLUP_TABLES[step]
    lo = int(since // width) * width

    def where(q: Any, on: str = dim) -> Any:
        q = q.where(table.c.dim == on, table.c.bucket >= lo, table.c.bucket < until)
        if value is not None and on == dim:
            q = q.where(table.c.value == value)
        if provider is not None:
            q = q.where(table.c.provider == provider)
        return q

    group = None if by is None else (table.c.provider if by == "provider" else table.c.value)

    def work(conn: Connection) -> History:
        out = History(since, until, step, by)
        if group is None:
            rows = conn.execute(
                where(select(table.c.bucket, *_sums(table))).group_by(table.c.bucket).order_by(table.c.bucket)
            )
            out.points = [HistoryPoint.of(float(r[0]), "", Totals.from_values(r[1:])) for r in rows]
            return out
        ranked = conn.execute(
            where(select(group, func.sum(table.c.calls)))
            .group_by(group)
            .order_by(func.sum(table.c.calls).desc(), group)
        ).all()
        top = [str(r[0]) for r in ranked[: max(1, limit)]]
        rest = len(ranked) > len(top)
        by_bucket: dict[int, dict[str, Totals]] = {}
        q = where(select(table.c.bucket, group, *_sums(table))).where(group.in_(top)).group_by(table.c.bucket, group)
        for r in conn.execute(q):
            by_bucket.setdefault(int(r[0]), {})[str(r[1])] = Totals.from_values(r[2:])
        if rest:
            # (other) = the bucket's total minus the listed keys'. Every call is in exactly
            # one row per dimension, so the total is the few ``all`` rows, not every key's.
            for r in conn.execute(where(select(table.c.bucket, *_sums(table)), "all").group_by(table.c.bucket)):
                total = Totals.from_values(r[1:])
                listed = by_bucket.setdefault(int(r[0]), {})
                other = _minus(total, list(listed.values()))
                if other.calls:
                    listed[OTHER] = other
        out.keys = top + ([OTHER] if rest else [])
        order = {k: i for i, k in enumerate(out.keys)}
        for bucket in sorted(by_bucket):
            for k, t in sorted(by_bucket[bucket].items(), key=lambda kv: order.get(kv[0], len(order))):
                out.points.append(HistoryPoint.of(float(bucket), k, t))
        return out

    return store.run(work)


def _minus(total: Totals, parts: list[Totals]) -> Totals:
    out = Totals.from_values([0] * len(MEASURE_COLUMNS))
    out.add(total)
    for p in parts:
        for name in MEASURE_COLUMNS[: MEASURE_COLUMNS.index("lat_00")]:
            setattr(out, name, getattr(out, name) - getattr(p, name))
        out.latency_hist = [a - b for a, b in zip(out.latency_hist, p.latency_hist, strict=True)]
    return out


def prune(store: Store, config: MetricsConfig, now: float) -> dict[str, int]:
    """Delete rollup rows past their retention; returns rows deleted per table.

    Minute rows older than ``minute_retention_days``, hour rows older than
    ``hour_retention_days`` and per-second rows older than
    ``second_retention_s``. Day rows are kept.
    """

    def work(conn: Connection) -> dict[str, int]:
        out = {}
        for grain, days in (("minute", config.minute_retention_days), ("hour", config.hour_retention_days)):
            table = ROLLUP_TABLES[grain][1]
            res = conn.execute(table.delete().where(table.c.bucket < int(now - days * 86400)))
            out[table.name] = int(res.rowcount or 0)
        out["metrics_second"] = prune_seconds(conn, now - config.second_retention_s)
        return out

    return store.run(work)
