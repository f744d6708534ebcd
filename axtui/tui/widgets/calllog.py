"""The live log of recent calls, newest at the bottom, with a filter."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual.widgets import RichLog

from axtui.metrics.snapshot import RecentCall
from axtui.tui import fmt
from axtui.tui.filtering import CallFilter
from axtui.tui.widgets.palette import Palette

__all__ = ["CallLog", "format_call"]

#: Calls kept for re-filtering; the log itself shows the last `LINES`.
KEEP = 2_000
LINES = 500


def _key(call: RecentCall) -> tuple[str, float]:
    return (call.request_id, call.ts)


def format_call(call: RecentCall, palette: Palette, width: int) -> Text:
    """One log line: end time, user, model → deployment, status, latency, tokens, cost, cache.

    On a narrow terminal the line keeps the deployment (or the model asked
    for, when none served it) and drops the token counts.
    """
    wide = width >= 110
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(fmt.clock_time(call.ts + call.latency_ms / 1000), palette.muted)
    line.append(f" {call.user[:10]:<10} ")
    target = call.deployment or call.requested_model
    asked = call.requested_model
    served_model = target.split("/", 1)[-1]
    route = f"{asked}→{target}" if wide and asked not in (target, served_model) else target
    route_w = 40 if wide else 27
    if len(route) > route_w:
        route = route[: route_w - 1] + "…"
    line.append(f"{route:<{route_w}} ")
    status = {"rate_limited": "limited", "budget_refused": "budget"}.get(call.status, call.status)
    line.append(f"{status:<8}", palette.status(call.status))
    line.append(f"{fmt.ms(call.latency_ms) if call.status in ('ok', 'error') else '':>6} ")
    if wide:
        line.append(f"{call.input_tokens:>6}→{call.output_tokens:<5} ", palette.muted)
    if call.status != "ok":
        cost = ""
    elif call.cost_usd is None:
        cost = "$?"
    else:
        cost = fmt.usd(call.cost_usd)
    line.append(f"{cost:>9} ")
    if call.cache in ("exact", "semantic"):
        line.append(call.cache if wide else call.cache[:5], palette.accent)
    elif call.error_class:
        line.append(call.error_class, palette.bad)
    return line


class CallLog(RichLog):
    """Recent calls as they arrive; `set_filter` shows only matching ones."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=LINES, wrap=False, markup=False, highlight=False, auto_scroll=True)
        self.calls: deque[RecentCall] = deque(maxlen=KEEP)
        self._seen: set[tuple[str, float]] = set()
        self.filter = CallFilter()
        self.shown = 0
        self._wide = True

    def add(self, recent: Iterable[RecentCall]) -> int:
        """Append the calls not seen before (``recent`` is oldest first); returns how many were new."""
        fresh = [c for c in recent if _key(c) not in self._seen]
        if not fresh:
            return 0
        for c in fresh:
            if len(self.calls) == self.calls.maxlen:
                self._seen.discard(_key(self.calls[0]))
            self.calls.append(c)
            self._seen.add(_key(c))
        self._write(c for c in fresh if self.filter.matches(c))
        return len(fresh)

    def on_resize(self) -> None:
        wide = self.app.size.width >= 110
        if wide != self._wide:
            self._wide = wide
            self.redraw()

    def set_filter(self, new: CallFilter) -> None:
        """Show only calls matching ``new`` (kept calls are re-filtered at once)."""
        self.filter = new
        self.redraw()

    def redraw(self) -> None:
        """Write every kept call again (after a filter or theme change)."""
        self.clear()
        self.shown = 0
        matching = [c for c in self.calls if self.filter.matches(c)]
        self._write(matching[-LINES:])

    def _write(self, calls: Iterable[RecentCall]) -> None:
        palette = Palette.of(self.app)
        width = self.size.width or self.app.size.width
        for c in calls:
            self.write(format_call(c, palette, width), scroll_end=None)
            self.shown += 1
