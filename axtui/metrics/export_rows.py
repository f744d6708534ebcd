"""The rows of each export, streamed from the store in their documented column order.

Each ``*_rows`` function yields lists matching its ``*_COLUMNS`` (fresh
lists: the writer may change them); values are plain Python (str, int,
float, bool, None) ready for CSV or JSON.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from axtui.store import Store
from axtui.store.tables import Call
from axtui.store.tables_cost import BudgetAlertEvent, CostRollupHour
from axtui.store.tables_governance import AuditRow
from axtui.store.tables_monitor import AlertEventRow

__all__ = [
    "ALERT_COLUMNS",
    "AUDIT_COLUMNS",
    "BUDGET_COLUMNS",
    "CALL_COLUMNS",
    "CALL_FIELDS",
    "COST_COLUMNS",
    "alert_rows",
    "audit_rows",
    "budget_rows",
    "call_row",
    "call_rows",
    "cost_rows",
    "nanos_text",
]

CHUNK = 5_000

#: One row per recorded call.
CALL_COLUMNS: tuple[str, ...] = (
    "ts", "request_id", "user", "key", "tags", "endpoint", "requested_model", "provider", "model", "deployment",
    "region", "status", "error_class", "error_message", "http_status", "latency_ms", "ttft_ms", "input_tokens",
    "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens", "usage_estimated", "cost_usd",
    "saved_usd", "cache", "similarity", "attempts", "route", "rule", "variant", "stream", "prompt_hash", "team",
)  # fmt: skip

#: One row per hour and provider and model (or per hour and provider for one user).
COST_COLUMNS: tuple[str, ...] = (
    "period_start", "provider", "model", "user", "calls", "errors", "refused", "input_tokens",
    "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens", "cost_usd",
    "priced_calls", "unknown_price_calls", "cache_hits", "saved_usd",
)  # fmt: skip

#: One row per alert rule transition or budget threshold crossed.
#: The audit trail: when, who, through what, what was changed, and it before and after (JSON; secrets never).
AUDIT_COLUMNS: tuple[str, ...] = ("ts", "id", "actor", "via", "action", "target", "before", "after")
ALERT_COLUMNS: tuple[str, ...] = (
    "ts", "source", "id", "rule_id", "name", "rule", "severity", "kind", "value", "threshold", "labels", "message",
    "delivery", "attempts", "delivery_error",
)  # fmt: skip

#: One row per budget, measured now.
BUDGET_COLUMNS: tuple[str, ...] = (
    "id", "scope", "period", "limit_usd", "spent_usd", "reserved_usd", "used_pct", "hard", "period_start",
    "period_end", "thresholds",
)  # fmt: skip

_NANOS = 1_000_000_000


def nanos_text(nanos: int | None) -> str | None:
    """Integer nano-dollars as an exact decimal string of dollars (``1500`` -> ``0.0000015``)."""
    if nanos is None:
        return None
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(nanos), _NANOS)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:09d}".rstrip("0")


class _IsoClock:
    """UTC ISO-8601 text of epoch seconds, reusing the formatted second (rows come in time order)."""

    __slots__ = ("_prefix", "_sec")

    def __init__(self) -> None:
        self._sec = -1
        self._prefix = ""

    def __call__(self, ts: float) -> str:
        sec = int(ts // 1)
        micros = round((ts - sec) * 1_000_000)
        if micros >= 1_000_000:
            sec += 1
            micros -= 1_000_000
        if sec != self._sec:
            self._sec = sec
            self._prefix = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{micros:06d}Z"


def _stream(conn: Connection, query: Any) -> Iterator[Any]:
    """Rows of ``query`` in chunks: a server-side cursor where there is one, never all rows at once."""
    result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(query)
    for part in result.partitions(CHUNK):
        yield from part


def _stream_tuples(conn: Connection, query: Any) -> Iterator[tuple[Any, ...]]:
    """Like `_stream`, as plain tuples; on SQLite straight from the driver's cursor.

    SQLite's cursor already steps through the result lazily, and skipping
    SQLAlchemy's row objects makes a large export about a third faster.
    """
    if conn.dialect.name != "sqlite":
        yield from (tuple(r) for r in _stream(conn, query))
        return
    compiled = query.compile(dialect=conn.dialect)
    params = [compiled.params[k] for k in (compiled.positiontup or ())]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), params)
        while rows := cursor.fetchmany(CHUNK):
            yield from rows
    finally:
        cursor.close()


#: The fields of a call (the ``calls`` table's names) a `CALL_COLUMNS` row is made of, in that order:
#: the same but for money, kept in nano-dollars.
CALL_FIELDS: tuple[str, ...] = (
    "ts", "request_id", "user", "key", "tags", "endpoint", "requested_model", "provider", "model", "deployment",
    "region", "status", "error_class", "error_message", "http_status", "latency_ms", "ttft_ms", "input_tokens",
    "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens", "usage_estimated", "cost_nanos",
    "saved_nanos", "cache", "similarity", "attempts", "route", "rule", "variant", "stream", "prompt_hash", "team",
)  # fmt: skip
_I_COST = CALL_FIELDS.index("cost_nanos")
_I_SAVED = CALL_FIELDS.index("saved_nanos")
_I_ESTIMATED = CALL_FIELDS.index("usage_estimated")
_I_STREAM = CALL_FIELDS.index("stream")


def _call_cells(r: list[Any], iso: _IsoClock) -> list[Any]:
    """``r`` (values in `CALL_FIELDS` order) made a `CALL_COLUMNS` row, in place: times, money, flags."""
    r[0] = iso(r[0])
    r[_I_COST] = nanos_text(r[_I_COST])
    r[_I_SAVED] = nanos_text(r[_I_SAVED])
    if r[_I_ESTIMATED] is not None:
        r[_I_ESTIMATED] = bool(r[_I_ESTIMATED])
    if r[_I_STREAM] is not None:
        r[_I_STREAM] = bool(r[_I_STREAM])
    return r


def call_row(fields: Mapping[str, Any]) -> list[Any]:
    """One `CALL_COLUMNS` row from a call's ``fields`` (named as in `CALL_FIELDS`; a missing one is empty).

    The dashboard writes the calls its log shows with this, so a filtered
    export reads exactly like ``ax monitor export``'s rows.
    """
    return _call_cells([fields.get(name) for name in CALL_FIELDS], _IsoClock())


def call_rows(
    conn: Connection, since: float | None, until: float | None, provider: str | None, user: str | None
) -> Iterator[list[Any]]:
    """Calls in time order, as `CALL_COLUMNS` tuples."""
    t = Call.__table__  # type: ignore[attr-defined]
    q = select(*(t.c[c] for c in CALL_FIELDS))
    if since is not None:
        q = q.where(t.c.ts >= since)
    if until is not None:
        q = q.where(t.c.ts < until)
    if provider is not None:
        q = q.where(t.c.provider == provider)
    if user is not None:
        q = q.where(t.c.user == user)
    q = q.order_by(t.c.ts, t.c.id)
    iso = _IsoClock()
    for row in _stream_tuples(conn, q):
        yield _call_cells(list(row), iso)


def cost_rows(
    conn: Connection, since: float | None, until: float | None, provider: str | None, user: str | None
) -> Iterator[list[Any]]:
    """Hourly spend from the cost rollups, as `COST_COLUMNS` tuples.

    Without ``user``: one row per hour, provider and model (the ``model``
    rollup). With ``user``: one row per hour and provider for that user
    (the ``user`` rollup; ``model`` is empty, since rollups keep users and
    models apart).
    """
    t = CostRollupHour.__table__  # type: ignore[attr-defined]
    q = select(t)
    q = q.where(t.c.dim == "model") if user is None else q.where(t.c.dim == "user", t.c.value == user)
    if since is not None:
        q = q.where(t.c.bucket >= int(since // 3600) * 3600)
    if until is not None:
        q = q.where(t.c.bucket < until)
    if provider is not None:
        q = q.where(t.c.provider == provider)
    q = q.order_by(t.c.bucket, t.c.provider, t.c.value)
    iso = _IsoClock()
    for row in _stream(conn, q):
        m = row._mapping
        yield [
            iso(m["bucket"]),
            m["provider"] or None,
            (m["value"] or None) if user is None else None,
            user,
            m["calls"],
            m["errors"],
            m["refused"],
            m["input_tokens"],
            m["cached_input_tokens"],
            m["cache_write_tokens"],
            m["output_tokens"],
            m["reasoning_tokens"],
            nanos_text(m["cost_nanos"]),
            m["priced_calls"],
            m["unknown_price_calls"],
            m["cache_hits"],
            nanos_text(m["saved_nanos"]),
        ]


def audit_rows(conn: Connection, since: float | None, until: float | None) -> Iterator[list[Any]]:
    """Audit entries, oldest first, as `AUDIT_COLUMNS` lists."""
    t = AuditRow.__table__  # type: ignore[attr-defined]
    q = select(t)
    if since is not None:
        q = q.where(t.c.ts >= since)
    if until is not None:
        q = q.where(t.c.ts < until)
    iso = _IsoClock()
    for row in _stream(conn, q.order_by(t.c.ts, t.c.id)):
        m = row._mapping
        # Objects (null when none), as /api/audit and `ax audit --json` give them; CSV writes them as JSON text.
        yield [iso(m["ts"]), m["id"], m["actor"], m["via"], m["action"], m["target"],
               json.loads(m["before"]) if m["before"] else None, json.loads(m["after"]) if m["after"] else None]


def alert_rows(
    conn: Connection, since: float | None, until: float | None, provider: str | None, user: str | None
) -> Iterator[list[Any]]:
    """Alert rule events and budget threshold events merged in time order, as `ALERT_COLUMNS` tuples.

    ``id`` is ``rule-N`` or ``budget-N``; ``labels`` is a dict (an object in
    JSON, its JSON text in CSV, empty when there is none).

    ``provider``/``user`` keep rule events whose ``where`` names them and
    budget events of budgets scoped to them.
    """
    iso = _IsoClock()
    merged = heapq.merge(_rule_events(conn, since, until), _budget_events(conn, since, until), key=lambda r: r[0])
    for row in merged:
        labels: dict[str, str] = row[10]
        if provider is not None and labels.get("provider") != provider:
            continue
        if user is not None and labels.get("user") != user:
            continue
        # The id names its source: a rule event and a budget event may share a row number, never an id.
        yield [iso(row[0]), row[1], f"{row[1]}-{row[2]}", *row[3:10], dict(sorted(labels.items())), *row[11:]]


def _rule_events(conn: Connection, since: float | None, until: float | None) -> Iterator[tuple[Any, ...]]:
    t = AlertEventRow.__table__  # type: ignore[attr-defined]
    q = select(t)
    if since is not None:
        q = q.where(t.c.ts >= since)
    if until is not None:
        q = q.where(t.c.ts < until)
    for row in _stream(conn, q.order_by(t.c.ts, t.c.id)):
        m = row._mapping
        yield (
            m["ts"], "rule", m["id"], m["rule_id"], m["rule_name"], m["rule"], m["severity"], m["kind"], m["value"],
            m["threshold"], json.loads(m["labels"]) if m["labels"] else {}, m["message"], m["delivery"],
            m["attempts"], m["delivery_error"],
        )  # fmt: skip


def _budget_events(conn: Connection, since: float | None, until: float | None) -> Iterator[tuple[Any, ...]]:
    t = BudgetAlertEvent.__table__  # type: ignore[attr-defined]
    q = select(t)
    if since is not None:
        q = q.where(t.c.ts >= since)
    if until is not None:
        q = q.where(t.c.ts < until)
    for row in _stream(conn, q.order_by(t.c.ts, t.c.id)):
        m = row._mapping
        scope = m["scope"]
        kind, _, value = scope.partition(":")
        labels = {kind: value} if kind in ("provider", "model", "user", "key") and value else {}
        spent = nanos_text(m["spent_nanos"])
        yield (
            m["ts"], "budget", m["id"], m["budget_id"], f"budget {scope} {m['period']}", f"{scope} per {m['period']}",
            "critical" if m["threshold"] >= 100 else "warning", "threshold", float(spent or 0), f"{m['threshold']}%",
            labels, m["message"], m["delivery"], m["attempts"], m["delivery_error"],
        )  # fmt: skip


def budget_rows(store: Store, provider: str | None, user: str | None, now: float, tz: str) -> Iterator[list[Any]]:
    """Every budget with its spend in the current period, as `BUDGET_COLUMNS` tuples."""
    from axtui.cost.budgets import budget_status

    iso = _IsoClock()
    for st in budget_status(store, now, tz=tz):
        b = st.budget
        scope = str(b.scope)
        if provider is not None and scope != f"provider:{provider}":
            continue
        if user is not None and scope != f"user:{user}":
            continue
        yield [
            b.id, scope, b.period, nanos_text(b.limit_nanos), nanos_text(st.spent_nanos),
            nanos_text(st.reserved_nanos), float(round(st.used * 100, 4)), b.hard,
            iso(st.period_start) if st.period_start else None,
            iso(st.period_end) if st.period_end is not None else None,
            ",".join(str(t) for t in b.thresholds) if b.thresholds else "",
        ]  # fmt: skip
