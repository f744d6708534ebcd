"""`Indexer`: keeps a semantic index held in the gateway's own process: adds in batches off the loop, snapshots.

(With the built-in embedder the index lives in a worker process instead,
and `axtui.cache.worker.SemanticWorker` plays this part; this one serves
an embedder called through the gateway.)

- Answers to index are queued (at most ``max_pending``; more are refused,
  and the caller counts them) and added by one thread in batches: waking a
  thread costs the event loop ~0.1 ms on a busy machine, more than an add,
  so it is paid once per batch. The thread lets a batch gather for
  `LINGER_S`: this process finds a new answer by meaning that much later
  (by its exact key at once, from the memory tier).
- Whatever leaves the index because it is full leaves the memory tier too.
- The store tier's writer thread calls `index_rows` (entries other
  processes stored, or all of them at start), `load_snapshot` first,
  `keep_only` after its first look at the store, `maybe_snapshot` about
  once a second and `save_snapshot` on close. Start-up loads the snapshot
  instead of rebuilding the graph (bench_cache.py --startup).
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from axtui.cache.entry import CorruptEntry, Entry, decode_vectors
from axtui.cache.index import VectorIndex
from axtui.cache.memory import MemoryTier
from axtui.cache.persist import IndexRow

__all__ = ["LINGER_S", "SNAPSHOT_INTERVAL_S", "Indexer", "SnapshotKeeper"]

log = logging.getLogger(__name__)

#: How long the indexer lets answers gather before adding them.
LINGER_S = 0.02
#: A snapshot is written at most this often (and on close), when entries changed.
SNAPSHOT_INTERVAL_S = 600.0


class SnapshotKeeper(abc.ABC):
    """The index snapshot's life, wherever the index lives: loaded first at start, pruned once the
    store says what it still holds, saved now and then (`SNAPSHOT_INTERVAL_S`) and on close."""

    def __init__(self, snapshot_path: Path | None) -> None:
        self.snapshot_path = snapshot_path
        self._changes = 0
        self._saved_at = time.monotonic()
        #: Keys the snapshot brought, until the store has said which of them still exist.
        self._from_snapshot: list[str] = []

    @abc.abstractmethod
    def _restore(self, path: Path) -> list[str]:
        """Load the snapshot at ``path``; the keys it brought. Raises OSError, ValueError or KeyError."""

    @abc.abstractmethod
    def _save(self, path: Path) -> None:
        """Write the snapshot to ``path``. Raises OSError."""

    @abc.abstractmethod
    def _remove(self, keys: list[str]) -> None:
        """Take ``keys`` out of the index."""

    def keep_only(self, live: set[str]) -> None:
        """Drop entries of the snapshot the store no longer holds (evicted, expired, cleared since)."""
        gone = [k for k in self._from_snapshot if k not in live]
        self._from_snapshot = []
        if gone:
            self._remove(gone)
            self._changes += len(gone)

    def load_snapshot(self) -> None:
        """Start from the last snapshot (the store then adds what is newer and drops what is gone)."""
        path = self.snapshot_path
        if path is None or not path.exists():
            return
        try:
            self._from_snapshot = self._restore(path)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("response cache: the index snapshot %s cannot be read (%s); rebuilding from the store",
                        path, exc)

    def maybe_snapshot(self) -> None:
        """Save a snapshot if entries changed and the last is `SNAPSHOT_INTERVAL_S` old."""
        if self._changes and time.monotonic() - self._saved_at >= SNAPSHOT_INTERVAL_S:
            self.save_snapshot()

    def save_snapshot(self) -> None:
        """Save a snapshot now (if anything changed, or there is none)."""
        path = self.snapshot_path
        if path is None or (not self._changes and path.exists()):
            return
        self._changes = 0
        self._saved_at = time.monotonic()
        try:
            self._save(path)
        except OSError as exc:
            log.warning("response cache: writing the index snapshot %s failed (%s)", path, exc)


class Indexer(SnapshotKeeper):
    """Adds answers to ``index`` off the event loop, and saves and loads its snapshot.

    Args:
        index: the semantic index.
        memory: the memory tier (entries evicted from the index leave it too).
        snapshot_path: where the snapshot lives (None: no snapshots).
        max_pending: the most answers waiting to be added.
    """

    def __init__(self, index: VectorIndex, memory: MemoryTier, snapshot_path: Path | None, max_pending: int) -> None:
        super().__init__(snapshot_path)
        self.index = index
        self.memory = memory
        self.max_pending = max_pending
        self._adds: deque[tuple[Entry, np.ndarray]] = deque()
        self._cond = threading.Condition()
        self._queued = self._added = 0
        self._stopping = False
        #: Started with the first answer to index.
        self._thread = threading.Thread(target=self._run, name="ax-cache-indexer", daemon=True)

    # -- the event loop's side -----------------------------------------------------------------

    def add(self, entry: Entry, vectors: np.ndarray) -> bool:
        """Queue ``entry`` to be indexed; False (not queued) when the queue is full or closed."""
        with self._cond:
            if len(self._adds) >= self.max_pending or self._stopping:
                return False
            self._adds.append((entry, vectors))
            self._queued += 1
            if self._thread.ident is None:
                self._thread.start()
            if len(self._adds) == 1:
                self._cond.notify_all()
            return True

    @property
    def behind(self) -> bool:
        """Whether answers queued so far are not all indexed yet."""
        return self._added < self._queued

    def wait(self, timeout: float = 30.0) -> None:
        """Block until every answer queued so far is indexed (call it off the event loop)."""
        with self._cond:
            target = self._queued
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._added >= target or not self._thread.is_alive(), timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Index what is queued and stop the thread (blocks; call it off the event loop)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._adds or self._stopping)
                if not self._adds and self._stopping:
                    return
                self._cond.wait(LINGER_S)  # let a batch gather
                batch = list(self._adds)
                self._adds.clear()
            for entry, vectors in batch:
                try:
                    evicted = self.index.add(entry.partition, entry.key, vectors, created=entry.created_at,
                                             expires=entry.expires_at)
                except Exception:
                    log.warning("response cache: indexing entry %s failed", entry.key[:12], exc_info=True)
                    continue
                self._changes += 1
                if evicted:
                    # The least recently used leave the index and the memory tier together.
                    self.memory.pop_many(evicted)
            with self._cond:
                self._added += len(batch)
                self._cond.notify_all()

    # -- the store writer's side ---------------------------------------------------------------

    def index_rows(self, rows: list[IndexRow]) -> None:
        """Index stored entries not indexed yet (grouped by shape: one call per group, on every core)."""
        groups: dict[tuple[int, ...], list[tuple[IndexRow, np.ndarray]]] = {}
        for r in rows:
            if r.key in self.index:
                continue
            try:
                vectors = decode_vectors(r.vector, r.turns)
            except CorruptEntry as exc:
                log.warning("response cache: vectors of entry %s are corrupt; it stays exact-only (%s)",
                            r.key[:12], exc)
                continue
            groups.setdefault(vectors.shape, []).append((r, vectors))
        for group in groups.values():
            unique = list({r.key: (r, v) for r, v in group}.values())
            evicted = self.index.add_many(
                [r.partition for r, _ in unique], [r.key for r, _ in unique], np.stack([v for _, v in unique]),
                created=np.array([r.created_at for r, _ in unique]), expires=np.array([r.expires_at for r, _ in unique]),
            )
            self._changes += len(unique)
            if evicted:
                self.memory.pop_many(evicted)

    def _restore(self, path: Path) -> list[str]:
        return self.index.restore(path)

    def _save(self, path: Path) -> None:
        self.index.save(path)

    def _remove(self, keys: list[str]) -> None:
        self.index.remove_many(keys)
