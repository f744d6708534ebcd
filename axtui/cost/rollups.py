"""Spend rollups: maintained as calls are recorded, read by every report.

`RollupHook` runs inside each recorder batch's transaction, so a call and
its rollups are written together or not at all. It adds each call to one
row per dimension (``all``, ``model``, ``user``, ``key``, ``tags``) in
each grain (minute, hour, day); see `axtui.store.tables_cost`.

Reads split a time range into whole days, whole hours and minutes, and
read each part from the coarsest table that covers it exactly, so a report
over ten million calls reads a few thousand rows. Ranges are aligned to
whole minutes (the start rounded down, the end up); where minute rows were
pruned (``metrics.minute_retention_days``) the start rounds down to the
hour, and past the hour retention to the day.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.store import Store
from axtui.store.tables import Call
from axtui.store.tables_cost import LATENCY_BOUNDS_MS, MEASURE_COLUMNS, ROLLUP_TABLES, upsert_rollups
from axtui.types import CallRecord

__all__ = [
    "DIMENSIONS",
    "MONEY_COLUMNS",
    "RollupHook",
    "Totals",
    "aggregate",
    "first_spend",
    "plan_segments",
    "rebuild",
    "series",
    "totals_by",
]

log = logging.getLogger(__name__)

#: Dimensions every call is rolled up by.
DIMENSIONS = ("all", "model", "user", "key", "tags", "team")
_GRAINS = tuple(ROLLUP_TABLES)
_N = len(MEASURE_COLUMNS)
_IX = {name: i for i, name in enumerate(MEASURE_COLUMNS)}
_LAT0 = _IX["lat_00"]
_REFUSED = frozenset({"rate_limited", "budget_refused"})
_FLOATS = frozenset({"latency_ms_sum", "ttft_ms_sum"})
#: The measures money reports need (no latency): reading fewer columns is much faster.
MONEY_COLUMNS = MEASURE_COLUMNS[: MEASURE_COLUMNS.index("saved_nanos") + 1]
_MEASURES = {"all": MEASURE_COLUMNS, "money": MONEY_COLUMNS}


@dataclass(slots=True)
class Totals:
    """Summed measures of some calls (one rollup row, or many added together).

    ``cost_nanos`` sums the calls whose price was known; ``unknown_price_calls``
    counts the ones served at an unknown price (their cost is not in the
    sum). ``latency_hist`` counts calls per `LATENCY_BOUNDS_MS` bucket.
    """

    calls: int = 0
    errors: int = 0
    refused: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_nanos: int = 0
    priced_calls: int = 0
    unknown_price_calls: int = 0
    cache_hits: int = 0
    saved_nanos: int = 0
    latency_ms_sum: float = 0.0
    ttft_ms_sum: float = 0.0
    ttft_calls: int = 0
    latency_hist: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))

    @classmethod
    def from_values(cls, values: Sequence[Any], columns: Sequence[str] = MEASURE_COLUMNS) -> Totals:
        """Totals from measure values named by ``columns`` (None read as zero; the rest stay zero)."""
        t = cls()
        for name, x in zip(columns, values, strict=True):
            if name.startswith("lat_"):
                t.latency_hist[int(name[4:])] = int(x or 0)
            else:
                setattr(t, name, float(x or 0) if name in _FLOATS else int(x or 0))
        return t

    def add(self, other: Totals) -> None:
        """Add ``other`` into these totals."""
        for name in MEASURE_COLUMNS[:_LAT0]:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latency_hist = [a + b for a, b in zip(self.latency_hist, other.latency_hist, strict=True)]

    @property
    def mean_latency_ms(self) -> float | None:
        """Mean latency of the calls, None without calls."""
        return self.latency_ms_sum / self.calls if self.calls else None

    def latency_quantile(self, q: float) -> float | None:
        """The latency at quantile ``q`` (0..1), interpolated within its histogram bucket."""
        total = sum(self.latency_hist)
        if not total:
            return None
        rank = q * total
        seen = 0
        lower = 0.0
        for i, count in enumerate(self.latency_hist):
            upper = LATENCY_BOUNDS_MS[i] if i < len(LATENCY_BOUNDS_MS) else LATENCY_BOUNDS_MS[-1] * 2
            if count and seen + count >= rank:
                return lower + (upper - lower) * ((rank - seen) / count)
            seen += count
            lower = upper
        return float(LATENCY_BOUNDS_MS[-1])


# -- writing ---------------------------------------------------------------------------------


def _measures(rec: CallRecord) -> list[Any]:
    m: list[Any] = [0] * _N
    m[0] = 1
    if rec.status == "error" or rec.status == "cancelled":
        m[1] = 1
    elif rec.status in _REFUSED:
        m[2] = 1
    m[3] = rec.input_tokens
    m[4] = rec.cached_input_tokens
    m[5] = rec.cache_write_tokens
    m[6] = rec.output_tokens
    m[7] = rec.reasoning_tokens
    if rec.cost_nanos is not None:
        m[8] = rec.cost_nanos
        m[9] = 1
    elif rec.deployment is not None and (rec.status == "ok" or rec.input_tokens or rec.output_tokens):
        # It reached a provider and used tokens we cannot price: flagged, never zero.
        # (A call that failed before any token was used has nothing to price.)
        m[10] = 1
    if rec.cache in ("exact", "semantic"):
        m[11] = 1
        m[12] = rec.saved_nanos or 0
    m[13] = rec.latency_ms
    if rec.ttft_ms is not None:
        m[14] = rec.ttft_ms
        m[15] = 1
    m[_LAT0 + bisect_left(LATENCY_BOUNDS_MS, rec.latency_ms)] = 1
    return m


def _tagset(tags: Iterable[str]) -> str:
    return ",".join(sorted(set(tags)))[:1024]


def aggregate(records: Iterable[CallRecord]) -> dict[str, dict[tuple[str, int, str, str], list[Any]]]:
    """Rollup rows for some records: grain -> (dim, bucket, value, provider) -> measures."""
    combos: dict[tuple[int, str, str, str, str, str, str], list[Any]] = {}
    for rec in records:
        minute = int(rec.ts // 60) * 60
        key = (minute, rec.provider or "", rec.model or "", rec.user[:1024], rec.key or "", _tagset(rec.tags),
               rec.team or "")
        m = _measures(rec)
        acc = combos.get(key)
        if acc is None:
            combos[key] = m
        else:
            for i, x in enumerate(m):
                if x:
                    acc[i] += x
    out: dict[str, dict[tuple[str, int, str, str], list[Any]]] = {g: {} for g in _GRAINS}
    for (minute, provider, model, user, api_key, tags, team), m in combos.items():
        # Most measures of a group are zero (one latency bucket of 22, no cache hit…):
        # adding only the others is what keeps this loop cheap.
        nonzero = [(i, x) for i, x in enumerate(m) if x]
        for grain, (width, _table) in ROLLUP_TABLES.items():
            bucket = minute - minute % width
            rows = out[grain]
            for dim, value in (("all", ""), ("model", model), ("user", user), ("key", api_key), ("tags", tags),
                               ("team", team)):
                k = (dim, bucket, value, provider)
                acc = rows.get(k)
                if acc is None:
                    rows[k] = list(m)
                else:
                    for i, x in nonzero:
                        acc[i] += x
    return out


def write_rollups(conn: Connection, records: Sequence[CallRecord]) -> None:
    """Add ``records`` to every rollup table, in the caller's transaction."""
    for grain, rows in aggregate(records).items():
        table = ROLLUP_TABLES[grain][1]
        upsert_rollups(
            conn,
            table,
            [
                {"dim": d, "bucket": b, "value": v, "provider": p, **dict(zip(MEASURE_COLUMNS, m, strict=True))}
                for (d, b, v, p), m in rows.items()
            ],
        )


class RollupHook:
    """The recorder hook that keeps the rollups: ``recorder.add_hook(RollupHook(...))``.

    Args:
        minute_retention_s: minute rows older than this are deleted.
        hour_retention_s: hour rows older than this are deleted (day rows are kept).
        clock: decides what "older" means.
        prune_every_s: how often (clock time) pruning runs.
    """

    def __init__(
        self,
        *,
        minute_retention_s: float = 7 * 86400,
        hour_retention_s: float = 365 * 86400,
        clock: Clock = SYSTEM_CLOCK,
        prune_every_s: float = 600.0,
    ) -> None:
        self.minute_retention_s = minute_retention_s
        self.hour_retention_s = hour_retention_s
        self.clock = clock
        self.prune_every_s = prune_every_s
        self._last_prune: float | None = None

    def __call__(self, conn: Connection, records: Sequence[CallRecord]) -> None:
        write_rollups(conn, records)
        now = self.clock.now()
        if self._last_prune is None or now - self._last_prune >= self.prune_every_s:
            self._last_prune = now
            self.prune(conn, now)

    def prune(self, conn: Connection, now: float) -> None:
        """Delete minute and hour rows past their retention."""
        for grain, keep in (("minute", self.minute_retention_s), ("hour", self.hour_retention_s)):
            table = ROLLUP_TABLES[grain][1]
            conn.execute(table.delete().where(table.c.bucket < int(now - keep)))


def rebuild(store: Store, *, since: float | None = None, chunk: int = 50_000) -> int:
    """Recompute the rollups from the call log (from ``since``, minute-aligned); returns calls read.

    For a database whose calls were written without the hook. Rows of the
    rebuilt range are deleted first, so running it twice counts nothing twice.
    """
    from axtui.types import CallRecord as Rec

    lo = 0 if since is None else int(since // 86400) * 86400
    cols = [c for c in Call.__table__.columns if c.name != "id"]  # type: ignore[attr-defined]
    names = [c.name for c in cols]

    def work(conn: Connection) -> int:
        for _grain, (_w, table) in ROLLUP_TABLES.items():
            conn.execute(table.delete().where(table.c.bucket >= lo))
        n = 0
        last_id = 0
        id_col = Call.__table__.c.id  # type: ignore[attr-defined]
        while True:
            rows = conn.execute(
                select(id_col, *cols).where(Call.__table__.c.ts >= lo, id_col > last_id)  # type: ignore[attr-defined]
                .order_by(id_col).limit(chunk)
            ).all()
            if not rows:
                return n
            recs = []
            for row in rows:
                data = dict(zip(names, row[1:], strict=True))
                data["tags"] = tuple(t for t in (data["tags"] or "").split(",") if t)
                recs.append(Rec(**data))
            write_rollups(conn, recs)
            n += len(rows)
            last_id = rows[-1][0]

    return store.run(work)


# -- reading ---------------------------------------------------------------------------------


def _floor(t: float, width: int) -> int:
    return int(t // width) * width


def _ceil(t: float, width: int) -> int:
    return -int(-t // width) * width


def plan_segments(
    since: float,
    until: float,
    *,
    oldest_minute: int | None = None,
    oldest_hour: int | None = None,
    max_grain: str = "day",
    open_end: bool = False,
) -> list[tuple[str, int, int]]:
    """Split ``[since, until)`` into (grain, start, end) pieces, coarsest first.

    ``oldest_minute`` / ``oldest_hour`` are the earliest buckets still kept
    at those grains (None: nothing kept); the start is rounded down to the
    next coarser grain when it lies before them. ``max_grain`` caps the
    coarsest grain used (time-zone groupings need hours). ``open_end``
    says nothing was recorded after ``until`` (it is now), so the last
    buckets are read whole: one hour or day row instead of its minutes.
    """
    lo = _floor(since, 60)
    hi = _ceil(until, 86400 if max_grain == "day" else 3600) if open_end else _ceil(until, 60)
    if oldest_minute is None or lo < oldest_minute:
        lo = _floor(lo, 3600)
        if oldest_hour is None or lo < oldest_hour:
            lo = _floor(lo, 86400) if max_grain == "day" else lo
    if hi <= lo:
        return []
    segs: list[tuple[str, int, int]] = []
    widths = [("day", 86400), ("hour", 3600), ("minute", 60)]
    if max_grain != "day":
        widths = widths[1:]

    def split(a: int, b: int, level: int) -> None:
        if a >= b:
            return
        name, width = widths[level]
        if level == len(widths) - 1:
            segs.append((name, a, b))
            return
        ia, ib = _ceil(a, width), _floor(b, width)
        if ia < ib:
            segs.append((name, ia, ib))
            split(a, ia, level + 1)
            split(ib, b, level + 1)
        else:
            split(a, b, level + 1)

    split(lo, hi, 0)
    return segs


_STATEMENTS: dict[tuple[str, ...], Any] = {}


def _statement(kind: str, grain: str, provider: bool, value: bool, measures: str = "all") -> Any:
    """A query over one rollup table, built once and reused (SQLAlchemy then skips compiling it).

    Kinds: ``totals`` (grouped by provider and value), ``series`` (grouped by
    bucket), ``oldest`` (earliest bucket), ``first_spend`` (earliest bucket
    with a cost). Parameters: ``dim``, ``lo``, ``hi``, and ``provider`` /
    ``value`` when those filters are on.
    """
    key = (kind, grain, str(provider), str(value), measures)
    stmt = _STATEMENTS.get(key)
    if stmt is not None:
        return stmt
    t = ROLLUP_TABLES[grain][1]
    sums = [func.sum(t.c[m]) for m in _MEASURES[measures]]
    if kind == "totals":
        q = select(t.c.provider, t.c.value, *sums)
    elif kind == "series":
        q = select(t.c.bucket, *sums)
    else:
        q = select(func.min(t.c.bucket))
    q = q.where(t.c.dim == bindparam("dim"))
    if kind != "oldest":
        q = q.where(t.c.bucket >= bindparam("lo"), t.c.bucket < bindparam("hi"))
    if kind == "first_spend":
        q = q.where(t.c.cost_nanos > 0)
    if provider:
        q = q.where(t.c.provider == bindparam("provider"))
    if value:
        q = q.where(t.c.value == bindparam("value"))
    if kind == "totals":
        q = q.group_by(t.c.provider, t.c.value)
    elif kind == "series":
        q = q.group_by(t.c.bucket)
    _STATEMENTS[key] = q
    return q


def _params(dim: str, lo: int, hi: int, provider: str | None, value: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"dim": dim, "lo": lo, "hi": hi}
    if provider is not None:
        params["provider"] = provider
    if value is not None:
        params["value"] = value
    return params


def _oldest(conn: Connection, grain: str) -> int | None:
    found = conn.execute(_statement("oldest", grain, False, False), {"dim": "all"}).scalar()
    return None if found is None else int(found)


def _segments(
    conn: Connection, since: float, until: float, max_grain: str = "day", open_end: bool = False
) -> list[tuple[str, int, int]]:
    return plan_segments(
        since, until, oldest_minute=_oldest(conn, "minute"), oldest_hour=_oldest(conn, "hour"), max_grain=max_grain,
        open_end=open_end,
    )


def totals_by(
    conn: Connection,
    since: float,
    until: float,
    *,
    dim: str = "all",
    provider: str | None = None,
    value: str | None = None,
    measures: str = "all",
    open_end: bool = False,
) -> dict[tuple[str, str], Totals]:
    """Totals per (provider, value) of ``dim`` over ``[since, until)``.

    ``measures="money"`` reads only calls, tokens, costs and savings (the
    latency measures stay zero), which is several times faster.
    ``open_end``: ``until`` is now, so the last hour and day are read whole.
    """
    if dim not in DIMENSIONS:
        raise ValueError(f"unknown rollup dimension {dim!r}; use one of {', '.join(DIMENSIONS)}")
    out: dict[tuple[str, str], Totals] = {}
    for grain, lo, hi in _segments(conn, since, until, open_end=open_end):
        stmt = _statement("totals", grain, provider is not None, value is not None, measures)
        for row in conn.execute(stmt, _params(dim, lo, hi, provider, value)):
            t = Totals.from_values(row[2:], _MEASURES[measures])
            key = (row[0], row[1])
            if key in out:
                out[key].add(t)
            else:
                out[key] = t
    return out


def series(
    conn: Connection,
    since: float,
    until: float,
    *,
    grain: str | None = None,
    dim: str = "all",
    provider: str | None = None,
    value: str | None = None,
    measures: str = "all",
    open_end: bool = False,
) -> list[tuple[int, Totals]]:
    """Totals per bucket start over ``[since, until)``, oldest first.

    With ``grain`` (``minute``, ``hour`` or ``day``) every row of that table
    is read; without it the range is read at mixed grains (whole hours
    where possible, minutes at the edges) and each bucket keeps its own
    width. ``measures`` and ``open_end`` as in `totals_by`.
    """
    segs = (
        [(grain, _floor(since, ROLLUP_TABLES[grain][0]), _ceil(until, 60))]
        if grain is not None
        else _segments(conn, since, until, max_grain="hour", open_end=open_end)
    )
    out: dict[int, Totals] = {}
    for g, lo, hi in segs:
        stmt = _statement("series", g, provider is not None, value is not None, measures)
        for row in conn.execute(stmt, _params(dim, lo, hi, provider, value)):
            t = Totals.from_values(row[1:], _MEASURES[measures])
            bucket = int(row[0])
            if bucket in out:
                out[bucket].add(t)
            else:
                out[bucket] = t
    return sorted(out.items())


def first_spend(
    conn: Connection, since: float, until: float, *, dim: str = "all", provider: str | None = None,
    value: str | None = None,
) -> int | None:
    """The start of the first minute in ``[since, until)`` with any cost, from the minute rows."""
    stmt = _statement("first_spend", "minute", provider is not None, value is not None)
    found = conn.execute(stmt, _params(dim, _floor(since, 60), _ceil(until, 60), provider, value)).scalar()
    return None if found is None else int(found)
