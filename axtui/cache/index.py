"""The semantic index: an approximate nearest-neighbour graph (HNSW), candidates re-checked exactly.

A lookup costs about the same at 1k and 1M entries: the graph
(`usearch <https://github.com/unum-cloud/usearch>`_, HNSW) returns a few
candidates in O(log n), and only those are checked exactly: partition,
expiry, and the cosine of every turn. An exact scan grows with the cache
(at ~39k entries of one partition it collapsed the gateway), so precision
stays what the exact check says and only recall can be lost; the
benchmark reports it against brute force (benchmarks/bench_cache.py).

Why usearch, measured on this machine at the built-in embedder's 256
dimensions, 100k entries, M=16, one search thread (2 cores shared by other
work, so the tails are noisy): usearch p50 0.30 ms / p99 0.44 ms, recall
99.9 %; hnswlib p50 0.13 ms / p99 2.0 ms, recall 100 %; faiss-cpu (HNSWFlat)
p50 0.15 ms / p99 5.0 ms, recall 100 %. usearch had the tightest tail, and
it saves and restores an index as one buffer (start-up loads a snapshot
instead of rebuilding: building runs at ~3-4k entries/s with any of the
three) and removes entries in place.

Rows. Each entry is a conversation: the unit vectors of its turns, each
scaled by 1/sqrt(turns) and laid end to end, so the dot product of two rows
is the mean cosine of their turns, and each turn's cosine is recoverable
from the row's slices. Rows of different widths (turn counts) cannot be
compared, so there is one graph per width: a handful, never one per
partition.

Partitions are a filter, not an object each. A partition (model,
answer-changing parameters, scope, shape of conversation, guard classes)
hashes to a "tag": `TAG_DIMS` extra dimensions of +-1/sqrt(TAG_DIMS), signs
from the hash. The graph's inner product is the mean cosine plus the
tags' product: exactly 1 within a partition, about 0 +- 0.18 between two
(a sum of 32 random signs), so the rows of the query's partition rank
above other partitions' rows and the graph searches, in effect, the
query's partition; the exact re-check drops any other partition's row.
(A tag of 64 signed one-hot classes was measured first: with 1,000
partitions, 16 shared each class and recall of hits fell to 93 %.)

Two copies of each row, for two jobs. The graph holds its vectors in
bfloat16: it only proposes candidates, and comparing half the bytes makes
a search and an add cost about half of float32's (at 100k rows, one
thread: a search 0.26 -> 0.13 ms, recall unchanged at ~99.3 %). The
float32 rows the embedder made sit beside it in one matrix per width
(`_Shelf`), and the exact check reads only those: bfloat16 is off by
~1e-3 in a cosine, which would move answers across the threshold.

Memory is bounded: at ``capacity`` entries the least recently used (stored
or hit) leave, and `add` returns their keys so the memory tier drops them
too. Thread-safe: the graph is only touched under a lock, and the service
searches and adds off the event loop. usearch lets go of the interpreter
while it searches or adds, so the indexer's thread runs beside the loop.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
import zlib
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from usearch.index import Index

from axtui.locations import data_dir
from axtui.store import Store

__all__ = ["TAG_DIMS", "Candidate", "GraphShape", "SnapshotInfo", "VectorIndex", "graph_shape", "snapshot_info",
           "snapshot_path"]

#: Extra dimensions carrying a partition's tag (+-1/sqrt(TAG_DIMS) each).
TAG_DIMS = 32
_BITS = np.arange(TAG_DIMS, dtype=np.uint64)
#: The graph's element type (see "Two copies of each row" above).
_GRAPH_DTYPE = "bf16"


class GraphShape(NamedTuple):
    """How densely the graph is linked: neighbours per node, and the candidate lists when adding and searching."""

    connectivity: int
    expansion_add: int
    expansion_search: int


#: Measured on the benchmark's prompts (bench_cache.py: one partition, bfloat16, one thread; CPU
#: time per search, recall of the nearest entry against brute force). At 100k rows the sparse
#: graph searches in 0.17 ms p50 / 0.33 ms p99 for 99.5 %; at 1M rows its recall falls to
#: 95.7 % (and (24, 96, 64) reaches 98.2 %). The dense graph holds 99.2 % at 1M rows for
#: 0.34 / 0.57 ms, but each add costs about three times as much, so it is kept for indexes
#: allowed to grow past `_DENSE_ABOVE` entries.
_SPARSE = GraphShape(16, 64, 48)
_DENSE = GraphShape(32, 160, 64)
_DENSE_ABOVE = 250_000
#: Rows that left are taken out of the graph this many at a time (see `_Shelf.bury`).
_REMOVE_BATCH = 64


def graph_shape(capacity: int) -> GraphShape:
    """The graph for an index of at most ``capacity`` entries (0: unbounded)."""
    return _DENSE if capacity == 0 or capacity > _DENSE_ABOVE else _SPARSE


#: Bumped when the snapshot's layout changes (an older snapshot is rebuilt from the store).
_SNAPSHOT_FORMAT = 2
#: Python bookkeeping per entry (key string, row record, dict and LRU slots), for `nbytes`.
_PY_BYTES_PER_ENTRY = 420


@functools.lru_cache(maxsize=4096)
def _tag(partition: str) -> np.ndarray:
    """The partition's tag: unit length, signs from a stable hash of its name (read-only: it is shared)."""
    bits = np.uint64(zlib.crc32(partition.encode()))
    signs = ((bits >> _BITS) & np.uint64(1)).astype(np.float32) * 2 - 1
    tag = signs / np.float32(np.sqrt(TAG_DIMS))
    tag.flags.writeable = False
    return tag


@dataclass(slots=True)
class Candidate:
    """A row that may answer a query: its key and how similar it is."""

    key: str
    mean: float
    #: The lowest cosine of any turn: the conversation is as similar as its least similar turn.
    min_turn: float


class _Row(NamedTuple):
    """One entry's bookkeeping (immutable: a new label makes a new row)."""

    key: str
    partition: str
    #: The entry's id in its width's graph (never reused).
    label: int
    width: int
    turns: int
    created: float
    expires: float
    #: Its exact vector's row in its shelf's matrix (reused once the entry leaves).
    slot: int = -1


def _graph(width: int, shape: GraphShape) -> Index:
    return Index(ndim=width + TAG_DIMS, metric="ip", dtype=_GRAPH_DTYPE, connectivity=shape.connectivity,
                 expansion_add=shape.expansion_add, expansion_search=shape.expansion_search)  # fmt: skip


class _Shelf:
    """The rows of one width: a graph that proposes, and the exact vectors that decide.

    The graph holds its vectors in bfloat16 (half the bytes to compare, so
    a search and an add cost about half of float32's); the float32 vectors
    the embedder made are kept beside it, one matrix row per entry, and the
    exact check reads only those.
    """

    def __init__(self, width: int, graph: Index, vectors: np.ndarray | None = None) -> None:
        self.width = width
        self.graph = graph
        self.vectors = vectors if vectors is not None else np.empty((64, width), dtype=np.float32)
        #: Slots below this were used at some time; freed ones wait in `free`.
        self.top = 0 if vectors is None else vectors.shape[0]
        self.free: list[int] = []
        #: Labels of rows that left, still in the graph (a search skips them: they have no row).
        self.dead: list[int] = []

    def take(self, n: int) -> np.ndarray:
        """``n`` free slots (the matrix grows by doubling when it must)."""
        reused = [self.free.pop() for _ in range(min(n, len(self.free)))]
        fresh = n - len(reused)
        if self.top + fresh > self.vectors.shape[0]:
            grown = np.empty((max(2 * self.vectors.shape[0], self.top + fresh), self.width), dtype=np.float32)
            grown[: self.top] = self.vectors[: self.top]
            self.vectors = grown
        slots = np.array(reused + list(range(self.top, self.top + fresh)), dtype=np.int64)
        self.top += fresh
        return slots

    def bury(self, label: int) -> None:
        """Take a label out of the graph, in batches: usearch's first add after a removal costs
        ~2 ms at 100k rows, whether one row or a hundred were removed (an index at its capacity
        removes one for every add: one by one, adding cost ten times as much)."""
        self.dead.append(label)
        if len(self.dead) >= _REMOVE_BATCH:
            self.flush()

    def flush(self) -> None:
        """Remove the dead labels from the graph now."""
        if self.dead:
            self.graph.remove(np.array(self.dead, dtype=np.uint64))
            self.dead.clear()

    def nbytes(self) -> int:
        return int(self.graph.memory_usage) + self.vectors.nbytes


class VectorIndex:
    """Conversation vectors in HNSW graphs (one per width), partitions as a filter; thread-safe.

    Args:
        k: how many candidates a search returns at most, best first.
        capacity: the most entries held (0: unbounded); the least recently used leave first.
    """

    def __init__(self, k: int = 8, capacity: int = 0) -> None:
        self.k = k
        self.capacity = capacity
        self.shape = graph_shape(capacity)
        #: Entries that left because the index was full.
        self.evictions = 0
        self._shelves: dict[int, _Shelf] = {}
        #: By key, least recently used first.
        self._rows: OrderedDict[str, _Row] = OrderedDict()
        self._by_label: dict[int, _Row] = {}
        self._sizes: dict[str, int] = {}
        self._next_label = 1
        self._lock = threading.Lock()
        #: Hits and removals asked for without taking the lock, applied by whoever takes it next:
        #: the event loop never waits for a search or an add on another thread.
        self._pending: deque[tuple[str, bool]] = deque()

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def add(self, partition: str, key: str, turns: np.ndarray, *, created: float, expires: float) -> list[str]:
        """Index one conversation; returns the keys evicted to make room (least recently used).

        Args:
            partition: what the entry may be compared with (`axtui.cache.keys.partition_key`).
            key: the entry's cache key.
            turns: the unit vectors of its turns, shape ``(turns, dim)``.
            created: when it was stored (epoch seconds).
            expires: when it expires (epoch seconds; 0 for never).
        """
        t = np.asarray(turns, dtype=np.float32)
        return self.add_many([partition], [key], t.reshape(1, *t.shape), created=np.array([created]),
                             expires=np.array([expires]), threads=1)  # fmt: skip

    def add_many(
        self, partitions: list[str], keys: list[str], turns: np.ndarray, *, created: np.ndarray, expires: np.ndarray,
        threads: int = 0,
    ) -> list[str]:
        """Index many conversations of one shape at once; returns the keys evicted (least recently used).

        Args:
            partitions: each entry's partition.
            keys: each entry's cache key.
            turns: their turns' unit vectors, shape ``(n, turns, dim)``.
            created: when each was stored.
            expires: when each expires (0: never).
            threads: threads the graph may use (0: all cores).
        """
        if len(set(keys)) != len(keys):
            raise ValueError("add_many takes each key once")
        t = np.asarray(turns, dtype=np.float32)
        n, nturns = t.shape[0], t.shape[1]
        if n == 0:
            return []
        width = nturns * t.shape[2]
        rows_vec = np.empty((n, width + TAG_DIMS), dtype=np.float32)
        rows_vec[:, :width] = (t / np.sqrt(nturns)).reshape(n, width)
        for i, p in enumerate(partitions):
            rows_vec[i, width:] = _tag(p)
        with self._lock:
            self._apply_pending()
            for key in keys:
                self._drop(key)
            shelf = self._shelves.get(width)
            if shelf is None:
                shelf = self._shelves[width] = _Shelf(width, _graph(width, self.shape))
            labels = np.arange(self._next_label, self._next_label + n, dtype=np.uint64)
            self._next_label += n
            slots = shelf.take(n)
            shelf.vectors[slots] = rows_vec[:, :width]
            shelf.graph.add(labels, rows_vec, threads=threads)
            for i, (key, part) in enumerate(zip(keys, partitions, strict=True)):
                row = _Row(key, part, int(labels[i]), width, nturns, float(created[i]), float(expires[i]),
                           int(slots[i]))  # fmt: skip
                self._rows[key] = row
                self._by_label[row.label] = row
                self._sizes[part] = self._sizes.get(part, 0) + 1
            evicted: list[str] = []
            while self.capacity and len(self._rows) > self.capacity:
                victim = next(iter(self._rows))
                self._drop(victim)
                evicted.append(victim)
            self.evictions += len(evicted)
            return evicted

    def touch(self, key: str) -> None:
        """Mark an entry as just used (a hit), so it leaves last; never waits for the lock."""
        self._pending.append((key, False))

    def discard(self, key: str) -> None:
        """Forget an entry soon (before the next search or add); never waits for the lock."""
        self._pending.append((key, True))

    def _apply_pending(self) -> None:
        pending = self._pending
        while pending:
            key, remove = pending.popleft()
            if remove:
                self._drop(key)
            elif key in self._rows:
                self._rows.move_to_end(key)

    def _drop(self, key: str) -> bool:
        row = self._rows.pop(key, None)
        if row is None:
            return False
        del self._by_label[row.label]
        shelf = self._shelves[row.width]
        shelf.bury(row.label)
        shelf.free.append(row.slot)
        left = self._sizes[row.partition] - 1
        if left:
            self._sizes[row.partition] = left
        else:
            del self._sizes[row.partition]
        return True

    def remove(self, key: str) -> bool:
        """Forget one entry; False when it was not indexed."""
        with self._lock:
            self._apply_pending()
            return self._drop(key)

    def remove_many(self, keys: Iterable[str]) -> int:
        """Forget several entries; returns how many were indexed."""
        with self._lock:
            self._apply_pending()
            return sum(self._drop(k) for k in keys)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._pending.clear()
            self._shelves.clear()
            self._rows.clear()
            self._by_label.clear()
            self._sizes.clear()

    def size(self, partition: str) -> int:
        """How many entries ``partition`` holds (a lookup skips embedding when none)."""
        return self._sizes.get(partition, 0)

    def search(
        self, partition: str, turns: np.ndarray, threshold: float, *, now: float, min_created: float = 0.0
    ) -> list[Candidate]:
        """Live entries of ``partition`` whose mean turn cosine is at least ``threshold``, best first.

        The graph proposes candidates; each is checked exactly (partition,
        expiry, age and every turn's cosine, from the float32 vectors), so a
        candidate returned is as similar as it says. An entry the graph fails
        to propose is missed (the recall the benchmark measures).

        Args:
            partition: the query's partition.
            turns: the query's turn vectors, shape ``(turns, dim)``.
            threshold: the least mean cosine worth returning.
            now: the time, for expiry (epoch seconds).
            min_created: ignore entries stored before this (a request's ``ttl=``).
        """
        with self._lock:
            return self._search(partition, turns, threshold, now, min_created)

    def try_search(
        self, partition: str, turns: np.ndarray, threshold: float, *, now: float, min_created: float = 0.0
    ) -> list[Candidate] | None:
        """`search` if no other thread holds the index right now, else None at once (never waits)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._search(partition, turns, threshold, now, min_created)
        finally:
            self._lock.release()

    def _search(
        self, partition: str, turns: np.ndarray, threshold: float, now: float, min_created: float
    ) -> list[Candidate]:
        # Called with the lock held.
        self._apply_pending()
        t = turns if turns.dtype == np.float32 else turns.astype(np.float32)
        nturns = t.shape[0]
        width = t.size
        shelf = self._shelves.get(width)
        if shelf is None or partition not in self._sizes:
            return []
        query = np.empty(width + TAG_DIMS, dtype=np.float32)
        if nturns == 1:
            query[:width] = t[0]
        else:
            np.multiply(t.reshape(-1), np.float32(1 / np.sqrt(nturns)), out=query[:width])
        query[width:] = _tag(partition)
        # Ask for more than k: the exact check may drop some.
        found = shelf.graph.search(query, self.k + 8, threads=1)
        by_label = self._by_label
        rows: list[_Row] = []
        for label in found.keys.tolist():
            row = by_label.get(label)
            if row is None or row.partition != partition:
                continue
            if (row.expires and row.expires <= now) or row.created < min_created:
                continue
            rows.append(row)
        if not rows:
            return []
        stored = shelf.vectors[[r.slot for r in rows]]
        if nturns == 1:
            mean = mins = stored @ t[0]
        else:
            # Rows hold each turn scaled by 1/sqrt(turns): times sqrt(turns) is each turn's cosine.
            per_turn = np.einsum("ktd,td->kt", stored.reshape(len(rows), nturns, -1), t) * np.float32(np.sqrt(nturns))
            mean = per_turn.mean(axis=1)
            mins = per_turn.min(axis=1)
        order = np.argsort(-mean)[: self.k].tolist()
        floor = threshold - 1e-6
        return [Candidate(rows[i].key, float(mean[i]), float(mins[i])) for i in order if mean[i] >= floor]

    def nbytes(self) -> int:
        """Memory held by the graphs, the exact vectors and the bookkeeping (approximate)."""
        with self._lock:
            held = sum(shelf.nbytes() for shelf in self._shelves.values())
            return held + _PY_BYTES_PER_ENTRY * len(self._rows)

    def bytes_per_entry(self) -> int:
        """`nbytes` per entry held (0 when empty)."""
        n = len(self._rows)
        return self.nbytes() // n if n else 0

    # -- snapshots: start-up loads one instead of rebuilding the graphs --------------------------

    def save(self, path: Path) -> int:
        """Write the index to ``path`` atomically (graphs, exact vectors and rows); returns how many entries."""
        with self._lock:
            self._apply_pending()
            rows = list(self._rows.values())
            arrays: dict[str, Any] = {
                "format": np.array([_SNAPSHOT_FORMAT], dtype=np.int64),
                "keys": np.array([r.key for r in rows], dtype="S64"),
                "partitions": np.array([r.partition for r in rows], dtype="S64"),
                "labels": np.array([r.label for r in rows], dtype=np.uint64),
                "widths": np.array([r.width for r in rows], dtype=np.int64),
                "turns": np.array([r.turns for r in rows], dtype=np.int64),
                "created": np.array([r.created for r in rows], dtype=np.float64),
                "expires": np.array([r.expires for r in rows], dtype=np.float64),
                "next_label": np.array([self._next_label], dtype=np.uint64),
            }
            for width, shelf in self._shelves.items():
                shelf.flush()
                buffer = shelf.graph.save()
                assert buffer is not None  # saved to memory, not to a path
                arrays[f"graph_{width}"] = np.frombuffer(bytes(buffer), dtype=np.uint8)
                # The exact vectors in the order of this width's rows: a load gives them slots 0..n-1.
                arrays[f"vectors_{width}"] = shelf.vectors[[r.slot for r in rows if r.width == width]]
        # One file per writer: the processes of `ax serve --workers N` share the path and may save at once.
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            # Readable by its owner only, like the store it indexes.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        return len(rows)

    def load(self, path: Path) -> int:
        """Load a snapshot written by `save`; returns how many entries it held.

        Entries added before the load (a call served while the snapshot was
        read) are kept, and win over the snapshot's entry of the same key.

        Raises:
            OSError: the file cannot be read.
            ValueError: the file is not a snapshot of this format.
        """
        with np.load(path, allow_pickle=False) as data:
            if "format" not in data.files or int(data["format"][0]) != _SNAPSHOT_FORMAT:
                raise ValueError(f"{path} was written by another version of ax")
            stored = [
                _Row(k.decode(), p.decode(), int(label), int(w), int(t), float(c), float(e))
                for k, p, label, w, t, c, e in zip(
                    data["keys"], data["partitions"], data["labels"], data["widths"], data["turns"],
                    data["created"], data["expires"], strict=True,
                )
            ]
            shelves: dict[int, _Shelf] = {}
            for name in data.files:
                if name.startswith("graph_"):
                    width = int(name[6:])
                    restored = Index.restore(data[name].tobytes())
                    if restored is None:
                        raise ValueError(f"{path}: graph {name} cannot be restored")
                    # A saved graph does not keep its candidate-list sizes: usearch's defaults would come back.
                    # (usearch defines both setters; its layout of the properties confuses mypy.)
                    restored.expansion_add = self.shape.expansion_add  # type: ignore[misc]
                    restored.expansion_search = self.shape.expansion_search  # type: ignore[misc]
                    vectors = np.array(data[f"vectors_{width}"], dtype=np.float32)
                    if vectors.ndim != 2 or vectors.shape[1] != width:
                        raise ValueError(f"{path}: the vectors of width {width} have shape {vectors.shape}")
                    shelves[width] = _Shelf(width, restored, vectors)
            next_label = int(data["next_label"][0])
        rows: list[_Row] = []
        seen: dict[int, int] = {}
        for r in stored:
            if r.width not in shelves:
                raise ValueError(f"{path}: a row's graph is missing")
            slot = seen.get(r.width, 0)
            seen[r.width] = slot + 1
            rows.append(r._replace(slot=slot))
        if any(shelf.top != seen.get(width, 0) for width, shelf in shelves.items()):
            raise ValueError(f"{path}: the vectors do not match the rows")
        with self._lock:
            self._apply_pending()
            kept = [(r, self._shelves[r.width].vectors[r.slot].copy()) for r in self._rows.values()]
            self._shelves = shelves
            self._rows = OrderedDict((r.key, r) for r in rows)
            self._by_label = {r.label: r for r in rows}
            self._sizes = {}
            for r in rows:
                self._sizes[r.partition] = self._sizes.get(r.partition, 0) + 1
            self._next_label = next_label
        for row, vec in kept:
            turns = vec.reshape(row.turns, -1) * np.float32(np.sqrt(row.turns))
            self.add(row.partition, row.key, turns, created=row.created, expires=row.expires)
        return len(rows)

    def restore(self, path: Path) -> list[str]:
        """`load` a snapshot, trimmed to ``capacity``; every key held, least recently used first.

        Raises:
            OSError, ValueError, KeyError: as `load` (the index is left empty).
        """
        try:
            self.load(path)
        except (OSError, ValueError, KeyError):
            self.clear()
            raise
        if self.capacity and len(self) > self.capacity:
            self.remove_many(self.held_keys()[: len(self) - self.capacity])
        return self.held_keys()

    def describe(self) -> str:
        """The graph's make, for files that depend on it (a benchmark's kept graph)."""
        m, a, e = self.shape
        return f"{_GRAPH_DTYPE}-m{m}-a{a}-s{e}-v{_SNAPSHOT_FORMAT}"

    def held_keys(self) -> list[str]:
        """Every key held, least recently used first."""
        with self._lock:
            self._apply_pending()
            return list(self._rows)


def snapshot_path(store: Store, embedder: str) -> Path | None:
    """Where the index snapshot of ``store``'s entries by ``embedder`` lives (None: an in-memory database).

    Beside a SQLite file; in the data dir, named by a hash of the URL, for another database.
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", embedder)[:64]
    if store.path is not None:
        return store.path.with_name(f"{store.path.name}.cache-index.{name}.npz")
    if store.url.startswith("sqlite"):
        return None
    digest = hashlib.sha256(store.url.encode()).hexdigest()[:16]
    return data_dir() / f"cache-index-{digest}.{name}.npz"


@dataclass(slots=True)
class SnapshotInfo:
    """What the newest index snapshot of a store holds (what a gateway's index held when it last wrote one)."""

    path: Path
    entries: int
    bytes: int
    written_at: float

    @property
    def bytes_per_entry(self) -> int:
        """File bytes per entry: vector, graph links and key (memory holds about as much)."""
        return self.bytes // self.entries if self.entries else 0


def snapshot_info(store: Store) -> SnapshotInfo | None:
    """The newest index snapshot of ``store`` (any embedder), or None when there is none or it is unreadable."""
    probe = snapshot_path(store, "x")
    if probe is None:
        return None
    found = sorted(probe.parent.glob(probe.name[: -len("x.npz")] + "*.npz"), key=lambda p: p.stat().st_mtime)
    for path in reversed(found):
        try:
            with np.load(path, allow_pickle=False) as data:
                entries = int(data["keys"].shape[0])
            st = path.stat()
        except (OSError, ValueError, KeyError):
            continue
        return SnapshotInfo(path, entries, st.st_size, st.st_mtime)
    return None
