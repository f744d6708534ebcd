"""The what-if panel: recorded spend beside what another strategy or price file would have spent.

Self-contained: the host gives it a function ``fetch(range, strategy, prices)``
that returns the replay as `axtui.cost.whatif.WhatIf.as_dict` shapes it
(the Costs screen passes its backend's ``whatif``), tells it when its range
changes (`follow`), and what the range holds each time it draws it
(`traffic`). The panel starts hidden; `toggle` shows it and replays. Picking
a strategy, submitting a price file path or changing the range replays
again, off the UI thread; the result names the range it was computed for,
so a replay that failed for a new range cannot pass for it.

New calls make it replay again by themselves, at a modest pace, since a
replay can be costly: only when the host draws them live (not a paused
dashboard drawn once) and the panel is in sight (`in_sight`: shown, on the
screen on top or under dialogs only), at least `FOLLOW_EVERY_S` after the
last replay ended (longer after a slow one), and never beside another one:
one replay runs at a time, and one asked for meanwhile starts when it ends.
The title says how current the figures are: the time they were computed,
and the calls that came since.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from rich.markup import escape
from textual import on, work
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Select, Static
from textual.worker import Worker, WorkerState

from axtui.config import ROUTING_STRATEGIES
from axtui.tui import fmt
from axtui.tui.widgets.sight import in_sight

__all__ = ["FOLLOW_EVERY_S", "Traffic", "WhatIfFetch", "WhatIfPanel", "describe"]

#: ``fetch(range, strategy or None, price file path or None)`` -> the replay as a JSON-like dict.
WhatIfFetch = Callable[[str, str | None, str | None], dict[str, Any]]
#: What the host's range holds as it draws it: (range, calls, spend in nano-dollars).
Traffic = tuple[str, int, int]
#: A replay asked for: (range, strategy or None, price file or None).
_Ask = tuple[str, str | None, str | None]
#: Seconds from the end of one replay to the start of one that follows new calls, at least.
FOLLOW_EVERY_S = 5.0
#: And at least this many times as long as the last replay took: a slow replay (a long range on a big
#: store) keeps a worker thread busy a quarter of the time at most.
FOLLOW_SPACING = 3.0
_TOP_MODELS = 4
_ENDED = (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED)


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.1f}s" if value >= 1000 else f"{value:.0f}ms"


def describe(data: dict[str, Any]) -> str:
    """The replay in a few lines of Textual markup: totals, p95, the biggest models, the first note."""
    t = data["total"]
    recorded, replayed = t["recorded_nanos"], t["replayed_nanos"]
    saved = recorded - replayed
    share = f" ({saved / recorded:.0%})" if recorded else ""
    verdict = (f"[$success]saves {fmt.usd_nanos(saved)}{share}[/]" if saved > 0
               else f"[$error]costs {fmt.usd_nanos(-saved)} more{share.replace('-', '')}[/]" if saved < 0 else "same spend")
    lines = [
        f"recorded [b]{fmt.usd_nanos(recorded)}[/]  ·  what if [b]{fmt.usd_nanos(replayed)}[/]  ·  {verdict}",
        f"p95 {_ms(t['recorded_p95_ms'])} → {_ms(t['projected_p95_ms'])}  ·  moved {t['moved']:,} of "
        f"{fmt.counted(t['calls'], 'call')}",
    ]
    models = sorted(data.get("by_model", {}).items(), key=lambda kv: -kv[1]["recorded_nanos"])[:_TOP_MODELS]
    lines += [f"  {escape(name):<14} {fmt.usd_nanos(g['recorded_nanos'])} → {fmt.usd_nanos(g['replayed_nanos'])}" for name, g in models]
    notes = data.get("notes") or []
    if notes:
        lines.append(f"[dim]{escape(notes[0])}[/]")
    return "\n".join(lines)


class WhatIfPanel(Vertical):
    """Pick a strategy or a price file; see the recorded calls' spend under it beside the real spend."""

    DEFAULT_CSS: ClassVar[str] = """
    WhatIfPanel {
        display: none;
        height: auto;
        border: round $primary;
        border-title-color: $primary;
        padding: 0 1;
    }
    WhatIfPanel.-open { display: block; }
    WhatIfPanel > Horizontal { height: auto; }
    WhatIfPanel Select { width: 30; }
    WhatIfPanel Input { width: 1fr; }
    WhatIfPanel #whatif-result { height: auto; }
    """

    def __init__(self, fetch: WhatIfFetch, range_name: str, *, id: str = "whatif",
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(id=id)
        self.fetch = fetch
        #: Seconds, monotonic: how far apart the replays that follow new calls are (`follow_every_s`).
        self.clock = clock
        #: The least time from the end of one replay to the start of one that follows new calls.
        self.follow_every_s = FOLLOW_EVERY_S
        #: The range the next replay covers: the host's (`follow`).
        self.range = range_name
        #: The range of the replay shown (None before the first).
        self.result_range: str | None = None
        #: The last replay shown (None before the first).
        self.result: dict[str, Any] | None = None
        #: What the host's range held as it last drew it (None before it drew).
        self.traffic_seen: Traffic | None = None
        #: What the host's range held when the replay shown started (None: not known).
        self.result_traffic: Traffic | None = None
        self._asked: _Ask | None = None
        self._worker: Worker[tuple[str, dict[str, Any]]] | None = None
        self._worker_ask: _Ask | None = None
        self._worker_traffic: Traffic | None = None
        self._started_at = 0.0
        self._took = 0.0
        self._ended_at: float | None = None
        self._failed = False
        self._title()

    def compose(self) -> Any:
        with Horizontal():
            yield Select([(f"strategy {s}", s) for s in ROUTING_STRATEGIES], prompt="routing as recorded",
                         id="whatif-strategy")
            yield Input(placeholder="price file (JSON), Enter to replay", id="whatif-prices")
        yield Static("pick a strategy or a price file to replay the recorded calls", id="whatif-result")

    @property
    def is_open(self) -> bool:
        """Whether the panel is shown."""
        return self.has_class("-open")

    @property
    def stale(self) -> bool:
        """Whether the replay shown covers another range than the host's."""
        return self.result_range is not None and self.result_range != self.range

    @property
    def replaying(self) -> bool:
        """Whether a replay is under way."""
        return self._worker is not None

    @property
    def behind(self) -> bool:
        """Whether the host's range holds other calls now than when the replay shown started."""
        seen = self.traffic_seen
        return (self.result is not None and not self.stale and seen is not None and seen[0] == self.range
                and seen != self.result_traffic)

    def _new_calls(self) -> int:
        """Calls the host's range gained since the replay shown started (0 when not known)."""
        seen, then = self.traffic_seen, self.result_traffic
        if not self.behind or seen is None or then is None:
            return 0
        return max(0, seen[1] - then[1])

    def _title(self) -> None:
        parts = ["What if", f"last {self.range}"]
        if self.result is not None and not self.stale and not self._failed:
            until = self.result.get("until")
            if isinstance(until, (int, float)):
                parts.append(f"as of {fmt.clock_time(until)}")
            new = self._new_calls()
            if new:
                parts.append(f"{fmt.counted(new, 'new call')} since")
        if self.replaying:
            parts.append("updating…")
        self.border_title = " · ".join(parts)

    def toggle(self) -> None:
        """Show the panel and replay, or hide it."""
        self.toggle_class("-open")
        if self.is_open:
            self.replay()

    def follow(self, range_name: str) -> None:
        """The host shows another range: replay it now if the panel is open, else when it opens."""
        if range_name == self.range:
            return
        self.range = range_name
        self._title()
        if self.is_open:
            self.replay()

    def traffic(self, seen: Traffic, *, live: bool = True) -> None:
        """The host drew its range, which holds ``seen``: replay again if calls came, unless too soon.

        A replay that follows new calls starts only while the panel is in sight, `follow_every_s` after
        the last one ended at the earliest, and never beside one.

        Args:
            seen: what the range holds as drawn.
            live: whether the host draws because time moves on; False for a paused dashboard drawn
                once (after an edit, or shown for the first time): the new calls are counted, not replayed.
        """
        self.traffic_seen = seen
        if live and self._follows_now():
            self._start()
        self._title()

    def _follows_now(self) -> bool:
        if not self.is_open or self.replaying or self._failed or self._asked is None or not self.behind:
            return False
        if not in_sight(self):
            return False
        wait = max(self.follow_every_s, FOLLOW_SPACING * self._took)
        return self._ended_at is None or self.clock() - self._ended_at >= wait

    def replay(self) -> None:
        """Replay the recorded calls of the range under the chosen strategy and price file (in a worker thread).

        With a replay under way, this one starts when it ends (and that one's result is dropped).
        """
        value = self.query_one("#whatif-strategy", Select).value
        strategy = value if isinstance(value, str) else None
        prices = self.query_one("#whatif-prices", Input).value.strip() or None
        self._asked = (self.range, strategy, prices)
        self.query_one("#whatif-result", Static).update(f"[dim]replaying the calls of the last {self.range}…[/]")
        if not self.replaying:
            self._start()

    def _start(self) -> None:
        ask = self._asked
        if ask is None:
            return
        seen = self.traffic_seen
        self._worker_ask = ask
        self._worker_traffic = seen if seen is not None and seen[0] == ask[0] else None
        self._started_at = self.clock()
        self._worker = self._run(*ask)
        self._title()

    @work(thread=True, exclusive=True, group="whatif", exit_on_error=False)
    def _run(self, range_name: str, strategy: str | None, prices: str | None) -> tuple[str, dict[str, Any]]:
        return range_name, self.fetch(range_name, strategy, prices)

    @on(Select.Changed, "#whatif-strategy")
    def _strategy_picked(self, event: Select.Changed) -> None:
        event.stop()
        if self.is_open:
            self.replay()

    @on(Input.Submitted, "#whatif-prices")
    def _prices_given(self, event: Input.Submitted) -> None:
        event.stop()
        self.replay()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker is not self._worker or event.state not in _ENDED:
            return
        self._worker = None
        self._ended_at = self.clock()
        self._took = self._ended_at - self._started_at
        if event.state == WorkerState.CANCELLED:
            self._title()
            return
        if self._worker_ask != self._asked:
            self._start()  # asked for while this one ran: its result is not what the panel should show
            return
        out = self.query_one("#whatif-result", Static)
        if event.state == WorkerState.SUCCESS and isinstance(worker.result, tuple):
            range_name, result = worker.result
            self.result, self.result_range, self.result_traffic = result, range_name, self._worker_traffic
            self._failed = False
            out.update(f"[b]last {range_name}[/]  ·  " + describe(result))
        elif event.state == WorkerState.ERROR:
            self._failed = True
            error = worker.error
            message = getattr(error, "message", None) or str(error) or type(error).__name__
            out.update(f"[$error]{escape(str(message))}[/]")
        self._title()
