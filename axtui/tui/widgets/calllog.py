"""The live log of recent calls, newest at the bottom, with a filter.

Only the lines on screen are ever formatted (a `ScrollView` that renders
line by line from the kept calls), so a thousand calls a second cost the
same to draw as ten: what arrives is appended to a list, and the frame
draws the forty lines the reader can see.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from axtui.metrics.snapshot import RecentCall
from axtui.tui import fmt
from axtui.tui.filtering import CallFilter
from axtui.tui.widgets.palette import Palette

__all__ = ["KEEP", "LOG_ORDERS", "CallLog", "format_call", "log_header", "log_layout"]

#: Calls kept (for the log and for re-filtering); older ones fall off the top.
KEEP = 2_000
#: Decimals of the log's cost column: every line alike, down to a millionth of a dollar.
LOG_MONEY_DIGITS = 6
#: What the log can be ordered by (``time``: as the calls end, the newest at the bottom).
LOG_ORDERS: tuple[str, ...] = ("time", "latency", "cost", "tokens")


def _order_key(order: str) -> Callable[[RecentCall], Any]:
    """What a call is ordered by; None for a call whose line shows no such figure (a refused call's latency)."""
    if order == "latency":
        return lambda c: c.latency_ms if c.status in ("ok", "error") else None
    if order == "cost":
        return lambda c: c.cost_usd if c.status == "ok" else None
    if order == "tokens":
        return lambda c: c.input_tokens + c.output_tokens
    return lambda c: c.ts + c.latency_ms / 1000


_CURSOR = Style(reverse=True)


def _key(call: RecentCall) -> tuple[str, float]:
    return (call.request_id, call.ts)


#: A log line's characters besides the route and the token counts: time, user, status, latency, cost,
#: the cache's first five letters, and the spaces between.
_BASE = 8 + 1 + 10 + 1 + 1 + 8 + 7 + 1 + 9 + 1 + 5
#: The token counts' characters (``1,234→567``): as wide as their heading, ``tokens in→out``.
_TOKENS = 17
#: The route's width: the least it gets beside the token counts, the width from which it reads
#: ``model → deployment``, and the most it takes.
ROUTE_LEAST, ROUTE_BOTH, ROUTE_MOST = 27, 40, 58


def log_layout(width: int) -> tuple[int, bool]:
    """(route width, whether the token counts show) on a log ``width`` characters wide.

    The token counts show as soon as the route keeps `ROUTE_LEAST` characters beside them;
    the route takes the rest, up to `ROUTE_MOST`.
    """
    tokens = width >= _BASE + _TOKENS + ROUTE_LEAST
    route = width - _BASE - (_TOKENS if tokens else 0)
    return max(ROUTE_LEAST if tokens else 10, min(ROUTE_MOST, route)), tokens


def log_header(width: int) -> str:
    """The column names over the log, aligned with `format_call`'s fields at ``width``."""
    route_w, tokens = log_layout(width)
    head = f"{'ended':<8} {'user':<10} {'model → deployment' if route_w >= ROUTE_BOTH else 'deployment':<{route_w}} "
    head += f"{'status':<8}{'latency':>7} "
    if tokens:
        head += f"{'tokens in':>9}→{'out':<6} "
    return head + f"{'cost':>9} cache"


def format_call(call: RecentCall, palette: Palette, width: int) -> Text:
    """One log line, ``width`` characters at most: end time, user, model → deployment, status, latency, tokens,
    cost, cache.

    The route and the token counts take the room there is (`log_layout`): a narrow log keeps the
    deployment (or the model asked for, when none served it) and drops the token counts. Text cut
    ends in ….
    """
    route_w, tokens = log_layout(width)
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(fmt.clock_time(call.ts + call.latency_ms / 1000), palette.muted)
    user = call.user if len(call.user) <= 10 else call.user[:9] + "…"
    line.append(f" {user:<10} ")
    target = call.deployment or call.requested_model
    asked = call.requested_model
    served_model = target.split("/", 1)[-1]
    route = f"{asked}→{target}" if route_w >= ROUTE_BOTH and asked not in (target, served_model) else target
    if len(route) > route_w:
        route = route[: route_w - 1] + "…"
    line.append(f"{route:<{route_w}} ")
    status = {"rate_limited": "limited", "budget_refused": "budget"}.get(call.status, call.status)
    line.append(f"{status:<8}", palette.status(call.status))
    line.append(f"{fmt.ms(call.latency_ms) if call.status in ('ok', 'error') else '':>7} ")
    if tokens:
        line.append(f"{call.input_tokens:>9,}→{call.output_tokens:<6,} ", palette.muted)
    if call.status != "ok":
        cost = ""
    elif call.cost_usd is None:
        cost = "$?"
    else:
        cost = fmt.usd_fixed(call.cost_usd, LOG_MONEY_DIGITS)
    line.append(f"{cost:>9} ")
    if call.cache in ("exact", "semantic"):
        line.append(call.cache, palette.accent)
    elif call.error_class:
        line.append(call.error_class, palette.bad)
    if width > 0 and line.cell_len > width:
        line.truncate(width, overflow="ellipsis")
    return line


class CallLog(ScrollView, can_focus=True):
    """Recent calls as they arrive; `set_filter` shows only matching ones."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("j,down", "move(1)", "Down", show=False),
        Binding("k,up", "move(-1)", "Up", show=False),
        Binding("g,home", "first", "First", show=False),
        Binding("G,end", "last", "Last", show=False),
        Binding("enter", "open", "Details"),
    ]

    @dataclass
    class Selected(Message):
        """Enter on a call: show its details."""

        call: RecentCall

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.calls: deque[RecentCall] = deque(maxlen=KEEP)
        self._seen: set[tuple[str, float]] = set()
        #: The calls shown: those kept that pass the filter, oldest first.
        self.view: deque[RecentCall] = deque(maxlen=KEEP)
        self.filter = CallFilter()
        #: The order of the lines (one of `LOG_ORDERS`), and whether the largest come first.
        self.order = "time"
        self.descending = False
        #: Whether the view stays on the head of the order (the newest calls at the bottom, or the first rows of
        #: another order at the top): true until the reader scrolls away, and again once back there.
        self.following = True
        self._strips: LRUCache[tuple[str, float, int, str], Strip] = LRUCache(1024)
        #: The call the cursor is on (its request id and time), or None: then the log follows.
        self.cursor_key: tuple[str, float] | None = None

    @property
    def head_at_top(self) -> bool:
        """Whether the rows that matter most are at the top: any order but time, oldest first (newest at the bottom)."""
        return self.order != "time" or self.descending

    @property
    def cursor(self) -> int | None:
        """The index in `view` of the call under the cursor (None without a cursor, or once it left)."""
        if self.cursor_key is None:
            return None
        for i in range(len(self.view) - 1, -1, -1):
            if _key(self.view[i]) == self.cursor_key:
                return i
        return None

    def _put_cursor(self, index: int) -> None:
        if not self.view:
            return
        index = max(0, min(len(self.view) - 1, index))
        self.cursor_key = _key(self.view[index])
        self.following = False  # a row picked stays where it is
        top = int(self.scroll_offset.y)
        height = max(1, self.size.height)
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + height:
            self.scroll_to(y=index - height + 1, animate=False, immediate=True)
        self.refresh()

    def _head(self) -> int:
        return 0 if self.head_at_top else len(self.view) - 1

    def action_move(self, delta: int) -> None:
        """Move the cursor a row down (1) or up (-1); the first move starts at the head (the newest, or the top)."""
        current = self.cursor
        if current is None:
            self._put_cursor(self._head())
        else:
            self._put_cursor(current + delta)

    def action_first(self) -> None:
        """The cursor on the first call shown."""
        self._put_cursor(0)

    def action_last(self) -> None:
        """The cursor on the last call shown."""
        self._put_cursor(len(self.view) - 1)

    def action_open(self) -> None:
        """Show the details of the call under the cursor."""
        index = self.cursor
        if index is None and self.view:
            index = self._head()
        if index is not None:
            self.post_message(self.Selected(self.view[index]))

    def release(self) -> None:
        """Drop the cursor and follow new calls again."""
        self.cursor_key = None
        self.following = True
        self._resized(True)

    @property
    def shown(self) -> int:
        """How many calls pass the filter (the log's length)."""
        return len(self.view)

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
            if self.filter.matches(c):
                self.view.append(c)
        if self.order != "time" or self.descending:
            self._sort_view()
        self._resized(self.following)
        return len(fresh)

    def order_by(self, order: str, descending: bool = False) -> None:
        """Order the lines by ``order`` (one of `LOG_ORDERS`), largest first when ``descending``.

        The view goes to the head of the new order (the top, or the newest at the bottom in time order)
        and the cursor is dropped: what the title names is what the reader sees.
        """
        self.order = order if order in LOG_ORDERS else "time"
        self.descending = descending
        self._sort_view()
        self._strips.clear()
        self.cursor_key = None
        self.following = True
        self._resized(True)

    def _sort_view(self) -> None:
        # Calls without the figure (blank on their line) go last either way, in the order they came.
        key = _order_key(self.order)
        ranked = sorted((c for c in self.view if key(c) is not None), key=key, reverse=self.descending)
        self.view = deque([*ranked, *(c for c in self.view if key(c) is None)], maxlen=KEEP)

    def set_filter(self, new: CallFilter) -> None:
        """Show only calls matching ``new`` (kept calls are re-filtered at once)."""
        self.filter = new
        self.view = deque((c for c in self.calls if new.matches(c)), maxlen=KEEP)
        if self.order != "time" or self.descending:
            self._sort_view()
        self.following = True
        self._resized(True)

    def redraw(self) -> None:
        """Format every visible line again (after a theme change)."""
        self._strips.clear()
        self.refresh()

    def _resized(self, follow: bool) -> None:
        self.virtual_size = Size(self.size.width, len(self.view))
        if follow and self.head_at_top:
            self.scroll_home(animate=False, immediate=True, x_axis=False)
        elif follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        top = self.head_at_top
        if (new_value <= 0 if top else new_value >= self.max_scroll_y) and self.cursor_key is None:
            # At the head: follow. A filter that shrinks the log also pulls the offset down to
            # the new bottom; that is not the reader scrolling away.
            self.following = True
        elif new_value > old_value if top else new_value < old_value:
            self.following = False  # the reader scrolled away to read: leave the view where it is

    def on_resize(self) -> None:
        self._strips.clear()
        self._resized(self.following)

    def _empty_line(self, width: int, style: Style) -> Strip:
        """The log's first line while it shows no call: why."""
        if self.filter:
            why = f"no recent call matches {self.filter.text}" if self.calls else "no calls yet"
        else:
            why = "no calls yet: each one shows here as it ends"
        note = Text(why, style=Palette.of(self.app).muted, no_wrap=True, overflow="ellipsis")
        note.truncate(width, overflow="ellipsis")
        return Strip(list(note.render(self.app.console, end=""))).apply_style(style).crop_extend(0, width, style)

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_offset.y) + y
        width = self.size.width
        style = self.rich_style
        if not 0 <= index < len(self.view):
            if index == 0:
                return self._empty_line(width, style)
            return Strip.blank(width, style)
        call = self.view[index]
        key = (call.request_id, call.ts, width, self.app.theme)
        strip = self._strips.get(key)
        if strip is None:
            text = format_call(call, Palette.of(self.app), width)
            segments = list(text.render(self.app.console, end=""))
            strip = Strip(segments).apply_style(style).crop_extend(0, width, style)
            self._strips[key] = strip
        if self.cursor_key is not None and _key(call) == self.cursor_key:
            return strip.apply_style(_CURSOR)
        return strip
