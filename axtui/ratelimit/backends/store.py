"""State in the store: every local ax process shares it.

``ax serve``, ``ax call`` and the dashboard open the same database, so a
limit set for alice holds across all of them. Each decision is one short
transaction (`axtui.store.tables_ratelimit.StateTable`) that locks, reads
the subject's states, decides with the same pure code as memory, and
writes back; it runs on a worker thread of its own so that a busy database
never stalls the event loop.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from axtui.ratelimit.backends.base import Check
from axtui.ratelimit.gcra import BucketState, Verdict
from axtui.ratelimit.rules import Slot
from axtui.ratelimit.window import CounterState
from axtui.store import Store
from axtui.store.tables_ratelimit import StateRow, StateTable

__all__ = ["StoreBackend", "decode", "encode"]

T = TypeVar("T")

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
    """Rate-limit state in the store's ``ratelimit_state`` table."""

    name = "store"
    shared = True

    def __init__(self, store: Store) -> None:
        self.store = store
        self.table = StateTable(store)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ax-ratelimit")
        self._next_prune = 0.0

    async def acquire(self, checks: Sequence[Check], now: float) -> list[Verdict]:
        return await self._run(lambda: self.acquire_sync(checks, now))

    def acquire_sync(self, checks: Sequence[Check], now: float) -> list[Verdict]:
        """`acquire` on the calling thread (the benchmark's, and the worker's)."""
        verdicts: list[Verdict] = []

        def decide(rows: dict[str, StateRow]) -> list[StateRow]:
            verdicts.clear()
            pending: dict[str, tuple[Slot, object]] = {}
            ok = True
            for slot, cost in checks:
                current = pending[slot.key][1] if slot.key in pending else decode(slot, rows.get(slot.key))
                v = slot.limit.engine.decide(current, now, cost)
                verdicts.append(v)
                if v.allowed:
                    pending[slot.key] = (slot, v.state)
                else:
                    ok = False
            return [encode(slot, state) for slot, state in pending.values()] if ok else []

        self.table.transact([slot.key for slot, _ in checks], decide)
        self._maybe_prune(now)
        return verdicts

    async def adjust(self, slots: Sequence[Slot], delta: int, now: float) -> None:
        def work() -> None:
            def decide(rows: dict[str, StateRow]) -> list[StateRow]:
                return [
                    encode(slot, slot.limit.engine.adjust(decode(slot, rows.get(slot.key)), now, delta))
                    for slot in slots
                ]

            self.table.transact([slot.key for slot in slots], decide)

        await self._run(work)

    async def peek(self, slots: Sequence[Slot], now: float) -> list[tuple[int, int, float]]:
        def work() -> list[tuple[int, int, float]]:
            rows = self.table.read([slot.key for slot in slots]) if slots else {}
            return [slot.limit.engine.peek(decode(slot, rows.get(slot.key)), now) for slot in slots]

        return await self._run(work)

    async def clear(self, scope: str, subject: str) -> None:
        await self._run(lambda: self.table.clear(scope, subject))

    async def aclose(self) -> None:
        await self._run(self.table.close)
        self._pool.shutdown(wait=True)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def _maybe_prune(self, now: float) -> None:
        if now >= self._next_prune:
            self._next_prune = now + _PRUNE_EVERY_S
            self.table.prune(now)
