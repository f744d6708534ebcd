"""The recorder: call records to the store in batches, off the event loop.

`Recorder.record` only appends to a buffer (a few hundred nanoseconds, safe
from any thread); a writer thread flushes every ``flush_interval_ms`` or
when ``batch_size`` records wait, in one transaction per batch. Batch hooks
(the cost rollups, the per-second metrics) run inside that same
transaction, so a record and its rollups are written together or not at
all. A graceful stop (`close`) writes everything; a hard kill loses at most
one flush interval and SQLite's WAL keeps the file consistent.

When the database refuses a batch (locked past the busy timeout, disk
full), the batch stays in memory and is retried with backoff; nothing is
dropped until ``max_pending`` records wait, and then the oldest are dropped
and counted in ``dropped``.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import fields
from itertools import islice
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from axtui.errors import StoreError
from axtui.redaction import scrub
from axtui.store._store import Store
from axtui.store.tables import Call
from axtui.types import CallRecord

__all__ = ["BatchHook", "Recorder", "record_to_row"]

log = logging.getLogger(__name__)

BatchHook = Callable[[Connection, Sequence[CallRecord]], None]

_CALL_COLUMNS = frozenset(c.name for c in Call.__table__.columns) - {"id"}  # type: ignore[attr-defined]
_FIELDS = tuple(f.name for f in fields(CallRecord) if f.name in _CALL_COLUMNS and f.name != "tags")
#: Rows converted and inserted between two GIL hand-overs.
_SLICE = 200
_live: weakref.WeakSet[Recorder] = weakref.WeakSet()


def record_to_row(rec: CallRecord) -> dict[str, Any]:
    """A `CallRecord` as a ``calls`` row."""
    row = {k: getattr(rec, k) for k in _FIELDS}
    row["tags"] = ",".join(rec.tags)
    if rec.error_message:
        # The last guard before the disk: an error text from anywhere (a
        # library's exception, an upstream's body) loses anything key-shaped.
        row["error_message"] = scrub(rec.error_message)
    return row


class Recorder:
    """Writes call records to the store from a background thread."""

    def __init__(
        self,
        store: Store,
        *,
        flush_interval_ms: int = 250,
        batch_size: int = 2_000,
        hooks: Sequence[BatchHook] = (),
        max_pending: int = 1_000_000,
    ) -> None:
        self.store = store
        self.flush_interval = flush_interval_ms / 1000
        self.batch_size = batch_size
        self.hooks: list[BatchHook] = list(hooks)
        self.max_pending = max_pending
        self.written = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._buf: deque[CallRecord] = deque()
        self._cond = threading.Condition()
        self._enqueued = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="ax-recorder", daemon=True)
        self._thread.start()
        _live.add(self)

    @property
    def pending(self) -> int:
        """Records waiting to be written."""
        return len(self._buf)

    def add_hook(self, hook: BatchHook) -> None:
        """Run ``hook(conn, records)`` in every batch's transaction from now on."""
        self.hooks.append(hook)

    def record(self, rec: CallRecord) -> None:
        """Queue one record; never blocks on the database."""
        if self._stopping:
            raise StoreError("the recorder is closed; a record arrived after shutdown")
        self._buf.append(rec)
        self._enqueued += 1
        if len(self._buf) >= self.batch_size:
            with self._cond:
                self._cond.notify()

    def flush(self, timeout: float = 30.0) -> bool:
        """Block until every record queued so far is written; False on timeout."""
        target = self._enqueued
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify()
            while self.written + self.dropped < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the writer thread."""
        if self._stopping:
            return
        self.flush(timeout)
        self._stopping = True
        with self._cond:
            self._cond.notify()
        self._thread.join(timeout)
        _live.discard(self)
        if self._buf and self._thread.is_alive():
            # The writer is still stuck on the database (it says so itself
            # when it gives up); the process is ending without these.
            log.error("%d call record(s) could not be written and are lost: %s", len(self._buf),
                      self.last_error or "the writer did not finish in time")

    def _run(self) -> None:
        backoff = self.flush_interval
        while True:
            with self._cond:
                if not self._stopping and len(self._buf) < self.batch_size:
                    self._cond.wait(backoff)
                stopping = self._stopping
            if self._buf and self._write_pending():
                backoff = self.flush_interval
            elif self._buf:
                backoff = min(backoff * 2, 5.0)
                self._trim()
            if stopping and not self._buf:
                return
            if stopping and self._buf and backoff >= 5.0:
                log.error("recorder stopping with %d unwritten records: %s", len(self._buf), self.last_error)
                return

    def _write_pending(self) -> bool:
        while self._buf:
            n = min(len(self._buf), self.batch_size)
            batch = list(islice(self._buf, n))
            try:
                self.store.run(lambda conn, b=batch: self._write(conn, b))  # type: ignore[misc]
            except StoreError as exc:
                self.last_error = exc.message
                log.warning("recorder: batch of %d not written yet: %s", n, exc.message)
                return False
            except Exception as exc:  # never lose the thread to a bug in a hook
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("recorder: batch of %d failed", n)
                return False
            for _ in range(n):
                self._buf.popleft()
            with self._cond:
                self.written += n
                self.last_error = None
                self._cond.notify_all()
        return True

    def _write(self, conn: Connection, batch: list[CallRecord]) -> None:
        stmt = insert(Call.__table__)  # type: ignore[attr-defined]
        for i in range(0, len(batch), _SLICE):
            conn.execute(stmt, [record_to_row(r) for r in batch[i : i + _SLICE]])
            # Building rows holds the GIL; let the event loop's thread in
            # between slices so a big batch never stalls it for long.
            time.sleep(0)
        for hook in self.hooks:
            hook(conn, batch)

    def _trim(self) -> None:
        over = len(self._buf) - self.max_pending
        if over > 0:
            for _ in range(over):
                self._buf.popleft()
            with self._cond:
                self.dropped += over
                self._cond.notify_all()
            log.error("recorder: %d records dropped; the database has refused writes: %s", over, self.last_error)


@atexit.register
def _flush_all() -> None:
    for rec in list(_live):
        rec.close(timeout=10)
