"""The semantic worker's process: the index, the guards and the built-in embedder, beside the gateway.

``python -m axtui.cache._worker_child FD`` is a fork server: it imports
what a worker needs once, then forks a worker for each request on its
socket (FD) from the gateway process (`axtui.cache.worker`), so a worker
starts in milliseconds with nothing of the gateway's threads or state. It
ends when the gateway's end of FD closes, and its workers end with it.

A worker serves two sockets of datagrams, one marshal tuple each:

- the lookup socket, used by the gateway's event loop: ``look`` (guards,
  partition, embedding, search: one answer), ``store`` (the same work for
  an answer to keep, which is added to the index), ``add`` (an answer whose
  lookup did that work), ``touch`` and ``drop``;
- the control socket, used by the store tier's writer thread: ``rows``
  (stored vectors to index), ``drop``, ``clear``, ``load`` and ``save``
  (the snapshot), ``stats`` and ``sync``.

Lookups go first: between every `_ROWS_STEP` rows of a bulk load, waiting
lookups are answered, and a snapshot (about a second at 100k entries) is
written by a forked copy of the worker while it goes on answering. The
process ends when either socket closes (its
gateway closed or died).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import marshal
import os
import select
import signal
import socket
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from cachetools import LRUCache

from axtui.cache.entry import CorruptEntry, decode_vectors
from axtui.cache.guards import GuardFeatures, exact_signature, features_of
from axtui.cache.index import VectorIndex
from axtui.cache.keys import partition_of
from axtui.cache.semantic import BuiltinEmbedder

__all__ = ["MAX_DATAGRAM", "serve"]

#: The largest message either side sends (the sockets' buffers are sized for it).
MAX_DATAGRAM = 1 << 21
#: The index's figures go to the gateway at most this often while nothing leaves it.
_REPORT_S = 1.0
#: Rows of a bulk load added at a time before waiting lookups are answered.
_ROWS_STEP = 256
#: Lookups and adds handled between two collections of the young objects (when no lookup waits).
_COLLECT_EVERY = 2_000


def guards_wire(guards: tuple[GuardFeatures, ...]) -> list[tuple[bytes, int, bytes, bytes]]:
    """Guard features as marshal-able tuples (`guards_from_wire` is the inverse)."""
    return [(g.numbers, g.negations, g.names, g.vocab) for g in guards]


def guards_from_wire(wire: list[tuple[bytes, int, bytes, bytes]]) -> tuple[GuardFeatures, ...]:
    return tuple(GuardFeatures(*g) for g in wire)


class _Worker:
    def __init__(self, capacity: int, dim: int) -> None:
        self.index = VectorIndex(capacity=capacity)
        self.embedder = BuiltinEmbedder(dim)
        self._guards: LRUCache[str, GuardFeatures] = LRUCache(maxsize=4096)
        #: Answers to add to the graph (partition, key, vectors, created, expires), oldest first.
        self.adds: deque[tuple[str, str, np.ndarray, float, float]] = deque()

    def _work_out(self, prefix: bytes, texts: list[str]) -> tuple[tuple[GuardFeatures, ...], str]:
        guards = features_of(texts, self._guards)
        return guards, partition_of(prefix, exact_signature(guards))

    def _vectors(self, texts: list[str]) -> np.ndarray | None:
        vectors = self.embedder.embed_sync(texts)
        # A turn without words cannot be compared by meaning: exact matching only.
        if not bool(np.all(np.einsum("ij,ij->i", vectors, vectors) > 0.25)):
            return None
        return vectors

    def look(self, prefix: bytes, texts: list[str], threshold: float, now: float, min_created: float) -> tuple[Any, ...]:
        guards, partition = self._work_out(prefix, texts)
        found: list[tuple[str, float]] = []
        blob = None  # not embedded (an empty partition needs no search)
        if self.index.size(partition):
            vectors = self._vectors(texts)
            blob = b""  # a turn without words
            if vectors is not None:
                blob = vectors.tobytes()  # keeping the answer to a miss sends them back with ``add``
                found = [(c.key, c.min_turn)
                         for c in self.index.search(partition, vectors, threshold, now=now, min_created=min_created)]
        return partition, guards_wire(guards), found, blob

    def store(self, prefix: bytes, texts: list[str], key: str, created: float, expires: float) -> tuple[Any, ...]:
        """An answer's partition, guards and vectors; it is added to the graph once no lookup waits."""
        guards, partition = self._work_out(prefix, texts)
        vectors = self._vectors(texts)
        if vectors is None:
            return partition, guards_wire(guards), None
        self.adds.append((partition, key, vectors, created, expires))
        return partition, guards_wire(guards), vectors.tobytes()

    def add(self, partition: str, key: str, blob: bytes, created: float, expires: float) -> None:
        """Queue an answer whose lookup worked out its partition and vectors for the graph."""
        vectors = np.frombuffer(blob, dtype=np.float32).reshape(-1, self.embedder.dim)
        self.adds.append((partition, key, vectors, created, expires))

    def add_one(self) -> list[str]:
        """Add the oldest answer waiting; the keys evicted to make room."""
        partition, key, vectors, created, expires = self.adds.popleft()
        return self.index.add(partition, key, vectors, created=created, expires=expires)

    def figures(self) -> tuple[int, int, int]:
        """The index's entries, memory, and memory per entry."""
        index = self.index
        return len(index), index.nbytes(), index.bytes_per_entry()

    def rows(self, rows: list[tuple[str, str, float, float, int, bytes]], answer_lookups: Any) -> tuple[Any, ...]:
        groups: dict[tuple[int, ...], dict[str, tuple[str, float, float, np.ndarray]]] = {}
        for key, partition, created, expires, turns, blob in rows:
            if key in self.index:
                continue
            with contextlib.suppress(CorruptEntry):
                vectors = decode_vectors(blob, turns)
                groups.setdefault(vectors.shape, {})[key] = (partition, created, expires, vectors)
        added: list[str] = []
        evicted: list[str] = []
        for group in groups.values():
            items = list(group.items())
            for i in range(0, len(items), _ROWS_STEP):
                step = items[i : i + _ROWS_STEP]
                evicted += self.index.add_many(
                    [p for _, (p, _, _, _) in step], [k for k, _ in step], np.stack([v for _, (_, _, _, v) in step]),
                    created=np.array([c for _, (_, c, _, _) in step]), expires=np.array([e for _, (_, _, e, _) in step]),
                    threads=0,  # a bulk load (start-up, a replaced worker) may use every core
                )
                added += [k for k, _ in step]
                answer_lookups()
        gone = set(evicted)
        return [k for k in added if k not in gone], evicted, self.figures()

    def load(self, path: str) -> tuple[list[str], str | None]:
        """The keys a snapshot brought, or none and why it cannot be read."""
        try:
            return self.index.restore(Path(path)), None
        except (OSError, ValueError, KeyError) as exc:
            return [], str(exc)

    def save(self, path: str) -> tuple[int, str | None]:
        """Entries written to the snapshot, or -1 and why it failed."""
        try:
            return self.index.save(Path(path)), None
        except OSError as exc:
            return -1, str(exc)


def serve(lookups: socket.socket, control: socket.socket, capacity: int, dim: int) -> None:
    """Serve the two sockets until either closes (the entry point in the worker's process)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _end_with_parent()
    # The index's rows live long and make no reference cycles (none were found in steady state):
    # the collector's full passes over them held every lookup for 40-100 ms at a few thousand
    # rows, longer at 100k. Only young objects are collected, while no lookup waits.
    gc.disable()
    worker = _Worker(capacity, dim)
    for sock in (lookups, control):
        sock.setblocking(True)
    poll = select.poll()
    poll.register(lookups, select.POLLIN)
    poll.register(control, select.POLLIN)
    lfd = lookups.fileno()

    def reply(sock: socket.socket, message: tuple[Any, ...]) -> None:
        try:
            sock.send(marshal.dumps(message))
        except OSError as exc:
            # An answer too large for a datagram is dropped (its lookup misses at its timeout);
            # only a gateway that went away ends the worker.
            if exc.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                raise

    evicted: list[str] = []
    reported = [0.0]

    def add_waiting(limit: int | None = None, *, report: bool = False) -> None:
        """Add answers waiting (at most ``limit``). Once none wait, tell the gateway what left the index
        (and its figures, at most every `_REPORT_S` otherwise: each message wakes the gateway's loop)."""
        done = 0
        while worker.adds and (limit is None or done < limit):
            evicted.extend(worker.add_one())
            done += 1
        now = time.monotonic()
        if not worker.adds and (report or evicted or now - reported[0] >= _REPORT_S):
            reply(lookups, ("e", 0, evicted[:], worker.figures()))
            evicted.clear()
            reported[0] = now

    handled = [0]

    def on_lookup(message: tuple[Any, ...]) -> None:
        handled[0] += 1
        op = message[0]
        if op == "look":
            _, rid, prefix, texts, threshold, now, min_created = message
            reply(lookups, ("r", rid, *worker.look(prefix, texts, threshold, now, min_created)))
        elif op == "store":
            _, rid, prefix, texts, key, created, expires = message
            reply(lookups, ("s", rid, *worker.store(prefix, texts, key, created, expires)))
        elif op == "add":
            worker.add(*message[1:])
        elif op == "drop":
            worker.index.remove_many(message[1])
        elif op == "touch":
            worker.index.touch(message[1])

    def answer_lookups() -> None:
        while True:
            ready = select.select([lookups], [], [], 0)[0]
            if not ready:
                return
            data = lookups.recv(MAX_DATAGRAM)
            if not data:
                raise EOFError
            try:
                message = marshal.loads(data)
            except (EOFError, ValueError, TypeError):
                continue  # cut short: see the main loop
            on_lookup(message)

    def on_control(message: tuple[Any, ...]) -> None:
        op = message[0]
        if op == "rows":
            reply(control, ("ok", *worker.rows(message[1], answer_lookups)))
            gc.freeze()  # a bulk load's rows are never scanned by the collector
        elif op == "drop":
            worker.index.remove_many(message[1])
        elif op == "clear":
            worker.adds.clear()
            worker.index.clear()
        elif op == "load":
            held, error = worker.load(message[1])
            gc.freeze()
            for i in range(0, len(held), 10_000):
                reply(control, ("part", held[i : i + 10_000]))
            reply(control, ("ok", len(held), error))
        elif op == "save":
            answer_lookups()
            add_waiting(report=True)
            if not start_save(message[1]):
                reply(control, ("ok", *worker.save(message[1])))
        elif op == "stats":
            reply(control, ("ok", *worker.figures()))
        elif op == "sync":
            # Everything sent before this is handled: answers stored are in the graph.
            answer_lookups()
            add_waiting(report=True)
            reply(control, ("ok",))

    #: The snapshot writer at work: its pid and the pipe its result comes back on.
    saving: list[tuple[int, int]] = []

    def start_save(path: str) -> bool:
        """Write the snapshot in a forked copy of this process (lookups go on here meanwhile); False if none."""
        try:
            r, w = os.pipe()
        except OSError:
            return False
        try:
            pid = os.fork()
        except OSError:
            os.close(r)
            os.close(w)
            return False
        if pid == 0:
            try:
                os.close(r)
                lookups.close()  # the gateway sees this worker end when it ends, not when its writer does
                control.close()
                os.write(w, marshal.dumps(worker.save(path)))
            finally:
                os._exit(0)
        os.close(w)
        saving.append((pid, r))
        poll.register(r, select.POLLIN)
        return True

    def saved() -> None:
        pid, r = saving.pop(0)
        poll.unregister(r)
        data = os.read(r, 65536)
        os.close(r)
        os.waitpid(pid, 0)
        result = marshal.loads(data) if data else (-1, "the snapshot writer ended before it finished")
        reply(control, ("ok", *result))

    try:
        while True:
            # Adding waits while lookups are asked: a lookup is on a call's path, an add is not.
            events = poll.poll(0 if worker.adds or handled[0] >= _COLLECT_EVERY else None)
            for fd, _ in events:
                if saving and fd == saving[0][1]:
                    saved()
                    continue
                sock = lookups if fd == lfd else control
                data = sock.recv(MAX_DATAGRAM)
                if not data:
                    return
                try:
                    message = marshal.loads(data)
                except (EOFError, ValueError, TypeError):
                    continue  # cut short (larger than a datagram): the asker's timeout says it
                (on_lookup if fd == lfd else on_control)(message)
            if not events and worker.adds:
                add_waiting(1)
            elif not events and handled[0] >= _COLLECT_EVERY:
                handled[0] = 0
                gc.collect(1)
    except (EOFError, OSError):
        return
    finally:
        os._exit(0)


def _end_with_parent() -> None:
    """Linux: be killed when the process that forked this one ends, even by SIGKILL."""
    with contextlib.suppress(AttributeError, OSError):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def fork_server(conn: socket.socket) -> None:
    """Fork a worker for each request on ``conn``; answer its pid. Ends when ``conn`` closes.

    A request is ``marshal((capacity, dim))`` with the worker's two sockets attached.
    """
    # A Ctrl-C reaches the gateway, which stops its workers; the kernel reaps them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    workers: list[int] = []
    try:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(conn, 4096, 2)
            except OSError:
                return
            if not data:
                return
            if len(fds) != 2:
                for fd in fds:
                    os.close(fd)
                continue
            capacity, dim = marshal.loads(data)
            pid = os.fork()
            if pid == 0:
                try:
                    conn.close()
                    serve(socket.socket(fileno=fds[0]), socket.socket(fileno=fds[1]), capacity, dim)
                finally:
                    os._exit(0)
            for fd in fds:
                os.close(fd)
            workers.append(pid)
            conn.send(marshal.dumps(pid))
    finally:
        # The gateway is gone: so are its workers, reaped here (not left to whatever adopts them).
        for pid in workers:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while True:
                os.waitpid(-1, 0)


if __name__ == "__main__":
    fork_server(socket.socket(fileno=int(sys.argv[1])))
