"""Rate-limit tables: per-subject limits, and the store backend's counters.

- ``ratelimit_limits``: one row per subject with a limit of its own
  (``ax ratelimit set``): scope, subject, the request and token limits as
  written (``60/minute``; ``unlimited``; NULL for the configured default),
  algorithm and burst.
- ``ratelimit_version``: one row whose ``version`` goes up with every
  change to ``ratelimit_limits``, so a running engine notices a change made
  by another process with one cheap read.
- ``ratelimit_state``: the state of every limit in use when the state lives
  in the store, so that every local ax process (``ax serve``, ``ax call``,
  the dashboard) shares it. ``at`` is when a token bucket was last touched
  (``level``: the units then in use) or when a window started;
  ``prev_count``/``curr_count`` are a window counter's counts; ``log`` a moving window's entry times (packed float64).
  ``expires_at`` is when the row is equivalent to no row and may be pruned.

`StateTable` does a decision's read-modify-write in one locked
transaction: ``BEGIN IMMEDIATE`` on its own connection for a SQLite file
(the fast path, SQLite-only SQL kept here), ``SELECT … FOR UPDATE`` through
SQLAlchemy elsewhere (PostgreSQL).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import BigInteger, Column, Index, LargeBinary, UniqueConstraint, delete, select
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel
from sqlmodel import select as model_select

from axtui.errors import StoreError, StoreLocked
from axtui.store.markers import ChangeMarker

if TYPE_CHECKING:
    from axtui.store._store import Store

__all__ = [
    "RateLimitRule",
    "RateLimitState",
    "RateLimitVersion",
    "StateRow",
    "StateTable",
    "limits_marker",
    "read_limits",
    "read_limits_version",
    "remove_limit",
    "write_limit",
]

T = TypeVar("T")


class RateLimitRule(SQLModel, table=True):
    """A limit set for one subject, replacing the configured default field by field."""

    __tablename__ = "ratelimit_limits"
    __table_args__ = (UniqueConstraint("scope", "subject", name="uq_ratelimit_limits_subject"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=16)
    subject: str = Field(max_length=256)
    requests: str | None = Field(default=None, max_length=64)
    tokens: str | None = Field(default=None, max_length=64)
    algorithm: str | None = Field(default=None, max_length=32)
    burst: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    updated_at: float


class RateLimitVersion(SQLModel, table=True):
    """A counter bumped on every change of ``ratelimit_limits`` (one row, id 1)."""

    __tablename__ = "ratelimit_version"

    id: int = Field(primary_key=True)
    version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class RateLimitState(SQLModel, table=True):
    """The state of one limit of one subject (store backend)."""

    __tablename__ = "ratelimit_state"
    __table_args__ = (
        Index("ix_ratelimit_state_subject", "scope", "subject"),
        Index("ix_ratelimit_state_expires_at", "expires_at"),
    )

    state_key: str = Field(primary_key=True, max_length=600)
    scope: str = Field(max_length=16)
    subject: str = Field(max_length=256)
    at: float = 0.0
    level: float = 0.0
    prev_count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    curr_count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    log: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    expires_at: float = 0.0


# -- per-subject limits -------------------------------------------------------------------


def read_limits(store: Store) -> list[RateLimitRule]:
    """Every stored per-subject limit, by scope and subject."""
    with store.session() as s:
        return list(s.exec(model_select(RateLimitRule).order_by(RateLimitRule.scope, RateLimitRule.subject)))


def read_limits_version(store: Store) -> int:
    """The change counter of ``ratelimit_limits`` (0 before the first change)."""

    table = RateLimitVersion.__table__  # type: ignore[attr-defined]

    def work(conn: Connection) -> int:
        row = conn.execute(select(table.c.version).where(table.c.id == 1)).first()
        return int(row[0]) if row else 0

    return store.run(work)


def limits_marker(store: Store) -> ChangeMarker:
    """The marker every stored limit's change moves (`axtui.store.markers`): gateways on this machine
    read the limits again before their next request."""
    return ChangeMarker(store, "limits", "[ratelimit] poll_s")


def write_limit(
    store: Store,
    scope: str,
    subject: str,
    *,
    requests: str | None,
    tokens: str | None,
    algorithm: str | None,
    burst: int | None,
    now: float,
) -> RateLimitRule:
    """Create or replace the limit of one subject (and bump the version)."""
    table = RateLimitRule.__table__  # type: ignore[attr-defined]
    values = {"requests": requests, "tokens": tokens, "algorithm": algorithm, "burst": burst, "updated_at": now}

    def work(conn: Connection) -> dict[str, Any] | None:
        old = conn.execute(select(table.c.requests, table.c.tokens, table.c.algorithm, table.c.burst).where(
            table.c.scope == scope, table.c.subject == subject)).first()
        stmt = _insert(conn, table).values(scope=scope, subject=subject, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["scope", "subject"], set_=values))
        _bump(conn)
        return dict(old._mapping) if old is not None else None

    before = store.run(work)
    limits_marker(store).moved()
    from axtui.store.audit import record_change

    record_change(store, "ratelimit.set", f"{scope}:{subject}", before,
                  {"requests": requests, "tokens": tokens, "algorithm": algorithm, "burst": burst})
    return RateLimitRule(scope=scope, subject=subject, requests=requests, tokens=tokens, algorithm=algorithm,
                         burst=burst, updated_at=now)


def remove_limit(store: Store, scope: str, subject: str) -> bool:
    """Delete the limit of one subject; False when it had none."""
    table = RateLimitRule.__table__  # type: ignore[attr-defined]

    def work(conn: Connection) -> dict[str, Any] | None:
        old = conn.execute(select(table.c.requests, table.c.tokens, table.c.algorithm, table.c.burst).where(
            table.c.scope == scope, table.c.subject == subject)).first()
        gone = conn.execute(delete(table).where(table.c.scope == scope, table.c.subject == subject)).rowcount
        if gone:
            _bump(conn)
        return dict(old._mapping) if gone and old is not None else None

    before = store.run(work)
    if before is None:
        return False
    limits_marker(store).moved()
    from axtui.store.audit import record_change

    record_change(store, "ratelimit.remove", f"{scope}:{subject}", before, None)
    return True


def _bump(conn: Connection) -> None:
    table = RateLimitVersion.__table__  # type: ignore[attr-defined]
    stmt = _insert(conn, table).values(id=1, version=1)
    conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={"version": table.c.version + 1}))


def _insert(conn: Connection, table: Any) -> Any:
    """The dialect's INSERT, which has ON CONFLICT (SQLite and PostgreSQL both)."""
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    raise StoreError(f"rate limits need SQLite or PostgreSQL, not {conn.dialect.name}")


# -- state ----------------------------------------------------------------------------------


@dataclass(slots=True)
class StateRow:
    """One ``ratelimit_state`` row as plain data."""

    state_key: str
    scope: str
    subject: str
    at: float = 0.0
    level: float = 0.0
    prev_count: int = 0
    curr_count: int = 0
    log: bytes | None = None
    expires_at: float = 0.0


_COLUMNS = "state_key, scope, subject, at, level, prev_count, curr_count, log, expires_at"
_UPSERT = (
    f"INSERT INTO ratelimit_state ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(state_key) DO UPDATE SET at = excluded.at, level = excluded.level, prev_count = excluded.prev_count, "
    "curr_count = excluded.curr_count, log = excluded.log, expires_at = excluded.expires_at"
)


class StateTable:
    """Locked read-modify-write of ``ratelimit_state`` rows.

    Not thread-safe by itself: the rate limiter calls it from one worker
    thread. Multi-process safety comes from the database's locks.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._raw: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        path = store.path
        if path is not None:
            from axtui.store._store import BUSY_TIMEOUT_MS

            # A connection of our own, in autocommit mode, so that we issue
            # BEGIN IMMEDIATE ourselves: a deferred transaction that reads and
            # then writes can fail at once when another process wrote in between.
            self._raw = sqlite3.connect(
                str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            self._raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._raw.execute("PRAGMA synchronous=NORMAL")

    def transact(self, keys: Sequence[str], decide: Callable[[dict[str, StateRow]], Sequence[StateRow]]) -> None:
        """Read the rows of ``keys``, let ``decide`` say what to write, write it; all in one transaction.

        Raises:
            StoreLocked: another process held the database longer than the busy timeout.
            StoreError: the database failed otherwise.
        """
        with self._lock:
            if self._raw is not None:
                self._transact_sqlite(self._raw, keys, decide)
            else:
                self._transact_generic(keys, decide)

    def read(self, keys: Sequence[str]) -> dict[str, StateRow]:
        """The rows of ``keys`` that exist, without locking."""
        with self._lock:
            if self._raw is not None:
                return self._select_sqlite(self._raw, keys)
            table = RateLimitState.__table__  # type: ignore[attr-defined]
            with self.store.connect() as conn:
                rows = conn.execute(select(table).where(table.c.state_key.in_(list(keys))))
                return {r.state_key: StateRow(*r) for r in rows}

    def clear(self, scope: str, subject: str) -> int:
        """Forget every state of one subject; the number of rows removed."""
        table = RateLimitState.__table__  # type: ignore[attr-defined]
        return self.store.run(
            lambda conn: conn.execute(delete(table).where(table.c.scope == scope, table.c.subject == subject)).rowcount
        )

    def prune(self, now: float) -> int:
        """Drop rows that have expired (equivalent to no state); the number dropped."""
        table = RateLimitState.__table__  # type: ignore[attr-defined]
        return self.store.run(lambda conn: conn.execute(delete(table).where(table.c.expires_at < now)).rowcount)

    def close(self) -> None:
        """Release the connection of our own."""
        with self._lock:
            if self._raw is not None:
                self._raw.close()
                self._raw = None

    # -- SQLite file: one connection, BEGIN IMMEDIATE ----------------------------------

    def _select_sqlite(self, raw: sqlite3.Connection, keys: Sequence[str]) -> dict[str, StateRow]:
        marks = ",".join("?" * len(keys))
        cur = raw.execute(f"SELECT {_COLUMNS} FROM ratelimit_state WHERE state_key IN ({marks})", tuple(keys))
        return {r[0]: StateRow(*r) for r in cur.fetchall()}

    def _transact_sqlite(
        self, raw: sqlite3.Connection, keys: Sequence[str], decide: Callable[[dict[str, StateRow]], Sequence[StateRow]]
    ) -> None:
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _explain(exc, self.store) from None
        try:
            rows = self._select_sqlite(raw, keys)
            out = decide(rows)
            if out:
                raw.executemany(_UPSERT, [
                    (r.state_key, r.scope, r.subject, r.at, r.level, r.prev_count, r.curr_count, r.log, r.expires_at) for r in out
                ])
            raw.execute("COMMIT")
        except BaseException as exc:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _explain(exc, self.store) from None
            raise

    # -- anything else (PostgreSQL, SQLite in memory): SQLAlchemy, row locks ------------

    def _transact_generic(self, keys: Sequence[str], decide: Callable[[dict[str, StateRow]], Sequence[StateRow]]) -> None:
        table = RateLimitState.__table__  # type: ignore[attr-defined]
        ordered = sorted(set(keys))

        def work(conn: Connection) -> None:
            if conn.dialect.name != "sqlite":
                # Rows must exist to be locked; placeholders read as "no state".
                conn.execute(
                    _insert(conn, table).values([
                        {"state_key": k, "scope": "", "subject": "", "at": 0.0, "level": 0.0, "prev_count": 0, "curr_count": 0,
                         "log": None, "expires_at": 0.0} for k in ordered
                    ]).on_conflict_do_nothing(index_elements=["state_key"])
                )
            found = conn.execute(
                select(table).where(table.c.state_key.in_(ordered)).order_by(table.c.state_key).with_for_update()
            )
            rows = {r.state_key: StateRow(*r) for r in found if r.expires_at > 0 or r.scope}
            out = decide(rows)
            if out:
                values = [
                    {"state_key": r.state_key, "scope": r.scope, "subject": r.subject, "at": r.at, "level": r.level,
                     "prev_count": r.prev_count, "curr_count": r.curr_count, "log": r.log, "expires_at": r.expires_at}
                    for r in out
                ]
                stmt = _insert(conn, table)
                conn.execute(stmt.on_conflict_do_update(
                    index_elements=["state_key"],
                    set_={c: getattr(stmt.excluded, c) for c in
                          ("scope", "subject", "at", "level", "prev_count", "curr_count", "log", "expires_at")},
                ), values)

        self.store.run(work)


def _explain(exc: sqlite3.Error, store: Store) -> StoreError:
    msg = str(exc)
    if "locked" in msg.lower() or "busy" in msg.lower():
        return StoreLocked(
            f"the database {store.path} stayed locked while checking a rate limit; another program holds a long "
            "write lock on it (a backup or an open SQLite shell?). Close it and retry."
        )
    return StoreError(f"rate-limit state in {store.path} could not be used: {msg}")

