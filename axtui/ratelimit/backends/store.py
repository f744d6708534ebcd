"""State in the store: every local ax process shares it.

``ax serve``, ``ax call`` and the dashboard open the same database, so a
limit set for alice holds across all of them. Each decision is one short
transaction (`axtui.store.tables_ratelimit.StateTable`) that locks, reads
the subject's states, decides with the same pure code as memory, and
writes back; it runs on a worker thread of its own so that a busy database
never stalls the event loop.

A busy limit is mostly decided in memory instead, from quota leased from
the store a little at a time (`axtui.ratelimit.backends.lease`): the store
still grants every unit, so processes together never exceed the limit.
"""

from __future__ import annotations

import asyncio
import logging
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from axtui.aio import cancel_and_wait
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.ratelimit.backends.base import Check
from axtui.ratelimit.backends.lease import LEASE_TTL_S, Ask, LeaseBook
from axtui.ratelimit.gcra import BucketState, Verdict
from axtui.ratelimit.rules import Slot
from axtui.ratelimit.window import CounterState
from axtui.store import Store
from axtui.store.tables_ratelimit import StateRow, StateTable

__all__ = ["StoreBackend", "decode", "encode"]

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Seconds between sweeps of expired state rows.
_PRUNE_EVERY_S = 300.0


def decode(slot: Slot, row: StateRow | None) -> object:
    """A state row as the slot's algorithm state (None: no state)."""
    if row is None:
        return None
    kind = slot.limit.kind
    if kind == "tb":
        return BucketState(row.at, row.level) if row.at > 0 else None
    if kind == "sw":
        return CounterState(row.at, row.prev_count, row.curr_count) if row.at > 0 else None
    if row.log:
        entries = array("d")
        entries.frombytes(row.log)
        return tuple(entries)
    return None


def encode(slot: Slot, state: Any) -> StateRow:
    """An algorithm state as a state row."""
    row = StateRow(slot.key, slot.scope, slot.subject)
    kind = slot.limit.kind
    engine = slot.limit.engine
    if kind == "tb" and state is not None:
        row.at, row.level = state.stamp, state.level
    elif kind == "sw" and state is not None:
        row.at, row.prev_count, row.curr_count = state.start, state.previous, state.current
    elif kind == "mw" and state:
        row.log = array("d", state).tobytes()
    row.expires_at = engine.expires_at(state)
    return row


class StoreBackend:
    """Rate-limit state in the store's ``ratelimit_state`` table.

    Args:
        store: the open store.
        clock: the limiter's clock: leases live on its monotonic time, and
            their unspent units are given back as of its ``now``. One clock
            for both, or a refund stamped later than the decisions credits
            them with refill that never happened.
        leases: decide busy limits from leases (see `axtui.ratelimit.backends.lease`).
    """

    name = "store"
    shared = True

    def __init__(self, store: Store, *, clock: Clock = SYSTEM_CLOCK, leases: bool = True) -> None:
        self.store = store
        self.clock = clock
        self.table = StateTable(store)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ax-ratelimit")
        self._next_prune = 0.0
        self.leases = LeaseBook(clock.monotonic) if leases else None
        self._flusher: asyncio.Task[None] | None = None
        self._refills: dict[str, asyncio.Future[bool]] = {}

    async def acquire(self, checks: Sequence[Check], now: float) -> list[Verdict]:
        book = self.leases
        if book is None:
            return await self._run(lambda: self.acquire_sync(checks, now))
        local = book.spend(checks, now)
        if local is not None:
            return local
        # One refill per limit at a time: calls that miss meanwhile wait for it and
        # spend from it, instead of each leasing a grant of its own; after a refill that
        # was refused they ask the store themselves.
        while waits := {id(f): f for slot, _ in checks if (f := self._refills.get(slot.key)) is not None}:
            await asyncio.wait(list(waits.values()))
            local = book.spend(checks, now)
            if local is not None:
                return local
            if not all(f.result() for f in waits.values()):
                break
        asks = book.borrow(checks)
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        mine = []
        for ask in asks:
            if ask.grant:
                if ask.slot.key in self._refills:
                    ask.grant = 0
                else:
                    mine.append(ask.slot.key)
                    self._refills[ask.slot.key] = done
        verdicts: list[Verdict] = []
        try:
            verdicts, granted = await self._run(lambda: self._acquire_asks(asks, now))
        except BaseException:
            book.give_back(asks)
            raise
        finally:
            for key in mine:
                del self._refills[key]
            done.set_result(all(v.allowed for v in verdicts))
        if not all(v.allowed for v in verdicts):
            book.give_back(asks)
            return verdicts
        out = book.keep(asks, granted, verdicts, now)
        if any(granted):
            self._start_flusher()
        return out

    def acquire_sync(self, checks: Sequence[Check], now: float) -> list[Verdict]:
        """`acquire` on the calling thread without leases (the benchmark's, and the worker's)."""
        return self._acquire_asks([Ask(slot, cost, 0, cost, 0) for slot, cost in checks], now)[0]

    def _acquire_asks(self, asks: Sequence[Ask], now: float) -> tuple[list[Verdict], list[int]]:
        """One transaction: each ask's ``need`` (plus its grant when there is room), all or nothing."""
        verdicts: list[Verdict] = []
        granted: list[int] = []

        def decide(rows: dict[str, StateRow]) -> list[StateRow]:
            verdicts.clear()
            granted.clear()
            pending: dict[str, tuple[Slot, object]] = {}
            ok = True
            for ask in asks:
                slot = ask.slot
                if not ask.need:
                    # Covered by the lease: nothing to ask the store (`LeaseBook.keep` fills the figures in).
                    verdicts.append(Verdict(True, None, 0, 0.0, 0.0))
                    granted.append(0)
                    continue
                current = pending[slot.key][1] if slot.key in pending else decode(slot, rows.get(slot.key))
                engine = slot.limit.engine
                got = 0
                v = engine.decide(current, now, ask.need + ask.grant) if ask.grant else None
                if v is not None and v.allowed:
                    got = ask.grant
                else:
                    v = engine.decide(current, now, ask.need)
                verdicts.append(v)
                granted.append(got)
                if v.allowed:
                    pending[slot.key] = (slot, v.state)
                else:
                    ok = False
            return [encode(slot, state) for slot, state in pending.values()] if ok else []

        keys = [ask.slot.key for ask in asks if ask.need]
        if keys:
            self.table.transact(keys, decide)
            self._maybe_prune(now)
        else:
            decide({})
        return verdicts, granted

    async def adjust(self, slots: Sequence[Slot], delta: int, now: float) -> None:
        book = self.leases
        if book is not None:
            slots = [slot for slot in slots if not book.correct(slot, delta)]
            if not slots:
                return
        await self._run(lambda: self._adjust_sync([(slot, delta) for slot in slots], now))

    def _adjust_sync(self, changes: Sequence[tuple[Slot, int]], now: float) -> None:
        def decide(rows: dict[str, StateRow]) -> list[StateRow]:
            return [
                encode(slot, slot.limit.engine.adjust(decode(slot, rows.get(slot.key)), now, delta))
                for slot, delta in changes
            ]

        self.table.transact([slot.key for slot, _ in changes], decide)

    async def flush_leases(self, now: float | None = None, *, everything: bool = False) -> None:
        """Give expired leases' unspent units back and write queued corrections (all leases with ``everything``)."""
        if self.leases is None:
            return
        book = self.leases
        changes = book.expire(everything=everything)
        if changes:
            stamp = now if now is not None else self.clock.now()
            write = asyncio.get_running_loop().run_in_executor(self._pool, lambda: self._adjust_sync(changes, stamp))
            try:
                await asyncio.shield(write)
            except asyncio.CancelledError:
                # The write goes on in its thread: queued again only if it failed, or these units
                # would be given back twice (the cancelled flusher of `aclose`, then its last flush).
                await asyncio.wait([write])
                if write.exception() is not None:
                    self._queue_again(changes)
                raise
            except BaseException:
                self._queue_again(changes)
                raise

    def _queue_again(self, changes: list[tuple[Slot, int]]) -> None:
        """Changes whose write failed: written with the next flush."""
        assert self.leases is not None
        for slot, delta in changes:
            self.leases.charge(slot, delta)

    def _start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while self.leases:
            await asyncio.sleep(LEASE_TTL_S / 2)
            try:
                await self.flush_leases()
            except Exception as exc:  # the units stay queued only if the write failed before taking them
                log.warning("rate-limit leases not given back yet: %s", exc)

    async def peek(self, slots: Sequence[Slot], now: float) -> list[tuple[int, int, float]]:
        def work() -> list[tuple[int, int, float]]:
            rows = self.table.read([slot.key for slot in slots]) if slots else {}
            return [slot.limit.engine.peek(decode(slot, rows.get(slot.key)), now) for slot in slots]

        seen = await self._run(work)
        if self.leases is None:
            return seen
        # Units this process leased but has not spent are not in use yet.
        out = []
        for slot, (used, remaining, reset) in zip(slots, seen, strict=True):
            held = min(used, self.leases.held(slot.key))
            out.append((used - held, remaining + held, reset))
        return out

    async def clear(self, scope: str, subject: str) -> None:
        if self.leases is not None:
            self.leases.forget(f"{scope}\x1f{subject}\x1f")
        await self._run(lambda: self.table.clear(scope, subject))

    async def aclose(self) -> None:
        await cancel_and_wait(self._flusher)
        try:
            await self.flush_leases(everything=True)
        except Exception as exc:  # closing anyway: the held units come back when the window refills
            log.warning("rate-limit leases not given back on close: %s", exc)
        await self._run(self.table.close)
        self._pool.shutdown(wait=True)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def _maybe_prune(self, now: float) -> None:
        if now >= self._next_prune:
            self._next_prune = now + _PRUNE_EVERY_S
            self.table.prune(now)
