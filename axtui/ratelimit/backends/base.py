"""The interface every rate-limit backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from axtui.ratelimit.gcra import Verdict
from axtui.ratelimit.rules import Slot

__all__ = ["Backend", "Check"]

#: One limit to check and the units it would spend (1 for requests, the estimate for tokens).
Check = tuple[Slot, int]


class Backend(Protocol):
    """Rate-limit state and the atomic decisions over it."""

    #: ``memory``, ``store`` or ``redis``.
    name: str
    #: Whether other processes see the same state (status from another process is meaningful).
    shared: bool

    async def acquire(self, checks: Sequence[Check], now: float) -> list[Verdict]:
        """Decide every check at once: all pass and are kept, or none is.

        Returns one verdict per check, in order; when any is refused, no
        state changed.
        """
        ...

    async def adjust(self, slots: Sequence[Slot], delta: int, now: float) -> None:
        """Charge ``delta`` more units to each slot (or refund ``-delta``), unconditionally."""
        ...

    async def peek(self, slots: Sequence[Slot], now: float) -> list[tuple[int, int, float]]:
        """``(used, remaining, reset_after)`` of each slot, spending nothing."""
        ...

    async def clear(self, scope: str, subject: str) -> None:
        """Forget every state of one subject (its quota is full again)."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...
