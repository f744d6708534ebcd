"""The recorder: call records to the store in batches, off the event loop.

`Recorder.record` only appends to a buffer (a few hundred nanoseconds, safe
from any thread); a writer thread flushes every ``flush_interval_ms`` or
when ``batch_size`` records wait, in one transaction per batch. Batch hooks
(the cost rollups, the per-second metrics) run inside that same
transaction, so a record and its rollups are written together or not at
all. A graceful stop (`close`) writes everything; a hard kill loses at most
one flush interval and SQLite's WAL keeps the file consistent.

When the database cannot be used (locked past the busy timeout, disk
full, unreachable), the batch stays in memory and is retried with backoff.
When it refuses a batch for any other reason (a value out of a column's
range, a broken constraint, a hook that fails on one record), the batch is
written again row by row: every record that still fails is kept in the
``calls_quarantine`` table with the reason (counted in ``quarantined``),
and the rest are written. One bad record never stops recording.

Barriers (`Recorder.add_barrier`) run before each batch: the budget book's
makes a call's cost reach its budget counters before its record reaches
the spend rollups, which the counters are reconciled with.

The queue is bounded: the engine calls `Recorder.admit` before it serves a
call, which waits (up to ``full_wait_s``) while ``max_pending`` records
wait and then raises `RecorderFull` (HTTP 503). A call that was admitted is
always queued, so nothing served goes unrecorded; the queue may exceed
``max_pending`` by the calls in flight at that moment, never more.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any

from sqlalchemy import bindparam, insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from axtui.errors import RecorderFull, StoreError
from axtui.redaction import scrub
from axtui.store._store import Store
from axtui.store.raw import RawSql
from axtui.store.tables import CALL_COLUMNS, Call
from axtui.store.tables_quarantine import CallQuarantine
from axtui.types import CallRecord

__all__ = ["BatchHook", "Recorder", "record_to_row"]

log = logging.getLogger(__name__)

BatchHook = Callable[[Connection, Sequence[CallRecord]], None]

_FIELDS = tuple(name for name in CALL_COLUMNS if name != "tags")
_QUARANTINE = CallQuarantine.__table__  # type: ignore[attr-defined]
#: The insert of a batch of records, run on the driver's cursor (SQLAlchemy's per-row work cost more than SQLite's).
_INSERT = RawSql(lambda _dialect: insert(Call.__table__).values(  # type: ignore[attr-defined]
    {name: bindparam(name) for name in CALL_COLUMNS}))
#: Quarantined records logged one by one before the log only counts them (every 1000th).
_LOGGED_QUARANTINES = 10
#: The longest reason kept with a quarantined record.
_REASON_CHARS = 500
#: Rows converted and inserted between two GIL hand-overs.
_SLICE = 200
#: The longest a batch waits on each barrier; then it is written anyway (recording comes first).
_BARRIER_S = 1.0
_live: weakref.WeakSet[Recorder] = weakref.WeakSet()


def record_to_row(rec: CallRecord) -> dict[str, Any]:
    """A `CallRecord` as a ``calls`` row."""
    row = {k: getattr(rec, k) for k in _FIELDS}
    # The last guard before the disk: the texts a client or an upstream wrote (a model name, tags,
    # an error from anywhere) lose anything key-shaped and every secret this process knows.
    row["requested_model"] = scrub(rec.requested_model)
    row["tags"] = scrub(",".join(rec.tags)) if rec.tags else ""
    if rec.error_message:
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
        max_pending: int = 100_000,
        full_wait_s: float = 5.0,
    ) -> None:
        self.store = store
        self.flush_interval = flush_interval_ms / 1000
        self.batch_size = batch_size
        self.hooks: list[BatchHook] = list(hooks)
        self._barriers: list[Callable[[float], bool]] = []
        self.max_pending = max(1, max_pending)
        self.full_wait_s = full_wait_s
        #: Records written to the call log.
        self.written = 0
        #: Records lost for good (the quarantine itself could not take them).
        self.dropped = 0
        #: Records the database refused, kept in ``calls_quarantine``.
        self.quarantined = 0
        #: Calls refused with `RecorderFull` because the queue stayed full.
        self.refused = 0
        self.last_error: str | None = None
        #: When writes began to fail (monotonic), None while they succeed.
        self._failing_since: float | None = None
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

    def add_barrier(self, wait: Callable[[float], bool]) -> None:
        """Call ``wait(timeout)`` (on the writer thread) before each batch is written, from now on.

        What ``wait`` waits for reaches the database before the batch does;
        a barrier that does not clear within a second is passed, and the
        batch written anyway. It must not need the database's write lock
        from this thread (it runs outside the batch's transaction).
        """
        self._barriers.append(wait)

    async def admit(self) -> None:
        """Return when the queue has room for one more call; wait up to ``full_wait_s`` for it.

        Raises:
            RecorderFull: the queue stayed full (the database is down or too
                slow); the call must not be served, since it could not be recorded.
        """
        failing = self._failing_since
        if failing is not None and time.monotonic() - failing > self.full_wait_s:
            # The database takes no records (read-only, full, locked for good): serving on would
            # answer calls whose records may never be written.
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.error("recorder: %d call(s) refused so far: no record could be written for %.0f s: %s",
                          self.refused, time.monotonic() - failing, self.last_error)
            raise RecorderFull(f"ax cannot write its call records right now, so the call was not served; retry "
                               f"shortly ({len(self._buf)} records wait to be written)")
        if len(self._buf) < self.max_pending:
            return
        deadline = time.monotonic() + self.full_wait_s
        while len(self._buf) >= self.max_pending:
            if time.monotonic() >= deadline or self._stopping:
                self.refused += 1
                if self.refused == 1 or self.refused % 1000 == 0:
                    log.error("recorder: %d call(s) refused so far, %d records wait to be written: %s",
                              self.refused, len(self._buf), self.last_error or "the database is too slow")  # fmt: skip
                # The caller is told what happened, not where the database is (the log says why).
                raise RecorderFull(
                    f"ax cannot record calls fast enough ({len(self._buf)} records wait to be written); "
                    "the call was not served. Retry shortly."
                )
            await asyncio.sleep(0.01)

    def record(self, rec: CallRecord) -> None:
        """Queue one record; never blocks on the database.

        The record of a call `admit` refused is not queued (that call was
        never served); it is counted in ``refused``.
        """
        if self._stopping:
            raise StoreError("the recorder is closed; a record arrived after shutdown")
        if rec.error_class == _REFUSED:
            return
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
            while self.written + self.dropped + self.quarantined < target:
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
            if stopping and not self._buf:
                return
            if stopping and self._buf and backoff >= 5.0:
                log.error("recorder stopping: %d call record(s) could not be written and are lost: %s",
                          len(self._buf), self.last_error)
                return

    def _write_pending(self) -> bool:
        while self._buf:
            n = min(len(self._buf), self.batch_size)
            batch = list(islice(self._buf, n))
            for wait in self._barriers:
                wait(_BARRIER_S)
            try:
                self.store.run(lambda conn, b=batch: self._write(conn, b))  # type: ignore[misc]
            except StoreError as exc:
                self._failed(exc)
                log.warning("recorder: batch of %d not written yet: %s", n, exc.message)
                return False
            except Exception:
                # Not the database being away: something in these records (or
                # a hook on them) is refused. Find it row by row.
                if not self._write_rows(batch):
                    return False
                continue
            self._done(n, written=n)
        return True

    def _write_rows(self, batch: list[CallRecord]) -> bool:
        """Write ``batch`` one record per transaction, quarantining those refused; False if the store went away."""
        for rec in batch:
            try:
                self.store.run(lambda conn, r=rec: self._write(conn, [r]))  # type: ignore[misc]
            except StoreError as exc:
                self._failed(exc)
                return False
            except Exception as exc:
                reason = _reason(exc)
                try:
                    self.store.run(lambda conn, r=rec, why=reason: _quarantine(conn, r, why))  # type: ignore[misc]
                except StoreError as store_exc:
                    self._failed(store_exc)
                    return False
                except Exception:
                    log.exception("recorder: a refused record could not be quarantined either; it is lost")
                    self._done(1, dropped=1)
                    continue
                self._done(1, quarantined=1)
                if self.quarantined <= _LOGGED_QUARANTINES or self.quarantined % 1000 == 0:
                    # Every one is in the table; the log tells the first ones and then keeps count.
                    log.error("recorder: call record %s quarantined (calls_quarantine, %d so far): %s",
                              rec.request_id or "?", self.quarantined, reason)  # fmt: skip
                continue
            self._done(1, written=1)
        return True

    def _done(self, n: int, *, written: int = 0, quarantined: int = 0, dropped: int = 0) -> None:
        for _ in range(n):
            self._buf.popleft()
        with self._cond:
            self.written += written
            self.quarantined += quarantined
            self.dropped += dropped
            self.last_error = None
            self._failing_since = None
            self._cond.notify_all()

    def _failed(self, exc: StoreError) -> None:
        self.last_error = exc.message
        if self._failing_since is None:
            self._failing_since = time.monotonic()

    def _write(self, conn: Connection, batch: list[CallRecord]) -> None:
        for i in range(0, len(batch), _SLICE):
            _INSERT.run_many(conn, [record_to_row(r) for r in batch[i : i + _SLICE]])
            # Building rows holds the GIL; let the event loop's thread in
            # between slices so a big batch never stalls it for long.
            time.sleep(0)
        for hook in self.hooks:
            hook(conn, batch)


_REFUSED = RecorderFull.__name__


def _reason(exc: Exception) -> str:
    """Why the database refused a record, without the statement or its values (they may hold a prompt)."""
    cause: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return scrub(f"{type(cause).__name__}: {cause}")[:_REASON_CHARS]


def _quarantine(conn: Connection, rec: CallRecord, reason: str) -> None:
    row = record_to_row(rec)
    conn.execute(
        insert(_QUARANTINE),
        {
            "ts": time.time(), "call_ts": float(rec.ts) if isinstance(rec.ts, int | float) else 0.0,
            "request_id": str(rec.request_id)[:64], "reason": reason,
            "record": json.dumps(row, default=str, ensure_ascii=False),
        },
    )  # fmt: skip


@atexit.register
def _flush_all() -> None:
    for rec in list(_live):
        rec.close(timeout=10)
