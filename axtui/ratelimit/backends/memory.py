"""State in this process's memory: the fastest decision, for a single process.

Decisions never wait on I/O, so on one event loop each one is atomic. Other
processes (another ``ax call``, the dashboard) do not see this state; use
the store or Redis backend when they must.
"""

from __future__ import annotations

from collections.abc import Sequence

from axtui.ratelimit.backends.base import Check
from axtui.ratelimit.gcra import Verdict
from axtui.ratelimit.rules import Algorithm, Slot

__all__ = ["MemoryBackend"]

#: Sweep expired states after this many decisions, so idle subjects do not pile up.
_SWEEP_EVERY = 50_000


class MemoryBackend:
    """Rate-limit state in a dict, keyed by slot."""

    name = "memory"
    shared = False

    def __init__(self) -> None:
        self._state: dict[str, object] = {}
        # The algorithm of each key, so a sweep knows when its state expires.
        self._engines: dict[str, Algorithm] = {}
        self._decisions = 0

    async def acquire(self, checks: Sequence[Check], now: float) -> list[Verdict]:
        return self.acquire_now(checks, now)

    def acquire_now(self, checks: Sequence[Check], now: float) -> list[Verdict]:
        """`acquire` without the coroutine (the limiter's fast path)."""
        state = self._state
        self._decisions += 1
        if self._decisions % _SWEEP_EVERY == 0:
            self.sweep(now)
        verdicts: list[Verdict] = []
        # New states wait here until every check has passed (all-or-nothing).
        pending: dict[str, object] = {}
        ok = True
        for slot, cost in checks:
            key = slot.key
            v = slot.engine.decide(pending[key] if key in pending else state.get(key), now, cost)
            verdicts.append(v)
            if v.allowed:
                pending[key] = v.state
            else:
                ok = False
        if ok:
            engines = self._engines
            for slot, _ in checks:
                if slot.key not in state:
                    engines[slot.key] = slot.engine
            state.update(pending)
        return verdicts

    async def adjust(self, slots: Sequence[Slot], delta: int, now: float) -> None:
        for slot in slots:
            self._state[slot.key] = slot.engine.adjust(self._state.get(slot.key), now, delta)
            self._engines[slot.key] = slot.engine

    async def peek(self, slots: Sequence[Slot], now: float) -> list[tuple[int, int, float]]:
        return [slot.engine.peek(self._state.get(slot.key), now) for slot in slots]

    async def clear(self, scope: str, subject: str) -> None:
        prefix = f"{scope}\x1f{subject}\x1f"
        for key in [k for k in self._state if k.startswith(prefix)]:
            del self._state[key]
            self._engines.pop(key, None)

    async def aclose(self) -> None:
        self._state.clear()
        self._engines.clear()

    def sweep(self, now: float) -> int:
        """Drop states that have expired (equivalent to none); the number dropped."""
        gone = [k for k, v in self._state.items() if self._engines[k].expires_at(v) < now]
        for key in gone:
            del self._state[key]
            del self._engines[key]
        return len(gone)

    def __len__(self) -> int:
        return len(self._state)
