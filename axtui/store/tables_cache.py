"""The response cache's persistent tier: entries and counters.

One row per cached answer. ``body`` is the answer as zlib-compressed JSON;
``vector`` the float32 turn vectors of the conversation for semantic
lookup (NULL when the entry is exact-only); ``guards`` the guard features
(hashes only: the prompt itself is never stored). ``size`` counts the bytes
the row holds, for the store's byte bound; ``last_hit_at`` orders eviction
(least recently hit first). ``expires_at`` is NULL for entries kept until
evicted. Times are epoch seconds.

``cache_counters`` holds running totals that outlive the entries
(evictions, expirations, corrupt entries removed) and ``generation``,
bumped by every invalidation so other processes drop what they hold in
memory.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text, bindparam, select, text
from sqlalchemy.engine import Connection, Dialect
from sqlmodel import Field, SQLModel

from axtui.store.raw import RawSql, dialect_insert

__all__ = ["CacheCounter", "CacheEntry", "EntryReader", "add_counters", "ensure_counter", "held_generation", "read_counters",
           "touch_entries", "upsert_entries"]


class CacheEntry(SQLModel, table=True):
    """One cached answer (see the module docstring)."""

    __tablename__ = "cache_entries"
    __table_args__ = (
        Index("ix_cache_entries_last_hit_at", "last_hit_at"),
        Index("ix_cache_entries_partition", "partition"),
        Index("ix_cache_entries_created_at", "created_at"),
        Index("ix_cache_entries_expires_at", "expires_at"),
    )

    key: str = Field(primary_key=True, max_length=64)
    partition: str = Field(max_length=32)
    scope: str = Field(max_length=320)
    user: str = Field(max_length=256)
    model: str = Field(max_length=256)
    provider: str = Field(default="", max_length=128)
    served_model: str = Field(default="", max_length=256)
    created_at: float
    expires_at: float | None = None
    last_hit_at: float
    hits: int = 0
    cost_nanos: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    size: int = 0
    turns: int = 1
    embedder: str | None = Field(default=None, max_length=128)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    vector: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    guards: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class CacheCounter(SQLModel, table=True):
    """A running total of the cache (evictions, expirations, corrupt, generation)."""

    __tablename__ = "cache_counters"

    name: str = Field(primary_key=True, max_length=32)
    value: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


# -- statements the cache needs that differ by database (kept inside the store package) --------------


def upsert_entries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert cache entries, replacing any with the same key."""
    _UPSERT_ENTRIES.run_many(conn, rows)


def _upsert_entries(dialect: Dialect) -> Any:
    table = CacheEntry.__table__  # type: ignore[attr-defined]
    ins = dialect_insert(dialect, table).values({c.name: bindparam(c.name) for c in table.columns})
    updates = {c.name: ins.excluded[c.name] for c in table.columns if c.name != "key"}
    return ins.on_conflict_do_update(index_elements=["key"], set_=updates)


#: Built and compiled once per dialect, run straight on the driver (rows are wide: SQLAlchemy's
#: per-row work would cost more than the database's).
_UPSERT_ENTRIES = RawSql(_upsert_entries)


def add_counters(conn: Connection, deltas: dict[str, int]) -> None:
    """Add to running totals in ``cache_counters`` (creating them at 0)."""
    table = CacheCounter.__table__  # type: ignore[attr-defined]
    for name, delta in deltas.items():
        if not delta:
            continue
        stmt = dialect_insert(conn.dialect, table).values(name=name, value=delta)
        conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"value": table.c.value + delta}))


def held_generation(conn: Connection) -> int:
    """The invalidation ``generation``, read inside a writing transaction so that no invalidation
    commits between this read and the transaction's end (PostgreSQL: a share lock on its row;
    SQLite: the writer already holds the file's write lock)."""
    row = _HELD_GENERATION.run(conn, {})
    return int(row[0] or 0) if row is not None else 0


#: The writer reads it once per batch: compiled once, not built and looked up in SQLAlchemy's cache each time.
_HELD_GENERATION = RawSql(
    lambda dialect: text("SELECT value FROM cache_counters WHERE name = 'generation'"
                         + (" FOR SHARE" if dialect.name == "postgresql" else ""))
)


def touch_entries(conn: Connection, hits: Sequence[dict[str, Any]]) -> None:
    """Mark entries hit: ``last_hit_at`` set to each ``at``, ``hits`` counted (rows of ``k`` and ``at``)."""
    _TOUCH_ENTRIES.run_many(conn, hits)


_TOUCH_ENTRIES = RawSql("UPDATE cache_entries SET last_hit_at = :at, hits = hits + 1 WHERE key = :k")


def ensure_counter(conn: Connection, name: str) -> None:
    """Create the running total ``name`` at 0 unless it exists (a row to lock before any invalidation)."""
    table = CacheCounter.__table__  # type: ignore[attr-defined]
    conn.execute(dialect_insert(conn.dialect, table).values(name=name, value=0).on_conflict_do_nothing(
        index_elements=["name"]))


def read_counters(conn: Connection) -> dict[str, int]:
    """Every running total in ``cache_counters``."""
    table = CacheCounter.__table__  # type: ignore[attr-defined]
    return {name: int(value) for name, value in conn.execute(select(table.c.name, table.c.value))}


class EntryReader:
    """Point reads of entries by key on a SQLite file's own read-only connection.

    The cache looks its store tier up once per memory miss. Through
    SQLAlchemy and a worker thread that costs ~150 µs of Python and a
    thread hop; a prepared primary-key lookup on a connection of our own
    costs a few microseconds, and in WAL mode a reader never waits for a
    writer, so the cache runs it on the event loop.
    """

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        from axtui.store._store import BUSY_TIMEOUT_MS

        self._sql = f"SELECT {', '.join(columns)} FROM cache_entries WHERE key = ?"
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                     isolation_level=None, check_same_thread=False)

    def get(self, key: str) -> tuple[Any, ...] | None:
        """The row of ``key`` (the columns given), or None.

        Raises:
            sqlite3.Error: the database cannot be read.
        """
        with self._lock:
            row = self._conn.execute(self._sql, (key,)).fetchone()
        return tuple(row) if row is not None else None

    def close(self) -> None:
        """Release the connection."""
        with self._lock:
            self._conn.close()
