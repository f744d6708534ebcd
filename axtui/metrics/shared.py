"""Live metrics shared between processes, through per-second rollups in the store.

`SecondsHook` is a recorder hook: in each batch's transaction it adds one
``metrics_second`` row per second, dimension and key of the batch (a call
counts in the second it ended). `StoreFeed` reads those rows from every
process into a `LiveMetrics` whose source is ``store``, so a dashboard or a
server with several workers sees every process's calls, not one worker's.

Rows are only inserted, never updated, so writers never contend; the feed
re-reads the last ``rescan_s`` seconds on each poll and skips rows it has
already counted, so rows that commit a little out of order (PostgreSQL,
several writers) are still counted once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.engine import Connection

from axtui.aio import cancel_and_wait
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.histogram import LogHistogram
from axtui.metrics.live import LiveMetrics
from axtui.metrics.snapshot import RecentCall
from axtui.metrics.windows import Slot, observe_record
from axtui.money import nanos_to_usd
from axtui.store import Store
from axtui.store.raw import RawSql
from axtui.store.tables import Call
from axtui.store.tables_metrics import MetricsSecond
from axtui.types import CallRecord

__all__ = ["SecondsHook", "StoreFeed", "aggregate_seconds", "prune_seconds"]

log = logging.getLogger(__name__)

SECONDS = MetricsSecond.__table__  # type: ignore[attr-defined]
CALLS = Call.__table__  # type: ignore[attr-defined]
_COUNTERS = (
    "requests", "ok", "errors", "rate_limited", "budget_refused", "cancelled", "cache_hits",
    "input_tokens", "output_tokens", "cost_nanos", "unknown_cost",
)  # fmt: skip
#: A batch's rows, compiled once and run on the driver (`RawSql`): every batch of the recorder writes some.
_INSERT = RawSql(lambda _dialect: insert(SECONDS).values(
    {c: bindparam(c) for c in (*_COUNTERS, "sec", "dim", "key", "latency", "ttft", "last_seen")}))


def _ended(rec: CallRecord) -> int:
    return int(rec.ts + rec.latency_ms / 1000)


def aggregate_seconds(records: Iterable[CallRecord]) -> dict[tuple[int, str, str], Slot]:
    """Per (second, dimension, key) slots of some records; dimension ``all`` has key ``""``."""
    out: dict[tuple[int, str, str], Slot] = {}
    for rec in records:
        o = observe_record(rec)
        sec = _ended(rec)
        at = rec.ts + rec.latency_ms / 1000
        for dim, key in (
            ("all", ""),
            ("provider", rec.provider),
            ("deployment", rec.deployment),
            ("model", rec.model),
            ("user", rec.user),
        ):
            if key is None:
                continue
            k = (sec, dim, key[:384])
            slot = out.get(k)
            if slot is None:
                slot = out[k] = Slot(sec)
            slot.add(o, at)
    return out


def _row(sec: int, dim: str, key: str, s: Slot) -> dict[str, Any]:
    row: dict[str, Any] = {c: getattr(s, c) for c in _COUNTERS}
    row.update(
        sec=sec, dim=dim, key=key, latency=s.latency.to_text() if s.latency else "",
        ttft=s.ttft.to_text() if s.ttft else "", last_seen=s.last_seen,
    )  # fmt: skip
    return row


def slot_from_row(m: Any) -> Slot:
    """A stored per-second row as a `Slot`."""
    s = Slot(int(m["sec"]))
    for c in _COUNTERS:
        setattr(s, c, int(m[c] or 0))
    s.latency = LogHistogram.from_text(m["latency"])
    s.ttft = LogHistogram.from_text(m["ttft"])
    s.last_seen = m["last_seen"]
    return s


def prune_seconds(conn: Connection, before: float) -> int:
    """Delete per-second rows of seconds before ``before``; returns how many."""
    return int(conn.execute(SECONDS.delete().where(SECONDS.c.sec < int(before))).rowcount or 0)


class SecondsHook:
    """The recorder hook writing ``metrics_second``: ``recorder.add_hook(SecondsHook())``.

    Args:
        retention_s: rows older than this are deleted (every ``prune_every_s``).
        clock: decides what "older" means.
    """

    def __init__(self, *, retention_s: float = 3600, prune_every_s: float = 60.0, clock: Clock = SYSTEM_CLOCK) -> None:
        self.retention_s = retention_s
        self.prune_every_s = prune_every_s
        self.clock = clock
        self._last_prune: float | None = None

    def __call__(self, conn: Connection, records: Sequence[CallRecord]) -> None:
        _INSERT.run_many(conn, [_row(sec, dim, key, s) for (sec, dim, key), s in aggregate_seconds(records).items()])
        now = self.clock.now()
        if self._last_prune is None or now - self._last_prune >= self.prune_every_s:
            self._last_prune = now
            prune_seconds(conn, now - self.retention_s)


class StoreFeed:
    """Keeps a store-sourced `LiveMetrics` filled from every process's rollups.

    Args:
        store: the shared store.
        live: the windows to fill (its ``source`` should be ``store``).
        clock: the time source.
        rescan_s: how far back each poll re-reads, to catch rows committed late.
    """

    def __init__(self, store: Store, live: LiveMetrics, *, clock: Clock = SYSTEM_CLOCK, rescan_s: int = 10) -> None:
        self.store = store
        self.live = live
        self.clock = clock
        self.rescan_s = rescan_s
        self._seen: dict[int, int] = {}
        self._max_id: int | None = None
        self._last_call_id: int | None = None
        self._primed = False
        self._polled_at = 0.0
        self._task: asyncio.Task[None] | None = None

    def poll(self) -> int:
        """Read new rollup rows and calls into the windows (blocking); returns rows read."""
        now = self.clock.now()
        oldest = int(now) - self.live.config.window_s
        # Since a little before the last poll, however long ago it was (a busy loop, a slow evaluation).
        since = oldest if not self._primed else max(oldest, int(self._polled_at) - self.rescan_s)
        self._polled_at = now
        # Rows written since the last poll, whatever second they count (a flush held up by a busy or locked
        # store commits old seconds late), and the recent seconds again for rows whose ids were taken before
        # the last poll but committed after it (several writers): two searches an index answers, where one
        # with OR would read the whole table.
        with self.store.connect() as conn:
            rows: list[Any] = []
            if self._max_id is None:
                self._max_id = int(conn.execute(select(func.coalesce(func.max(SECONDS.c.id), 0))).scalar_one())
            else:
                rows += conn.execute(select(SECONDS).where(SECONDS.c.id > self._max_id, SECONDS.c.sec >= oldest)).all()
            rows += conn.execute(select(SECONDS).where(SECONDS.c.sec >= since)).all()
            calls = self._new_calls(conn)
        n = 0
        for row in rows:
            m = row._mapping
            self._max_id = max(self._max_id, int(m["id"]))
            if m["id"] in self._seen:
                continue
            self._seen[m["id"]] = int(m["sec"])
            self.live.ingest(int(m["sec"]), m["dim"], m["key"], slot_from_row(m))
            n += 1
        keep_from = int(now) - self.rescan_s
        if len(self._seen) > 1000:
            self._seen = {i: s for i, s in self._seen.items() if s >= keep_from}
        for call in calls:
            self.live.add_recent(call)
        if not self._primed:
            # The windows now hold history from before this process started:
            # rates are over the whole window, not since the start.
            self.live.started = min(self.live.started, float(since))
            self._primed = True
        return n

    def _new_calls(self, conn: Connection) -> list[RecentCall]:
        limit = self.live.config.recent_calls
        if not limit:
            return []
        q = select(CALLS)
        if self._last_call_id is None:
            q = q.order_by(CALLS.c.id.desc()).limit(limit)
        else:
            q = q.where(CALLS.c.id > self._last_call_id).order_by(CALLS.c.id.desc()).limit(limit)
        rows = list(reversed(conn.execute(q).all()))
        if rows:
            self._last_call_id = int(rows[-1]._mapping["id"])
        elif self._last_call_id is None:
            self._last_call_id = 0
        return [_recent_from_row(r._mapping) for r in rows]

    def start(self, interval_s: float = 1.0) -> asyncio.Task[None]:
        """Poll every ``interval_s`` on the running loop (in a worker thread) until `aclose`."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(interval_s), name="ax-metrics-feed")
        return self._task

    async def _run(self, interval_s: float) -> None:
        while True:
            try:
                await asyncio.to_thread(self.poll)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store may be busy; the next poll catches up
                log.warning("live metrics: reading the store failed (will retry): %s", exc)
            await asyncio.sleep(interval_s)  # real time, like the alert evaluator's cadence

    async def aclose(self) -> None:
        """Stop polling."""
        await cancel_and_wait(self._task)
        self._task = None


def _recent_from_row(m: Any) -> RecentCall:
    cost = m["cost_nanos"]
    return RecentCall(
        ts=m["ts"],
        user=m["user"],
        requested_model=m["requested_model"],
        status=m["status"],
        provider=m["provider"],
        model=m["model"],
        deployment=m["deployment"],
        latency_ms=m["latency_ms"],
        ttft_ms=m["ttft_ms"],
        input_tokens=m["input_tokens"],
        output_tokens=m["output_tokens"],
        cost_usd=None if cost is None else nanos_to_usd(cost),
        cache=m["cache"],
        error_class=m["error_class"],
        request_id=m["request_id"],
    )
