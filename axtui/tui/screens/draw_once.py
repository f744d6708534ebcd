"""Drawing a screen once while the dashboard is paused.

A paused dashboard fetches and draws nothing (`DashboardScreen`). Two
moments are exceptions, because freezing them would mislead: an edit made
on the screen (a budget changed while paused must show its new value, and
the next edit must start from it), and a screen opened for the first time
while paused (it would come up empty, with nothing saying why).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from axtui.tui.messages import DataChanged

if TYPE_CHECKING:
    from textual.worker import Worker

    from axtui.tui.screens.base import DashboardScreen

__all__ = ["draw_after_edit", "draw_once", "fill_while_paused"]


def draw_once(screen: DashboardScreen) -> Worker[None]:
    """Fetch ``screen``'s data off the UI thread and draw it once, paused or not; nothing is scheduled."""

    async def fetch_and_show() -> None:
        await _fetch_and_show(screen)

    # The function, not a coroutine made now: a worker cancelled before it starts leaves nothing un-awaited.
    return screen.run_worker(fetch_and_show, group="draw-once", exclusive=True, exit_on_error=False)


async def _fetch_and_show(screen: DashboardScreen) -> None:
    try:
        data = await asyncio.to_thread(screen.fetch)
    except Exception as exc:  # said like a failed fetch; the next fetch (on resume) tries again
        screen.ax.report_problem(str(getattr(exc, "message", None) or exc or type(exc).__name__))
        return
    if screen.is_attached:
        screen.fetches += 1
        screen.show(data)


def draw_after_edit(screen: DashboardScreen, what: str) -> None:
    """After an edit on ``screen``: refresh what watches ``what`` at once, and draw ``screen`` even when paused."""
    if screen.ax.paused:
        draw_once(screen)
    else:
        screen.post_message(DataChanged(what))


def fill_while_paused(screen: DashboardScreen) -> None:
    """A screen shown for the first time while paused: draw it once instead of leaving it empty."""
    if screen.ax.paused and screen.fetches == 0:
        draw_once(screen)
