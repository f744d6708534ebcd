"""The persistent tier: cache entries in the store, written from a background thread.

Reads (`StoreTier.get`) are plain, short queries the cache runs off the
event loop (``asyncio.to_thread``) only when the memory tier misses.
Writes never wait: `put`, `touch` and `delete` queue work for one writer
thread (the queue is bounded by ``max_queue``: when it is full a put or a
touch is dropped and counted in `StoreTier.dropped`, since a cache may lose
a write but must never hold up a call; deletes are always queued), which gathers it for 50 ms and applies it in batches, one
transaction each (so another process sees a new answer a moment later;
this one has it in memory at once), and then

- keeps the table under ``max_bytes`` by evicting the least recently hit
  entries (counted as ``evictions``),
- every ``purge_interval_s`` removes expired entries (``expirations``),
- every ``poll_interval_s`` reads the ``generation`` counter: when another
  process (``ax cache clear``, ``ax cache invalidate``) changed it, the
  cache drops what it holds in memory and reloads its semantic index (at
  once when `recheck` asks: a change on this machine moves `cache_marker`);
  answers queued before an invalidation are not written after it (each
  write reads the generation inside its transaction, `held_generation`),
- every ``refresh_interval_s`` picks up entries other processes stored,
  for the semantic index.

`flush` waits until everything queued so far is written; `close` flushes
and stops the thread (the gateway calls it on close).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from axtui.cache.entry import Entry, encode_guards, encode_response
from axtui.clock import Clock
from axtui.errors import StoreError
from axtui.store import Store
from axtui.store.markers import ChangeMarker
from axtui.store.tables_cache import (
    CacheEntry,
    EntryReader,
    add_counters,
    ensure_counter,
    held_generation,
    read_counters,
    touch_entries,
    upsert_entries,
)

__all__ = ["IndexRow", "StoreTier", "StoredRow", "cache_marker"]

log = logging.getLogger(__name__)

_T = CacheEntry.__table__  # type: ignore[attr-defined]
_ROW_COLUMNS = (_T.c.key, _T.c.partition, _T.c.scope, _T.c.user, _T.c.model, _T.c.created_at, _T.c.expires_at,
                _T.c.cost_nanos, _T.c.turns, _T.c.embedder, _T.c.body, _T.c.guards)  # fmt: skip
_BATCH = 500
#: Entries whose vectors are read in one query when the index loads.
_READ_CHUNK = 500
#: How long the writer waits for more writes before a transaction (other processes see an
#: answer this much later; this one has it in memory at once).
_LINGER_S = 0.05


@dataclass(slots=True)
class StoredRow:
    """One entry as read back from the store (still encoded)."""

    key: str
    partition: str
    scope: str
    user: str
    model: str
    created_at: float
    expires_at: float | None
    cost_nanos: int | None
    turns: int
    embedder: str | None
    body: bytes
    guards: str | None


@dataclass(slots=True)
class IndexRow:
    """What the semantic index needs of a stored entry."""

    key: str
    partition: str
    created_at: float
    expires_at: float
    turns: int
    vector: bytes


@dataclass(slots=True)
class _Put:
    entry: Entry
    vectors: np.ndarray | None
    embedder: str | None


def cache_marker(store: Store) -> ChangeMarker:
    """The marker ``ax cache clear`` and ``invalidate`` move (`axtui.store.markers`): caches on this
    machine drop what they hold in memory before their next lookup."""
    return ChangeMarker(store, "cache", "about a second")


class StoreTier:
    """Cache entries in the store, bounded by bytes (see the module docstring).

    Args:
        store: the open store.
        clock: for expiry and last-hit times.
        max_bytes: the most bytes of entries the table holds (0: unbounded).
        embedder: the name of the embedder whose vectors the index loads.
        on_removed: called (from the writer thread) with keys it evicted or expired.
        on_reset: called (from the writer thread) when another process invalidated entries.
        on_index_rows: called (from the writer thread) with stored vectors to index.
        on_live_keys: called (from the writer thread) after the first load with every live
            key of this embedder, so an index loaded from a snapshot drops what is gone.
        on_start: called first on the writer thread, before the index loads (a snapshot).
        on_idle: called on the writer thread about once a second (periodic snapshots).
        on_close: called last on the writer thread, after the final writes.
        indexed: whether the index already holds a key (its vectors are then not read again).
        max_queue: the most writes waiting; more puts and touches are dropped and counted.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        max_bytes: int,
        embedder: str | None = None,
        on_removed: Callable[[list[str]], None] = lambda keys: None,
        on_reset: Callable[[], None] = lambda: None,
        on_index_rows: Callable[[list[IndexRow]], None] = lambda rows: None,
        on_live_keys: Callable[[set[str]], None] = lambda keys: None,
        on_start: Callable[[], None] = lambda: None,
        on_idle: Callable[[], None] = lambda: None,
        on_close: Callable[[], None] = lambda: None,
        indexed: Callable[[str], bool] = lambda key: False,
        max_queue: int = 10_000,
        purge_interval_s: float = 60.0,
        poll_interval_s: float = 1.0,
        refresh_interval_s: float = 5.0,
        autostart: bool = True,
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_bytes = max_bytes
        self.embedder = embedder
        self.on_removed = on_removed
        self.on_reset = on_reset
        self.on_index_rows = on_index_rows
        self.on_live_keys = on_live_keys
        self.on_start = on_start
        self.on_idle = on_idle
        self.on_close = on_close
        self.indexed = indexed
        self.max_queue = max_queue
        #: Puts and touches dropped because the queue was full.
        self.dropped = 0
        self.purge_interval_s = purge_interval_s
        self.poll_interval_s = poll_interval_s
        self.refresh_interval_s = refresh_interval_s
        self.write_errors = 0
        self.generation = 0
        #: Set by `recheck`: the writer reads the generation on its next turn.
        self._recheck = False
        self._ops: list[tuple[str, Any]] = []
        self._cond = threading.Condition()
        self._enqueued = 0
        self._done = 0
        self._stopping = False
        self._flushing = 0
        self._bytes_estimate: int | None = None
        self._watermark = 0.0
        self._thread = threading.Thread(target=self._run, name="ax-cache-writer", daemon=True)
        self._started = False
        self._loaded = threading.Event()
        #: Point reads without SQLAlchemy or a thread, for a SQLite file (None: read through the engine).
        self.reader: EntryReader | None = None
        if store.path is not None:
            try:
                self.reader = EntryReader(store.path, [c.name for c in _ROW_COLUMNS])
            except Exception as exc:  # the engine path still works; it is only slower
                log.warning("response cache: no direct read connection (%s); reading through the engine", exc)
        if autostart:
            self.start()

    # -- reads (any thread) --------------------------------------------------------------------

    def get(self, key: str) -> StoredRow | None:
        """The stored entry with this key, or None.

        Raises:
            StoreError: the database cannot be read.
        """
        try:
            if self.reader is not None:
                row = self.reader.get(key)
            else:
                with self.store.engine.connect() as conn:
                    row = conn.execute(select(*_ROW_COLUMNS).where(_T.c.key == key)).first()
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise StoreError(f"reading the response cache failed: {exc}") from None
        return StoredRow(*row) if row is not None else None

    # -- writes (queued; never block the caller) -------------------------------------------------

    def put(self, entry: Entry, vectors: np.ndarray | None, embedder: str | None) -> None:
        """Queue an entry to be stored (encoded and compressed on the writer thread)."""
        self._enqueue("put", _Put(entry, vectors, embedder))

    def touch(self, key: str, at: float) -> None:
        """Queue a hit: the entry's ``last_hit_at`` and ``hits`` move, so eviction spares it."""
        self._enqueue("touch", (key, at))

    def delete(self, keys: list[str], reason: str) -> None:
        """Queue the removal of entries, counted under ``reason`` (corrupt, expired, invalidated)."""
        self._enqueue("delete", (keys, reason))

    def _enqueue(self, op: str, arg: Any) -> None:
        with self._cond:
            if len(self._ops) >= self.max_queue and op != "delete":
                self.dropped += 1
                return
            self._ops.append((op, arg))
            self._enqueued += 1
            # The writer wakes for the first write and a full batch; in between it lingers.
            if len(self._ops) == 1 or len(self._ops) >= _BATCH:
                self._cond.notify_all()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        if not self._started:
            self._drain()
            return True
        # The stored vectors are indexed before anything queued is written.
        self._loaded.wait(timeout)
        with self._cond:
            target = self._enqueued
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._done >= target or not self._thread.is_alive(), timeout)
            finally:
                self._flushing -= 1

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """Wait until the index holds what the store held at start; False on timeout."""
        if not self._started:
            return True
        return self._loaded.wait(timeout)

    def start(self) -> None:
        """Start the writer thread (the constructor does unless ``autostart=False``)."""
        if not self._started:
            self._started = True
            self._thread.start()

    def close(self) -> None:
        """Write everything queued and stop the writer thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._started:
            self._thread.join(timeout=60)
        else:
            self._drain()
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    # -- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._safely(self._read_generation)
            self._safely(self.on_start)
            self._safely(self.load_index)
        finally:
            self._loaded.set()
        now = time.monotonic()
        next_purge, next_poll, next_refresh = now + self.purge_interval_s, now + self.poll_interval_s, now
        next_refresh += self.refresh_interval_s
        while True:
            with self._cond:
                if not self._ops and not self._stopping and not self._recheck:
                    self._cond.wait(timeout=min(0.25, self.poll_interval_s))
                if self._ops and len(self._ops) < _BATCH and not self._stopping and not self._flushing:
                    # Gather what else arrives for a moment: one transaction for many answers.
                    self._cond.wait(timeout=_LINGER_S)
                stopping = self._stopping
                recheck, self._recheck = self._recheck, False
            if recheck:
                # Before the writes queued since: they come after the invalidation and are kept.
                self._safely(self.check_generation)
            self._drain()
            now = time.monotonic()
            if now >= next_poll or recheck:
                next_poll = now + self.poll_interval_s
                if not recheck:
                    self._safely(self.check_generation)
                self._safely(self.on_idle)
            if now >= next_purge:
                next_purge = now + self.purge_interval_s
                self._safely(self.purge_expired)
            if now >= next_refresh:
                next_refresh = now + self.refresh_interval_s
                self._safely(self._refresh_index)
            if stopping:
                self._drain()
                with self._cond:
                    self._done = self._enqueued
                    self._cond.notify_all()
                self._safely(self.on_close)
                return

    def _safely(self, work: Callable[[], Any]) -> None:
        # The writer thread must outlive any one failure: a dead writer would
        # leave every later write queued in memory for ever.
        try:
            work()
        except (StoreError, SQLAlchemyError) as exc:
            self.write_errors += 1
            log.warning("response cache: %s", exc)
        except Exception:
            self.write_errors += 1
            log.exception("response cache: housekeeping failed")

    def _drain(self) -> None:
        while True:
            with self._cond:
                ops, self._ops = self._ops[:_BATCH], self._ops[_BATCH:]
            if not ops:
                return
            try:
                self._apply(ops)
            except (StoreError, SQLAlchemyError) as exc:
                # A cache write that fails costs a future hit, never an answer:
                # log it and move on rather than hold work in memory.
                self.write_errors += 1
                log.warning("response cache: %d queued writes dropped: %s", len(ops), exc)
            except Exception:
                self.write_errors += 1
                log.exception("response cache: %d queued writes dropped", len(ops))
            finally:
                with self._cond:
                    self._done += len(ops)
                    self._cond.notify_all()

    def _apply(self, ops: list[tuple[str, Any]]) -> None:
        puts: dict[str, dict[str, Any]] = {}
        touches: list[dict[str, Any]] = []
        deletes: dict[str, list[str]] = {}
        for op, arg in ops:
            if op == "put":
                row = _row(arg)
                puts[row["key"]] = row
            elif op == "touch":
                touches.append({"k": arg[0], "at": arg[1]})
            else:
                keys, reason = arg
                deletes.setdefault(reason, []).extend(keys)
                for k in keys:
                    puts.pop(k, None)

        def work(conn: Connection) -> int:
            counts: dict[str, int] = {}
            for reason, keys in deletes.items():
                counts[reason] = _delete_keys(conn, keys)
            upsert_entries(conn, list(puts.values()))
            if puts and held_generation(conn) != self.generation:
                # `ax cache clear` or `invalidate` committed after these answers were queued (and
                # may have removed them already): they are not written back. No invalidation can
                # commit between this read and this commit, so one that comes later removes them.
                _delete_keys(conn, list(puts))
                puts.clear()
                self._recheck = True
            touch_entries(conn, touches)
            add_counters(conn, counts)
            return sum(counts.values())

        self.store.run(work)
        if puts:
            if self._bytes_estimate is not None:
                self._bytes_estimate += sum(r["size"] for r in puts.values())
            self.enforce_bound()

    # -- maintenance (writer thread, or tests directly) ------------------------------------------

    def total_bytes(self) -> int:
        """Bytes of every stored entry (an exact count)."""
        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.sum(_T.c.size), 0))).scalar_one())

    def enforce_bound(self) -> int:
        """Evict least recently hit entries until the table fits ``max_bytes``; returns how many."""
        if not self.max_bytes:
            return 0
        if self._bytes_estimate is not None and self._bytes_estimate <= self.max_bytes:
            return 0
        total = self.total_bytes()
        evicted: list[str] = []

        def work(conn: Connection) -> None:
            nonlocal total
            while total > self.max_bytes:
                victims = conn.execute(
                    select(_T.c.key, _T.c.size).order_by(_T.c.last_hit_at, _T.c.created_at).limit(256)
                ).all()
                if not victims:
                    break
                chosen: list[str] = []
                for key, size in victims:
                    if total <= self.max_bytes:
                        break
                    chosen.append(key)
                    total -= int(size)
                conn.execute(delete(_T).where(_T.c.key.in_(chosen)))
                evicted.extend(chosen)
            add_counters(conn, {"evictions": len(evicted)})

        self.store.run(work)
        self._bytes_estimate = total
        if evicted:
            self.on_removed(evicted)
        return len(evicted)

    def purge_expired(self) -> int:
        """Remove entries whose time is up; returns how many."""
        now = self.clock.now()
        gone: list[str] = []

        def work(conn: Connection) -> None:
            cond = (_T.c.expires_at.is_not(None)) & (_T.c.expires_at <= now)
            gone.extend(k for (k,) in conn.execute(select(_T.c.key).where(cond)))
            if gone:
                conn.execute(delete(_T).where(cond))
                add_counters(conn, {"expirations": len(gone)})

        self.store.run(work)
        # Other processes write too: count the bytes afresh at the next write.
        self._bytes_estimate = None
        if gone:
            self.on_removed(gone)
        return len(gone)

    def load_index(self) -> int:
        """Hand every live stored vector of this embedder to ``on_index_rows``; returns how many."""
        return self._load(0.0)

    def _refresh_index(self) -> None:
        self._load(self._watermark)

    def _load(self, since: float) -> int:
        if self.embedder is None:
            return 0
        now = self.clock.now()
        live = (
            (_T.c.embedder == self.embedder) & _T.c.vector.is_not(None) & (_T.c.created_at >= since)
            & ((_T.c.expires_at.is_(None)) | (_T.c.expires_at > now))
        )
        cols = (_T.c.key, _T.c.partition, _T.c.created_at, _T.c.expires_at, _T.c.turns, _T.c.vector)
        count = 0
        with self.store.engine.connect() as conn:
            # Keys first: most entries written since the last look are this process's
            # own, already indexed; only the others' vectors are read.
            found = conn.execute(select(_T.c.key, _T.c.created_at).where(live)).all()
            if not since:
                self.on_live_keys({k for k, _ in found})
            if found:
                self._watermark = max(self._watermark, max(float(c) for _, c in found))
            wanted = [k for k, _ in found if not self.indexed(k)]
            for i in range(0, len(wanted), _READ_CHUNK):
                part = conn.execute(select(*cols).where(_T.c.key.in_(wanted[i : i + _READ_CHUNK]))).all()
                rows = [IndexRow(k, p, c, e or 0.0, t, v) for k, p, c, e, t, v in part]
                count += len(rows)
                if rows:
                    self.on_index_rows(rows)
        return count

    def _read_generation(self) -> None:
        def work(conn: Connection) -> None:
            ensure_counter(conn, "generation")  # a row the writer locks (PostgreSQL) when it checks it
            self.generation = read_counters(conn)["generation"]

        self.store.run(work)

    def check_generation(self) -> bool:
        """Reset the cache's memory if another process invalidated entries; True if it did."""
        with self.store.engine.connect() as conn:
            current = read_counters(conn).get("generation", 0)
        if current == self.generation:
            return False
        self.generation = current
        self._bytes_estimate = None
        self.on_reset()
        self._watermark = 0.0
        self.load_index()
        return True

    def recheck(self) -> None:
        """Entries were invalidated on this machine (the cache's marker moved): answers queued until now
        are not written (any may be one the invalidation removed), and the writer reads the generation
        before it writes what comes after."""
        with self._cond:
            kept = [op for op in self._ops if op[0] != "put"]
            self._done += len(self._ops) - len(kept)
            self._ops = kept
            self._recheck = True
            self._cond.notify_all()

    def counters(self) -> dict[str, int]:
        """The stored running totals (evictions, expirations, corrupt, invalidated, generation)."""
        with self.store.engine.connect() as conn:
            return read_counters(conn)


def _delete_keys(conn: Connection, keys: list[str]) -> int:
    removed = 0
    for i in range(0, len(keys), 500):
        removed += conn.execute(delete(_T).where(_T.c.key.in_(keys[i : i + 500]))).rowcount or 0
    return removed


def _row(put: _Put) -> dict[str, Any]:
    e = put.entry
    body = encode_response(e.response)
    guards = encode_guards(e.guards) if e.guards is not None else None
    vector = np.ascontiguousarray(put.vectors, dtype=np.float32).tobytes() if put.vectors is not None else None
    size = len(body) + (len(vector) if vector else 0) + (len(guards) if guards else 0) + 300
    return {
        "key": e.key,
        "partition": e.partition,
        "scope": e.scope[:320],
        "user": e.user[:256],
        "model": e.model[:256],
        "provider": (e.response.provider or "")[:128],
        "served_model": (e.response.model or "")[:256],
        "created_at": e.created_at,
        "expires_at": e.expires_at or None,
        "last_hit_at": e.created_at,
        "hits": 0,
        "cost_nanos": e.cost_nanos,
        "size": size,
        "turns": len(put.vectors) if put.vectors is not None else (len(e.guards) if e.guards else 1),
        "embedder": put.embedder if put.vectors is not None else None,
        "body": body,
        "vector": vector,
        "guards": guards,
    }
