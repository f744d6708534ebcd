"""`SemanticWorker`: the semantic cache's CPU work in a process of its own, beside the event loop.

With the built-in embedder, a semantic lookup is pure CPU: the guards'
features, the embedding, a search of the graph and its exact check (about
0.3 ms in the gateway's process, where it competed with the event loop for
the interpreter); keeping an answer adds an embedding and a graph insert.
Here they run in a child process (`axtui.cache._worker_child`) that holds
the index, so they use another core and never hold the loop: the loop
sends one datagram and takes one answer back (about 0.03 ms of its time).

Two socket pairs of datagrams (``SOCK_SEQPACKET``, one marshal tuple each):

- lookups, used by the event loop only: a lookup (``look``) or an answer to
  keep (``store``) is sent without waiting, and its reply resolves a future
  when the loop reads the socket; ``add``, ``touch`` and ``drop`` are not
  answered. A lookup that embedded its query answers with the vectors, so
  keeping the answer to a miss is one ``add`` (no second round trip);
- control, used by the store tier's writer thread (never the loop): stored
  vectors to index, snapshots, figures; one request at a time, answered.

The gateway's process keeps only which keys the worker holds (so the
store's refresh does not read this process's own rows back). Whatever the
worker's index evicts leaves the memory tier too.

A cache may lose a write, never hold up a call: a datagram the socket has
no room for is dropped (a lookup is then a miss, a store is not indexed
here and is picked up from the store later); a lookup the worker has not
answered in `LOOKUP_TIMEOUT_S` is a miss. A worker that dies is replaced:
until the new one has loaded the snapshot and the store's vectors, lookups
find less, and calls never fail.

Workers are forked by a fork server (``python -m axtui.cache._worker_child``,
one per gateway process, started with the first worker) that imported
what a worker needs once: a new worker starts in milliseconds, and nothing
of the gateway's threads or state is copied into it. A worker that dies
young again and again is restarted less and less often (up to every
`_MAX_BACKOFF_S`); meanwhile semantic lookups are misses.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import marshal
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from axtui.cache._worker_child import MAX_DATAGRAM, guards_from_wire
from axtui.cache.guards import GuardFeatures
from axtui.cache.indexer import SnapshotKeeper
from axtui.cache.persist import IndexRow

__all__ = ["LOOKUP_TIMEOUT_S", "Looked", "SemanticWorker", "Stored"]

log = logging.getLogger(__name__)

#: A lookup the worker has not answered by then is a miss (it is busy loading, or stuck).
LOOKUP_TIMEOUT_S = 0.25
#: How long an answer to keep may wait for the worker (then it is kept for exact matches only).
_STORE_TIMEOUT_S = 5.0
#: How long a control request may take (a bulk load of stored vectors, a snapshot).
_CONTROL_TIMEOUT_S = 120.0
#: Stored rows sent to the worker per datagram.
_ROWS_PER_MESSAGE = 512

#: A worker that ends sooner than this after it started counts as failing to start.
_YOUNG_S = 10.0
#: The longest wait before starting a worker again.
_MAX_BACKOFF_S = 30.0


class _ForkServer:
    """The process that forks this process's workers (started once, again if it ended)."""

    _lock = threading.Lock()
    _conn: socket.socket | None = None
    _proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def fork(cls, lookups: socket.socket, control: socket.socket, capacity: int, dim: int) -> int:
        """A new worker serving the two sockets; its pid.

        Raises:
            OSError: the fork server cannot be started or did not answer.
        """
        request = marshal.dumps((capacity, dim))
        with cls._lock:
            for _ in range(2):
                if cls._conn is None or cls._proc is None or cls._proc.poll() is not None:
                    cls._start()
                assert cls._conn is not None
                try:
                    socket.send_fds(cls._conn, [request], [lookups.fileno(), control.fileno()])
                    answer = cls._conn.recv(64)
                    if answer:
                        return int(marshal.loads(answer))
                except (OSError, ValueError, EOFError):
                    pass
                cls._conn = None
            raise OSError("the semantic worker's fork server does not answer")

    @classmethod
    def _start(cls) -> None:
        if cls._conn is not None:
            cls._conn.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Small matrix products only: one BLAS thread each is plenty (and cheaper to fork).
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        cls._proc = subprocess.Popen(
            [sys.executable, "-m", "axtui.cache._worker_child", str(theirs.fileno())], pass_fds=[theirs.fileno()],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        theirs.close()
        # The first worker waits for the server's imports (about half a second).
        ours.settimeout(60)
        cls._conn = ours


class Stored:
    """An answer kept: its partition, guards and turn vectors (None: no words to compare by meaning)."""

    __slots__ = ("guards", "partition", "vectors")

    def __init__(self, partition: str, guards: tuple[GuardFeatures, ...], vectors: np.ndarray | None) -> None:
        self.partition = partition
        self.guards = guards
        self.vectors = vectors


class Looked:
    """A lookup's answer: the partition and guards of the query, and the entries that may answer it."""

    __slots__ = ("candidates", "guards", "kept", "partition")

    def __init__(self, partition: str, guards: tuple[GuardFeatures, ...], candidates: list[tuple[str, float]],
                 kept: Stored | None) -> None:
        self.partition = partition
        self.guards = guards
        #: (key, least similar turn's cosine), best first.
        self.candidates = candidates
        #: What keeping this query's answer takes, when the worker embedded it (then `add` needs no answer).
        self.kept = kept


class _Channel:
    """One worker process and its two sockets."""

    def __init__(self, capacity: int, dim: int) -> None:
        self.lookups, theirs_l = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control, theirs_c = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for s in (self.lookups, self.control, theirs_l, theirs_c):
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * MAX_DATAGRAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MAX_DATAGRAM)
        self.started = time.monotonic()
        #: Set once the worker is known to be gone, or never started.
        self.dead = False
        #: Set once its replacement is on its way.
        self.replacing = False
        try:
            self.pid = _ForkServer.fork(theirs_l, theirs_c, capacity, dim)
        except OSError:
            self.pid = 0
            self.dead = True
        finally:
            theirs_l.close()
            theirs_c.close()
        self.lookups.setblocking(False)
        self.control.setblocking(False)

    def close(self, timeout: float) -> None:
        """Close the sockets (the worker ends when it sees that) and wait for it to be gone."""
        for s in (self.lookups, self.control):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        deadline = time.monotonic() + timeout
        while self.pid and _running(self.pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(OSError):
                    os.kill(self.pid, signal.SIGKILL)
                return
            time.sleep(0.01)


def _vectors(blob: bytes, turns: int) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32).reshape(turns, -1)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SemanticWorker(SnapshotKeeper):
    """The semantic index and a lookup's CPU work, in a child process (see the module docstring).

    Args:
        capacity: the most entries the index holds (0: unbounded); the least recently used leave.
        dim: the built-in embedder's dimension.
        snapshot_path: where the index's snapshot lives (None: no snapshots).
        on_evicted: called with the keys the index let go (from the loop or the writer thread).
    """

    def __init__(
        self, capacity: int, dim: int, snapshot_path: Path | None, on_evicted: Callable[[list[str]], None]
    ) -> None:
        super().__init__(snapshot_path)
        self.capacity = capacity
        self.dim = dim
        self.on_evicted = on_evicted
        #: The keys the worker holds, as far as this process knows.
        self.held: set[str] = set()
        #: Lookups and stores the worker did not take or answer in time (the socket was full, or it was busy or gone).
        self.dropped = 0
        #: Workers started after the first died.
        self.restarts = 0
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        #: The event loop reading a worker's lookup socket: the loop, that worker's channel, the socket's fd.
        self._reading: tuple[asyncio.AbstractEventLoop, _Channel, int] | None = None
        self._control_lock = threading.Lock()
        #: Set when a new worker replaced a dead one: the writer thread loads it up.
        self.reload = threading.Event()
        self._closed = False
        #: The worker's index as it last said: entries, bytes, bytes per entry.
        self._figures: tuple[int, int, int] = (0, 0, 0)
        self._evictions = 0
        self._lost_lock = threading.Lock()
        #: Workers in a row that ended young (the restart waits longer after each).
        self._failures = 0
        self._channel = _Channel(capacity, dim)
        if self._channel.dead:
            log.warning("response cache: the semantic worker could not start; semantic lookups miss until it does")
            self._lost(self._channel)

    # -- the index's surface, as the service uses it ----------------------------------------------

    def __len__(self) -> int:
        return len(self.held)

    def __contains__(self, key: object) -> bool:
        return key in self.held

    @property
    def evictions(self) -> int:
        """Entries that left because the index was full."""
        return self._evictions

    def nbytes(self) -> int:
        """The worker's index memory, as it last reported (refreshed by `refresh_figures`)."""
        return self._figures[1]

    def bytes_per_entry(self) -> int:
        return self._figures[2]

    def touch(self, key: str) -> None:
        """Mark an entry as just hit (it leaves the index last)."""
        self._send_lookup(("touch", key))

    def discard(self, key: str) -> None:
        """Forget one entry (it failed to load, or expired)."""
        self.held.discard(key)
        self._send_lookup(("drop", [key]))

    def remove_many(self, keys: list[str]) -> None:
        """Forget entries the store removed (from the writer thread)."""
        self.held.difference_update(keys)
        self._send_control(("drop", list(keys)))

    def clear(self) -> None:
        """Forget everything (the store was cleared or invalidated elsewhere)."""
        self.held.clear()
        self._send_control(("clear",))

    # -- the event loop's side -------------------------------------------------------------------

    async def lookup(
        self, prefix: bytes, texts: list[str], threshold: float, *, now: float, min_created: float
    ) -> Looked | None:
        """The query's partition and guards and the entries that may answer it; None when the worker cannot say now."""
        found = await self._ask(("look", 0, prefix, texts, threshold, now, min_created))
        if found is None:
            return None
        partition, guards, candidates, blob = found
        features = guards_from_wire(guards)
        kept = None
        if blob is not None:  # embedded (b"": a turn without words)
            kept = Stored(partition, features, _vectors(blob, len(texts)) if blob else None)
        return Looked(partition, features, candidates, kept)

    async def store(self, prefix: bytes, texts: list[str], key: str, created: float, expires: float) -> Stored | None:
        """Index an answer; its partition, guards and vectors (for the store), or None when it was not indexed."""
        found = await self._ask(("store", 0, prefix, texts, key, created, expires), timeout=_STORE_TIMEOUT_S)
        if found is None:
            return None
        partition, guards, blob = found
        vectors = None
        if blob is not None:
            vectors = _vectors(blob, len(texts))
            self.held.add(key)
            self._changes += 1
        return Stored(partition, guards_from_wire(guards), vectors)

    def add(self, kept: Stored, key: str, created: float, expires: float) -> bool:
        """Index an answer whose lookup did the work (`Looked.kept`); nothing is awaited.

        Returns:
            False when the worker could not take it (it is then not indexed here).
        """
        assert kept.vectors is not None
        if not self._send_lookup(("add", kept.partition, key, kept.vectors.tobytes(), created, expires)):
            self.dropped += 1
            return False
        self.held.add(key)
        self._changes += 1
        return True

    async def _ask(self, message: tuple[Any, ...], timeout: float = LOOKUP_TIMEOUT_S) -> Any:
        loop = asyncio.get_running_loop()
        reading = self._reading
        if reading is None or reading[0] is not loop or reading[1] is not self._channel:
            if self._channel.dead:
                return None  # being replaced
            self._listen(loop)
        rid = next(self._ids)
        if not self._send_lookup((message[0], rid, *message[2:])):
            self.dropped += 1
            return None
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting[rid] = future
        late = loop.call_later(timeout, _expire, future)
        try:
            found = await future
        finally:
            late.cancel()
            del self._waiting[rid]
        if found is None:
            self.dropped += 1
        return found

    def _send_lookup(self, message: tuple[Any, ...]) -> bool:
        if self._channel.dead:
            return False
        try:
            self._channel.lookups.send(marshal.dumps(message))
            return True
        except OSError:  # the socket is full (BlockingIOError) or closed
            return False

    def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        self.unlisten()
        channel = self._channel
        fd = channel.lookups.fileno()
        loop.add_reader(fd, self._readable, channel)
        self._reading = (loop, channel, fd)

    def unlisten(self) -> None:
        """Stop reading the worker's answers (on the event loop's thread; before `close`)."""
        if self._reading is not None:
            loop, _, fd = self._reading
            self._reading = None
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)

    def read_replies(self) -> None:
        """Take what the worker has said so far (on the event loop's thread)."""
        if self._reading is not None:
            self._readable(self._reading[1])

    def _readable(self, channel: _Channel) -> None:
        sock = channel.lookups
        while True:
            try:
                data = sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._died(channel)
                return
            message = marshal.loads(data)
            if message[0] == "e":  # answers were added: what the index let go, and its figures
                self._evicted(message[2])
                self._figures = tuple(message[3])
                continue
            future = self._waiting.get(message[1])
            if future is not None and not future.done():
                future.set_result(message[2:])

    def _died(self, channel: _Channel) -> None:
        """``channel``'s worker is gone (seen on the loop): its pending lookups are misses; a new one is started."""
        if self._reading is not None and self._reading[1] is channel:
            self.unlisten()
        if channel is self._channel:
            for future in self._waiting.values():
                if not future.done():
                    future.set_result(None)
        self._lost(channel)

    def _lost(self, channel: _Channel) -> None:
        """Start replacing ``channel``'s worker, once, on a thread of its own (it may wait: see `_replace`)."""
        with self._lost_lock:
            if channel.replacing:
                return
            channel.replacing = channel.dead = True
        threading.Thread(target=self._replace, args=(channel,), name="ax-cache-worker-restart", daemon=True).start()

    def _replace(self, channel: _Channel) -> None:
        young = time.monotonic() - channel.started < _YOUNG_S
        self._failures = self._failures + 1 if young else 0
        if self._failures:
            delay = min(_MAX_BACKOFF_S, 0.25 * 2 ** (self._failures - 1))
            log.warning("response cache: the semantic worker stopped %d time(s) soon after starting; "
                        "starting another in %.1f s (semantic lookups miss meanwhile)", self._failures, delay)
            time.sleep(delay)
        with self._control_lock:
            if self._closed or channel is not self._channel:
                return
            log.warning("response cache: the semantic worker (pid %s) stopped; starting another", channel.pid)
            channel.close(1)
            self.held.clear()
            fresh = _Channel(self.capacity, self.dim)
            self._channel = fresh
            self.restarts += 1
            self.reload.set()
        if fresh.dead:
            self._lost(fresh)

    def _evicted(self, keys: list[str]) -> None:
        if keys:
            self._evictions += len(keys)
            self.held.difference_update(keys)
            self.on_evicted(keys)

    # -- the writer thread's side (blocking; never call these on the event loop) ------------------

    def _send_control(self, message: tuple[Any, ...]) -> None:
        # A removal lost to a full socket leaves a row the gateway no longer stores: the
        # gateway's check of every candidate against the store skips it.
        with contextlib.suppress(OSError):
            self._channel.control.send(marshal.dumps(message))

    def _request(self, message: tuple[Any, ...], timeout: float = _CONTROL_TIMEOUT_S) -> list[tuple[Any, ...]]:
        """Send a control request and wait for its answer (its parts, the last ``ok``); [] if the worker died."""
        with self._control_lock:
            sock = self._channel.control
            data = marshal.dumps(message)
            deadline = time.monotonic() + timeout
            try:
                while True:
                    try:
                        sock.send(data)
                        break
                    except BlockingIOError:
                        select.select([], [sock], [], max(0.0, deadline - time.monotonic()))
                        if time.monotonic() > deadline:
                            return []
                parts: list[tuple[Any, ...]] = []
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0 or not select.select([sock], [], [], left)[0]:
                        log.warning("response cache: the semantic worker did not answer %r in %.0f s", message[0],
                                    timeout)
                        return []
                    got = sock.recv(MAX_DATAGRAM)
                    if not got:
                        self._lost(self._channel)
                        return []
                    part = marshal.loads(got)
                    parts.append(part)
                    if part[0] == "ok":
                        return parts
            except OSError:
                return []

    def index_rows(self, rows: list[IndexRow]) -> None:
        """Index stored entries not indexed yet (this process's own, or all of them at start)."""
        wire = [(r.key, r.partition, r.created_at, r.expires_at, r.turns, r.vector) for r in rows
                if r.key not in self.held]
        for i in range(0, len(wire), _ROWS_PER_MESSAGE):
            answer = self._request(("rows", wire[i : i + _ROWS_PER_MESSAGE]))
            if answer:
                _, added, evicted, self._figures = answer[-1]
                self.held.update(added)
                self._changes += len(added)
                self._evicted(evicted)

    def _restore(self, path: Path) -> list[str]:
        parts = self._request(("load", str(path)))
        if not parts:
            raise OSError("the semantic worker did not answer")
        if parts[-1][2] is not None:
            raise ValueError(parts[-1][2])
        held = [k for part in parts if part[0] == "part" for k in part[1]]
        self.held.update(held)
        return held

    def _save(self, path: Path) -> None:
        answer = self._request(("save", str(path)))
        if not answer:
            raise OSError("the semantic worker did not answer")
        if answer[-1][2] is not None:
            raise OSError(answer[-1][2])

    def _remove(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 10_000):
            self.remove_many(keys[i : i + 10_000])

    def maybe_snapshot(self) -> None:
        """The writer thread's idle call: keep the figures fresh, save a snapshot now and then."""
        self.refresh_figures()
        super().maybe_snapshot()

    def refresh_figures(self) -> None:
        """Ask the worker for its index's size, memory and evictions (shown by `snapshot`)."""
        answer = self._request(("stats",), timeout=5.0)
        if answer:
            self._figures = tuple(answer[-1][1:])

    @property
    def behind(self) -> bool:
        """Always true: answers stored may still wait to be added (`wait` makes sure they are)."""
        return True

    def wait(self, timeout: float = 30.0) -> None:
        """Block until the worker has handled everything sent so far (answers stored are in the graph)."""
        self._request(("sync",), timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the worker (after the store tier saved the snapshot)."""
        self._closed = True
        with self._control_lock:
            self._channel.close(timeout)


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)
