"""Cost tables: budgets, their shared counters, alert events and spend rollups.

- ``cost_budgets``: one row per budget (scope, period, limit, hard or soft,
  alert thresholds, webhook).
- ``cost_budget_windows``: the shared counters of a budget for one period
  (spent and reserved nano-dollars). Every replica reserves against these
  rows with one conditional UPDATE, so concurrent calls cannot overshoot.
- ``cost_budget_holds``: which process holds which part of a window's
  ``reserved`` (one row per window and holder), with a lease: a holder that
  stops renewing it (a process that died) has its part taken off
  ``reserved`` by any other process once ``expires_at`` has passed.
- ``cost_budget_alerts``: each threshold crossing, at most once per budget,
  period and threshold (a unique constraint, so it holds across processes),
  with the webhook delivery outcome.
- ``cost_rollup_minute`` / ``_hour`` / ``_day``: what the calls cost and
  how they went, summed per time bucket (epoch seconds, UTC) for one
  dimension. ``dim`` is ``all`` (every call, ``value`` empty), ``model``,
  ``user``, ``key`` or ``tags`` (the call's comma-joined tag set); every row
  also carries the call's ``provider``, so each dimension can be filtered by
  provider and ``all`` broken down by it. Each call adds to exactly one row
  per dimension and grain, so every breakdown sums to the total.
  ``lat_NN`` columns are a mergeable latency histogram: ``lat_NN`` counts
  calls at or under `LATENCY_BOUNDS_MS` [NN] (the last has no bound).
  On SQLite the rollup tables are ``WITHOUT ROWID``: rows are stored in
  key order, so a time range of one dimension is one contiguous read.

`upsert_rollups` adds a batch of rollup rows with the dialect's
``INSERT … ON CONFLICT DO UPDATE`` (SQLite and PostgreSQL both have it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Table, Text, UniqueConstraint, bindparam
from sqlalchemy.engine import Connection, Dialect
from sqlmodel import Field, SQLModel

from axtui.store.raw import RawSql, dialect_insert

__all__ = [
    "LATENCY_BOUNDS_MS",
    "LATENCY_COLUMNS",
    "MEASURE_COLUMNS",
    "ROLLUP_TABLES",
    "Budget",
    "BudgetAlertEvent",
    "BudgetHold",
    "BudgetWindow",
    "CostRollupDay",
    "CostRollupHour",
    "CostRollupMinute",
    "insert_or_ignore",
    "upsert_rollups",
]

#: Upper bounds (milliseconds) of the latency histogram's buckets; one more bucket holds the rest.
LATENCY_BOUNDS_MS: tuple[float, ...] = (
    5, 10, 25, 50, 75, 100, 150, 200, 300, 400, 500, 700, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 20000, 60000,
)
#: Column names of the latency histogram, one per bucket (the last is unbounded).
LATENCY_COLUMNS: tuple[str, ...] = tuple(f"lat_{i:02d}" for i in range(len(LATENCY_BOUNDS_MS) + 1))


class Budget(SQLModel, table=True):
    """A money budget over a scope and a period.

    ``scope_kind`` is ``global``, ``provider``, ``model``, ``user`` or
    ``key``; ``scope_value`` names which one (``*`` for global). ``period``
    is ``day``, ``week``, ``month`` or ``total``. ``thresholds`` is a comma
    list of percentages, NULL for the configured defaults; ``webhook`` NULL
    uses the configured one.
    """

    __tablename__ = "cost_budgets"
    __table_args__ = (UniqueConstraint("scope_kind", "scope_value", "period", name="uq_cost_budgets_scope_period"),)

    id: int | None = Field(default=None, primary_key=True)
    scope_kind: str = Field(max_length=16)
    scope_value: str = Field(default="*", max_length=256)
    period: str = Field(max_length=8)
    limit_nanos: int = Field(sa_column=Column(BigInteger, nullable=False))
    hard: bool = False
    thresholds: str | None = Field(default=None, max_length=128)
    webhook: str | None = Field(default=None, max_length=2048)
    created_at: float
    updated_at: float


class BudgetWindow(SQLModel, table=True):
    """A budget's shared counters for one period (``period_start`` epoch seconds; 0 for total)."""

    __tablename__ = "cost_budget_windows"

    budget_id: int = Field(primary_key=True)
    period_start: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    spent_nanos: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    reserved_nanos: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    updated_at: float = 0.0


class BudgetHold(SQLModel, table=True):
    """One process's part of a window's ``reserved``, leased until ``expires_at`` (epoch seconds)."""

    __tablename__ = "cost_budget_holds"
    __table_args__ = (Index("ix_cost_budget_holds_expires_at", "expires_at"),)

    budget_id: int = Field(primary_key=True)
    period_start: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    holder: str = Field(primary_key=True, max_length=64)
    held_nanos: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    expires_at: float = 0.0


class BudgetAlertEvent(SQLModel, table=True):
    """A budget crossed one of its thresholds (once per budget, period and threshold).

    ``delivery`` is ``none`` (no webhook), ``pending``, ``ok`` or ``failed``.
    """

    __tablename__ = "cost_budget_alerts"
    __table_args__ = (
        UniqueConstraint("budget_id", "period_start", "threshold", name="uq_cost_budget_alerts_once"),
        Index("ix_cost_budget_alerts_ts", "ts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    budget_id: int
    period_start: int = Field(sa_column=Column(BigInteger, nullable=False))
    threshold: int
    ts: float
    scope: str = Field(max_length=300)
    period: str = Field(max_length=8)
    spent_nanos: int = Field(sa_column=Column(BigInteger, nullable=False))
    limit_nanos: int = Field(sa_column=Column(BigInteger, nullable=False))
    message: str = Field(sa_column=Column(Text, nullable=False))
    delivery: str = Field(default="none", max_length=16)
    attempts: int = 0
    delivery_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    delivered_at: float | None = None


class _RollupBase(SQLModel):
    """The columns every rollup grain shares (see the module docstring)."""

    dim: str = Field(primary_key=True, max_length=8)
    bucket: int = Field(primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})
    value: str = Field(primary_key=True, max_length=1024)
    provider: str = Field(primary_key=True, max_length=128)
    calls: int = 0
    errors: int = 0
    refused: int = 0
    input_tokens: int = Field(default=0, sa_type=BigInteger)
    cached_input_tokens: int = Field(default=0, sa_type=BigInteger)
    cache_write_tokens: int = Field(default=0, sa_type=BigInteger)
    output_tokens: int = Field(default=0, sa_type=BigInteger)
    reasoning_tokens: int = Field(default=0, sa_type=BigInteger)
    cost_nanos: int = Field(default=0, sa_type=BigInteger)
    priced_calls: int = 0
    unknown_price_calls: int = 0
    cache_hits: int = 0
    saved_nanos: int = Field(default=0, sa_type=BigInteger)
    latency_ms_sum: float = 0.0
    ttft_ms_sum: float = 0.0
    ttft_calls: int = 0
    lat_00: int = 0
    lat_01: int = 0
    lat_02: int = 0
    lat_03: int = 0
    lat_04: int = 0
    lat_05: int = 0
    lat_06: int = 0
    lat_07: int = 0
    lat_08: int = 0
    lat_09: int = 0
    lat_10: int = 0
    lat_11: int = 0
    lat_12: int = 0
    lat_13: int = 0
    lat_14: int = 0
    lat_15: int = 0
    lat_16: int = 0
    lat_17: int = 0
    lat_18: int = 0
    lat_19: int = 0
    lat_20: int = 0
    lat_21: int = 0


class CostRollupMinute(_RollupBase, table=True):
    """Per-minute rollup (``bucket`` = start of the minute)."""

    __tablename__ = "cost_rollup_minute"
    __table_args__ = {"sqlite_with_rowid": False}


class CostRollupHour(_RollupBase, table=True):
    """Per-hour rollup (``bucket`` = start of the hour, UTC)."""

    __tablename__ = "cost_rollup_hour"
    __table_args__ = {"sqlite_with_rowid": False}


class CostRollupDay(_RollupBase, table=True):
    """Per-day rollup (``bucket`` = UTC midnight)."""

    __tablename__ = "cost_rollup_day"
    __table_args__ = {"sqlite_with_rowid": False}


#: Grain name -> (bucket width in seconds, table).
ROLLUP_TABLES: dict[str, tuple[int, Table]] = {
    "minute": (60, CostRollupMinute.__table__),  # type: ignore[attr-defined]
    "hour": (3600, CostRollupHour.__table__),  # type: ignore[attr-defined]
    "day": (86400, CostRollupDay.__table__),  # type: ignore[attr-defined]
}

_KEY_COLUMNS = ("dim", "bucket", "value", "provider")
#: Every additive column of a rollup row, in table order.
MEASURE_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in CostRollupMinute.__table__.columns if c.name not in _KEY_COLUMNS  # type: ignore[attr-defined]
)
assert len(LATENCY_COLUMNS) == sum(1 for c in MEASURE_COLUMNS if c.startswith("lat_"))


def upsert_rollups(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Add ``rows`` to ``table``: new keys are inserted, existing ones summed into.

    Each row holds the key columns and every measure column.
    """
    upsert = _UPSERTS.get(table.name)
    if upsert is None:
        upsert = _UPSERTS[table.name] = RawSql(lambda dialect: _upsert(dialect, table))
    # Straight to the driver: SQLAlchemy's per-row parameter handling would cost
    # more than the database's work on these wide, all-numeric rows. In key order, so
    # replicas writing the same rows at once lock them in one order (no deadlock on PostgreSQL).
    upsert.run_many(conn, sorted(rows, key=lambda r: tuple(str(r[k]) for k in _KEY_COLUMNS)))


_UPSERTS: dict[str, RawSql] = {}


def _upsert(dialect: Dialect, table: Table) -> Any:
    names = (*_KEY_COLUMNS, *MEASURE_COLUMNS)
    stmt = dialect_insert(dialect, table).values({n: bindparam(n) for n in names})
    return stmt.on_conflict_do_update(
        index_elements=[table.c[k] for k in _KEY_COLUMNS],
        set_={m: table.c[m] + stmt.excluded[m] for m in MEASURE_COLUMNS},
    )


def insert_or_ignore(conn: Connection, table: Table, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless its key or a unique constraint already holds it; True if inserted."""
    result = conn.execute(dialect_insert(conn.dialect, table).values(**row).on_conflict_do_nothing())
    return bool(result.rowcount)
