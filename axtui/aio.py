"""Small asyncio helpers: starting a coroutine eagerly, stopping a background task.

A coroutine started eagerly runs at once, and a task is made only if it has to wait.

Much of what the engine does after a call (settling a budget, a token
estimate, storing an answer) finishes without waiting for anything. An
asyncio task for each costs more than the work itself; `start_eagerly`
runs the coroutine up to its first real wait and hands the rest to a task,
as Python 3.12's eager tasks do.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["cancel_and_wait", "start_eagerly"]


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has stopped (nothing to do for None)."""
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def start_eagerly(work: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run ``work`` until it first waits; a task carries on from there.

    Returns:
        The task, or None when ``work`` finished without waiting.

    Raises:
        Exception: whatever ``work`` raised before it first waited.
    """
    try:
        waiting_on = work.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_Resumed(work, waiting_on))


class _Resumed(collections.abc.Coroutine[Any, Any, None]):
    """A coroutine already started elsewhere, for a task to drive on from where it waits.

    The task's first step gets the future the coroutine is waiting on (as if
    the coroutine had just yielded it); every later step, cancellation
    included, goes to the coroutine itself.
    """

    def __init__(self, work: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        self._work = work
        self._waiting_on: Any = waiting_on
        self._started = False

    def send(self, value: Any) -> Any:
        if not self._started:
            self._started = True
            return self._waiting_on
        return self._work.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        self._started = True
        if val is None and tb is None:
            return self._work.throw(typ)
        return self._work.throw(typ, val, tb)  # the old three-argument form

    def close(self) -> None:
        self._work.close()

    def __await__(self) -> Generator[Any, None, None]:
        raise TypeError("a resumed coroutine is driven by its task, not awaited")
