"""The what-if panel: recorded spend beside what another strategy or price file would have spent.

Self-contained: the host gives it a function ``fetch(range, strategy, prices)``
that returns the replay as `axtui.cost.whatif.WhatIf.as_dict` shapes it
(the Costs screen passes its backend's ``whatif``), and tells it when its
range changes (`follow`). The panel starts hidden; `toggle` shows it and
replays. Picking a strategy, submitting a price file path or changing the
range replays again, off the UI thread; the result names the range it was
computed for, so a replay that failed for a new range cannot pass for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.markup import escape
from textual import on, work
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Select, Static
from textual.worker import Worker, WorkerState

from axtui.config import ROUTING_STRATEGIES
from axtui.tui import fmt

__all__ = ["WhatIfFetch", "WhatIfPanel", "describe"]

#: ``fetch(range, strategy or None, price file path or None)`` -> the replay as a JSON-like dict.
WhatIfFetch = Callable[[str, str | None, str | None], dict[str, Any]]
_TOP_MODELS = 4


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
        f"{t['calls']:,} calls",
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
    WhatIfPanel Select { width: 26; }
    WhatIfPanel Input { width: 1fr; }
    WhatIfPanel #whatif-result { height: auto; }
    """

    def __init__(self, fetch: WhatIfFetch, range_name: str, *, id: str = "whatif") -> None:
        super().__init__(id=id)
        self.fetch = fetch
        #: The range the next replay covers: the host's (`follow`).
        self.range = range_name
        #: The range of the replay shown (None before the first).
        self.result_range: str | None = None
        #: The last replay shown (None before the first).
        self.result: dict[str, Any] | None = None
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

    def _title(self) -> None:
        self.border_title = f"What if · last {self.range}"

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

    def replay(self) -> None:
        """Replay the recorded calls of the range under the chosen strategy and price file (in a worker thread)."""
        value = self.query_one("#whatif-strategy", Select).value
        strategy = value if isinstance(value, str) else None
        prices = self.query_one("#whatif-prices", Input).value.strip() or None
        self.query_one("#whatif-result", Static).update(f"[dim]replaying the calls of the last {self.range}…[/]")
        self._run(self.range, strategy, prices)

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
        if event.worker.group != "whatif":
            return
        out = self.query_one("#whatif-result", Static)
        if event.state == WorkerState.SUCCESS and isinstance(event.worker.result, tuple):
            range_name, result = event.worker.result
            self.result, self.result_range = result, range_name
            self._title()
            out.update(f"[b]last {range_name}[/]  ·  " + describe(result))
        elif event.state == WorkerState.ERROR:
            error = event.worker.error
            message = getattr(error, "message", None) or str(error) or type(error).__name__
            out.update(f"[$error]{escape(str(message))}[/]")
