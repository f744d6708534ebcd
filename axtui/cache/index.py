"""The semantic index: unit vectors in numpy matrices, one per partition.

A partition holds the entries that may answer each other at all: the same
requested model, answer-changing parameters, scope and shape of
conversation. A lookup scans only its partition.

Each row is a conversation: the unit vectors of its turns, each scaled by
1/sqrt(turns) and laid end to end, so the dot product of two rows is the
mean cosine of their turns, and each turn's cosine is recoverable from the
row's slices.

Search is exact, in two stages, and usually reads about half the bytes of
a plain matrix product: stage one multiplies the first half of every row
(float32, BLAS); since ``q·v = q1·v1 + q2·v2 <= q1·v1 + |q2||v2|``
(Cauchy-Schwarz), a row whose bound is under the threshold cannot match and
is skipped; only the rows left get their second half multiplied. When most
rows survive the bound (a partition of near-identical prompts, as a
benchmark or a templated workload sends), the second half is multiplied for
the whole partition in BLAS chunks instead of gathered row by row.

Both halves are float32. The second half used to be float16 to save a
quarter of the memory, but numpy converts float16 without SIMD (~1 ns a
number): a partition of 3,500 near-duplicates cost 0.6 ms a search in the
conversion alone, against 0.05 ms for the float32 product. Measured by
benchmarks/bench_cache.py: about 2 ms at 100k rows of 256 dimensions on one
core.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["Candidate", "VectorIndex", "conversation_vector"]

# Rows per matrix product. OpenBLAS spreads a larger product over threads,
# and when other processes share the CPU those threads wait on each other:
# measured on a loaded 2-core machine, 10k rows took 22 ms in one product
# and 0.2 ms in chunks of this size, which BLAS runs on the calling thread.
_CHUNK = 2048


def conversation_vector(turns: np.ndarray) -> np.ndarray:
    """One row for a conversation from its turns' unit vectors ``(turns, dim)``."""
    t = np.asarray(turns, dtype=np.float32)
    return np.ascontiguousarray((t / np.sqrt(t.shape[0])).reshape(-1), dtype=np.float32)


@dataclass(slots=True)
class Candidate:
    """A row that may answer a query: its key and how similar it is."""

    key: str
    mean: float
    #: The lowest cosine of any turn: the conversation is as similar as its least similar turn.
    min_turn: float


class _Partition:
    """Rows of one width, grown by half again when full, removed by moving the last row in."""

    # No instance dict: an index holds one of these per partition, and each object
    # the cyclic collector tracks costs it time on every pass.
    __slots__ = ("a1", "a2", "created", "expires", "half", "keys", "n", "norm2", "rows", "turns", "width")

    def __init__(self, width: int, turns: int) -> None:
        self.width = width
        self.turns = turns
        self.half = width // 2
        self.n = 0
        # Most partitions hold one entry (prompts differ in their numbers): start small.
        cap = 1
        self.a1 = np.zeros((cap, self.half), dtype=np.float32)
        self.a2 = np.zeros((cap, width - self.half), dtype=np.float32)
        self.norm2 = np.zeros(cap, dtype=np.float32)
        self.expires = np.zeros(cap, dtype=np.float64)
        self.created = np.zeros(cap, dtype=np.float64)
        self.keys: list[str] = []
        self.rows: dict[str, int] = {}

    def _grow(self) -> None:
        cap = self.a1.shape[0]
        cap += max(1, cap // 2)  # growing by half wastes at most a third

        def bigger(a: np.ndarray) -> np.ndarray:
            out = np.zeros((cap, *a.shape[1:]), dtype=a.dtype)
            out[: self.n] = a[: self.n]
            return out

        self.a1, self.a2 = bigger(self.a1), bigger(self.a2)
        self.norm2, self.expires, self.created = bigger(self.norm2), bigger(self.expires), bigger(self.created)

    def put(self, key: str, vec: np.ndarray, created: float, expires: float) -> None:
        row = self.rows.get(key)
        if row is None:
            if self.n == self.a1.shape[0]:
                self._grow()
            row = self.n
            self.n += 1
            self.keys.append(key)
            self.rows[key] = row
        self.a1[row] = vec[: self.half]
        second = vec[self.half :]
        self.a2[row] = second
        # Not np.linalg.norm: its BLAS call lets go of the GIL, and then a
        # background thread may hold up the event loop for milliseconds.
        self.norm2[row] = math.hypot(*second.tolist())
        self.created[row] = created
        self.expires[row] = expires

    def remove(self, key: str) -> bool:
        row = self.rows.pop(key, None)
        if row is None:
            return False
        last = self.n - 1
        if row != last:
            moved = self.keys[last]
            self.a1[row] = self.a1[last]
            self.a2[row] = self.a2[last]
            self.norm2[row] = self.norm2[last]
            self.created[row] = self.created[last]
            self.expires[row] = self.expires[last]
            self.keys[row] = moved
            self.rows[moved] = row
        self.keys.pop()
        self.n = last
        return True

    def search(self, q: np.ndarray, threshold: float, now: float, min_created: float, k: int) -> list[Candidate]:
        n = self.n
        if n == 0:
            return []
        q1 = q[: self.half]
        q2 = q[self.half :]
        s1 = np.empty(n, dtype=np.float32)
        for i in range(0, n, _CHUNK):
            j = min(n, i + _CHUNK)
            np.matmul(self.a1[i:j], q1, out=s1[i:j])
        bound = s1 + self.norm2[:n] * float(np.linalg.norm(q2))
        rows = np.flatnonzero(bound >= threshold - 1e-3)
        if rows.size == 0:
            return []
        exp = self.expires[rows]
        alive = ((exp == 0) | (exp > now)) & (self.created[rows] >= min_created)
        rows = rows[alive]
        if rows.size == 0:
            return []
        if rows.size * 4 > n:
            # Most rows survived the bound: BLAS over contiguous chunks beats a row gather.
            s2 = np.empty(n, dtype=np.float32)
            for i in range(0, n, _CHUNK):
                j = min(n, i + _CHUNK)
                np.matmul(self.a2[i:j], q2, out=s2[i:j])
            mean = s1[rows] + s2[rows]
        else:
            mean = s1[rows] + self.a2[rows] @ q2
        keep = mean >= threshold - 1e-6
        rows, mean = rows[keep], mean[keep]
        if rows.size == 0:
            return []
        order = np.argsort(-mean)[:k]
        # Per-turn cosines: rows are turns scaled by 1/sqrt(t), so each turn's
        # slice dotted with the query's slice is cosine / t.
        best = rows[order]
        full = np.concatenate([self.a1[best], self.a2[best]], axis=1).reshape(len(order), self.turns, -1)
        per_turn = np.einsum("ktd,td->kt", full, q.reshape(self.turns, -1)) * self.turns
        mins = per_turn.min(axis=1)
        return [
            Candidate(self.keys[int(rows[i])], float(mean[i]), float(m))
            for i, m in zip(order, mins, strict=True)
        ]

    def nbytes(self) -> int:
        arrays = (self.a1, self.a2, self.norm2, self.expires, self.created)
        return sum(a.nbytes for a in arrays) + 120 * len(self.keys)


class VectorIndex:
    """Conversation vectors by partition; thread-safe.

    Args:
        k: how many candidates a search returns at most, best first.
    """

    def __init__(self, k: int = 8) -> None:
        self.k = k
        self._parts: dict[str, _Partition] = {}
        self._where: dict[str, str] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def add(self, partition: str, key: str, turns: np.ndarray, *, created: float, expires: float) -> None:
        """Index one conversation.

        Args:
            partition: what the entry may be compared with (`axtui.cache.keys.partition_key`).
            key: the entry's cache key.
            turns: the unit vectors of its turns, shape ``(turns, dim)``.
            created: when it was stored (epoch seconds).
            expires: when it expires (epoch seconds; 0 for never).
        """
        vec = conversation_vector(turns)
        nturns = int(np.asarray(turns).shape[0])
        with self._lock:
            old = self._where.get(key)
            if old is not None and old != partition:
                self._parts[old].remove(key)
            part = self._parts.get(partition)
            if part is None or part.width != vec.shape[0]:
                # A different width in the same partition means another
                # embedder's vectors: the new space replaces the old.
                part = self._parts[partition] = _Partition(vec.shape[0], nturns)
            part.put(key, vec, created, expires)
            self._where[key] = partition

    def remove(self, key: str) -> bool:
        """Forget one entry; False when it was not indexed."""
        with self._lock:
            partition = self._where.pop(key, None)
            if partition is None:
                return False
            part = self._parts[partition]
            part.remove(key)
            if part.n == 0:
                del self._parts[partition]
            return True

    def remove_many(self, keys: Iterable[str]) -> int:
        """Forget several entries; returns how many were indexed."""
        return sum(self.remove(k) for k in keys)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._parts.clear()
            self._where.clear()

    def search(
        self, partition: str, turns: np.ndarray, threshold: float, *, now: float, min_created: float = 0.0
    ) -> list[Candidate]:
        """Live entries of ``partition`` whose mean turn cosine is at least ``threshold``, best first.

        Args:
            partition: the query's partition.
            turns: the query's turn vectors, shape ``(turns, dim)``.
            threshold: the least mean cosine worth returning.
            now: the time, for expiry (epoch seconds).
            min_created: ignore entries stored before this (a request's ``ttl=``).
        """
        q = conversation_vector(turns)
        with self._lock:
            part = self._parts.get(partition)
            if part is None or part.width != q.shape[0]:
                return []
            return part.search(q, threshold, now, min_created, self.k)

    def work(self, partition: str) -> int:
        """How many numbers a search of ``partition`` reads (rows times width)."""
        part = self._parts.get(partition)
        return part.n * part.width if part is not None else 0

    def nbytes(self) -> int:
        """Memory held by the vectors and their bookkeeping (approximate)."""
        with self._lock:
            return sum(p.nbytes() for p in self._parts.values()) + 150 * len(self._where)
