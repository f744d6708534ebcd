"""Screen 2, Costs: spend over time, breakdown, projection, savings, unpriced calls."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Click
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey
from textual_plotext import PlotextPlot

from axtui.cost.rollups import Totals
from axtui.money import NANOS_PER_USD, nanos_to_usd, usd_text
from axtui.tui import fmt
from axtui.tui.export_view import ViewRows
from axtui.tui.screens.base import DashboardScreen
from axtui.tui.views import GROUPS, RANGES, CostView
from axtui.tui.widgets.palette import Palette
from axtui.tui.widgets.table_sync import order_rows, sync_table
from axtui.tui.widgets.tables import FitTable
from axtui.tui.widgets.whatif import WhatIfPanel

__all__ = ["ORDERS", "UNNAMED", "CostsScreen", "breakdown_cells", "row_name", "spend_axis"]

#: Breakdown orders the ``o`` key cycles through: (name, sort key of a row's totals).
ORDERS: tuple[str, ...] = ("cost", "calls", "tokens", "name")
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("name", "Name", 0),
    ("cost", "Cost", 11),
    ("share", "Share", 5),
    ("calls", "Calls", 7),
    ("unknown", "Unpriced", 8),
    ("saved", "Saved", 11),
    ("hits", "Hits", 6),
    ("tokens", "Tokens in/out", 13),
)
_KEYS = tuple(c[0] for c in COLUMNS)


def _right(text: str, style: str = "") -> Text:
    return Text(text, style=style, justify="right")


#: What a breakdown row with no name holds, by grouping: calls refused before any provider was chosen
#: (a rate limit, a budget, no deployment) have neither provider nor model; calls without a user, no user.
UNNAMED: dict[str, str] = {"provider": "(not routed)", "model": "(not routed)", "user": "(no user)"}


def row_name(key: str, by: str) -> str:
    """A breakdown row's name as shown: ``key``, or what its empty key means for the grouping ``by``."""
    return key or UNNAMED.get(by, "(none)")


def breakdown_cells(key: str, totals: Totals, total_nanos: int, palette: Palette,
                    digits: tuple[int, int] = (4, 4), by: str = "provider") -> tuple[Any, ...]:
    """One breakdown row in `COLUMNS` order; ``digits`` are the decimals of the cost and saved columns."""
    share = totals.cost_nanos / total_nanos if total_nanos else None
    cost_digits, saved_digits = digits
    return (
        Text(row_name(key, by), style="" if key else palette.muted, no_wrap=True, overflow="ellipsis"),
        _right(fmt.usd_fixed(nanos_to_usd(totals.cost_nanos), cost_digits)),
        _right(fmt.pct(share, 0) if share is not None else "–", palette.muted),
        _right(fmt.count(totals.calls)),
        _right(fmt.count(totals.unknown_price_calls) if totals.unknown_price_calls else "–",
               palette.warn if totals.unknown_price_calls else palette.muted),
        _right(fmt.usd_fixed(nanos_to_usd(totals.saved_nanos), saved_digits) if totals.saved_nanos else "–",
               palette.ok if totals.saved_nanos else ""),
        _right(fmt.count(totals.cache_hits)),
        _right(f"{_short(totals.input_tokens)}/{_short(totals.output_tokens)}", palette.muted),
    )


#: Steps a nice axis top is made of, times a power of ten: labels stay short ($0.60, not $0.5716).
_NICE = (1, Decimal("1.2"), Decimal("1.5"), 2, Decimal("2.5"), 3, 4, 5, 6, 8, 10)


def _axis_labels(ticks: list[Decimal]) -> list[str]:
    """Axis labels in dollars, with as few decimals as the round ticks need (cents when there are any)."""
    decimals = max(max(0, -t.normalize().as_tuple().exponent) for t in ticks)  # type: ignore[operator]
    decimals = max(decimals, 2) if decimals else 0
    return ["$0" if not t else f"${t:,.{decimals}f}" for t in ticks]


def spend_axis(highest: float) -> tuple[list[float], list[str], float]:
    """The spend chart's y axis: (ticks, their labels in dollars, its top), always from $0.

    The top is the first round amount at or above ``highest``; with no spend there is one tick,
    ``$0``, so an empty chart reads as nothing spent (never as -1..1).
    """
    if highest <= 0 or not math.isfinite(highest):
        return [0.0], ["$0"], 1.0
    peak = Decimal(repr(highest))
    power = Decimal(10) ** math.floor(math.log10(highest))
    top = next(step * power for step in _NICE if step * power >= peak)
    ticks = [Decimal(0), top / 2, top]
    return [float(t) for t in ticks], _axis_labels(ticks), float(top)


def _short(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)


def _sort_key(order: str) -> Any:
    if order == "calls":
        return lambda row: -row.totals.calls
    if order == "tokens":
        return lambda row: -(row.totals.input_tokens + row.totals.output_tokens)
    if order == "name":
        return lambda row: row.key
    return lambda row: -row.totals.cost_nanos


class _Choice(Static):
    """One clickable option of a selector line (a range, a grouping)."""

    def __init__(self, label: str, action: str, value: str) -> None:
        super().__init__(label, classes="choice")
        self.action = action
        self.value = value

    async def on_click(self, event: Click) -> None:
        event.stop()
        await self.screen.run_action(f"{self.action}('{self.value}')")


class CostsScreen(DashboardScreen):
    """Spend chart, summary with projection, and a sortable breakdown."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("r", "next_range", "Range"),
        Binding("b", "next_group", "Group by"),
        Binding("o", "next_order", "Order"),
        Binding("w", "whatif", "What if", show=False),
        Binding("O", "reverse_order", "Reverse order", show=False),
    ]
    MODE = "costs"
    MIN_INTERVAL_S = 2.0
    WATCHES = frozenset({"budgets"})
    HELP = """[b]Costs[/] are read from the spend rollups, exactly as `ax cost summary` and `ax cost breakdown`
compute them. [i]Unpriced[/] calls were served at an unknown price: they are not in the totals.
[i](not routed)[/]: calls refused before a provider was chosen (a rate limit, a budget, no deployment).
Click a range or a grouping to choose it. [b]w[/] replays the range's calls under another strategy or price file,
and again as new calls come in (every few seconds at most; its title says how current it is)."""

    def __init__(self) -> None:
        super().__init__()
        self.range = "24h"
        self.by = GROUPS[0]
        self.order = ORDERS[0]
        #: Whether the breakdown is ordered the other way (smallest first, Z→A).
        self.reverse = False
        self._last: CostView | None = None

    def compose_body(self) -> Iterable[Any]:
        with Horizontal(id="cost-top"):
            with Vertical(id="chart-box", classes="section"):
                yield PlotextPlot(id="spend-chart")
            with Vertical(id="summary-box", classes="section"):
                yield Static(id="cost-summary")
        with Horizontal(id="cost-controls"):
            yield Static("range", classes="choice-label")
            for name in RANGES:
                yield _Choice(name, "set_range", name)
            yield Static("  by", classes="choice-label")
            for group in GROUPS:
                yield _Choice(group, "set_group", group)
            yield Static("", id="order-label", classes="choice-label")
        with Vertical(id="breakdown-box", classes="section"):
            table: DataTable[Any] = FitTable(id="breakdown", squeeze=("name", 22, 28, 44),
                                             drop=("tokens", "hits", "unknown"))
            for key, label, width in COLUMNS:
                table.add_column(label, key=key, width=width or None)
            yield table
        yield WhatIfPanel(self.backend.whatif, self.range)

    def on_mount(self) -> None:
        self._controls()
        self.query_one("#chart-box").border_title = "Spend over time"
        self.query_one("#summary-box").border_title = "Summary"

    def export_kind(self) -> str:
        return "costs"

    def export_view(self) -> ViewRows | None:
        """The breakdown on screen: its range, its grouping, its order."""
        view = self._last
        if view is None:
            return None
        total = view.breakdown.total.cost_nanos
        rows = []
        for row in sorted(view.breakdown.rows, key=_sort_key(self.order), reverse=self.reverse):
            t = row.totals
            share = Decimal(t.cost_nanos) / total if total else None
            rows.append([row.key, usd_text(t.cost_nanos),
                         None if share is None else format(round(share, 4), "f"), t.calls,
                         t.unknown_price_calls, usd_text(t.saved_nanos), t.cache_hits,
                         t.input_tokens, t.output_tokens])
        columns = (view.by, "cost_usd", "share", "calls", "unpriced_calls", "saved_usd", "cache_hits",
                   "input_tokens", "output_tokens")
        return ViewRows(f"costs by {view.by} {view.range}",
                        f"spend by {view.by} over the last {view.range}: {len(rows)} rows, ordered by {self.order}",
                        columns, rows)

    # -- data ------------------------------------------------------------------------------

    def fetch(self) -> CostView:
        self.backend.wait_ready(60)
        return self.backend.costs(self.range, self.by)

    def show(self, view: CostView) -> None:
        self._last = view
        palette = Palette.of(self.app)
        with self.app.batch_update():
            self._draw_chart(view)
            self._draw_summary(view, palette)
            self._draw_breakdown(view, palette)
        totals = view.summary.totals
        # New calls in the range: the what-if panel replays them too, at its own pace.
        self.query_one(WhatIfPanel).traffic((view.range, totals.calls, totals.cost_nanos), live=not self.ax.paused)

    def _draw_chart(self, view: CostView) -> None:
        plot = self.query_one("#spend-chart", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        seconds, _, grain_s = RANGES[view.range]
        start = int(view.until - seconds) // grain_s * grain_s
        buckets = {int(p.ts) // grain_s * grain_s: p for p in view.points}
        xs: list[float] = []
        ys: list[float] = []
        t = start
        while t <= view.until:
            p = buckets.get(t)
            xs.append(float(t))
            # Dollars as floats for drawing only; every figure printed comes from exact sums.
            ys.append(p.cost_nanos / NANOS_PER_USD if p else 0.0)
            t += grain_s
        if grain_s >= 86_400:
            fmt_x = "%d %b"
        elif seconds > 86_400:
            fmt_x = "%a %H:%M"
        else:
            fmt_x = "%H:%M"
        n = len(xs)
        if grain_s >= 86_400 or n <= 48:
            plt.bar(xs, ys, width=0.6, marker="hd")
        else:
            plt.plot(xs, ys, marker="braille")
        step = max(1, n // 5)
        ticks = xs[::step]
        plt.xticks(ticks, [time.strftime(fmt_x, time.localtime(x)) for x in ticks])
        per = {60: "minute", 3600: "hour", 86_400: "day"}[grain_s]
        plt.ylabel(f"$ per {per}")
        ticks_y, labels_y, top = spend_axis(max(ys, default=0.0))
        # Money starts at $0: plotext would centre an all-zero series on -1..1, and start a line at its lowest point.
        plt.ylim(0.0, top)
        plt.yticks(ticks_y, labels_y)
        plot.refresh()

    def _draw_summary(self, view: CostView, palette: Palette) -> None:
        s = view.summary
        t = s.totals
        p = s.projection
        per_call = s.cost_per_call_usd
        lines = [
            f"[b]{fmt.usd(s.total_usd)}[/] over the last {view.range}",
            f"{fmt.counted(t.calls, 'call')} · {fmt.usd(per_call) if per_call is not None else '–'}/call",
            f"tokens {_short(t.input_tokens)} in · {_short(t.output_tokens)} out",
            f"cache saved [$success]{fmt.usd_nanos(t.saved_nanos)}[/] ({fmt.counted(t.cache_hits, 'hit')})",
            "",
            f"[b]Projection[/] at {fmt.usd_nanos(p.rate_nanos_per_hour)}/h",
            f"today {fmt.usd_nanos(p.day_so_far_nanos)} → [b]{fmt.usd_nanos(p.end_of_day_nanos)}[/]",
            f"month {fmt.usd_nanos(p.month_so_far_nanos)} → [b]{fmt.usd_nanos(p.end_of_month_nanos)}[/]",
        ]
        if t.unknown_price_calls:
            names = ", ".join(f"{n} ({c})" for n, c in view.unknown[:3])
            lines += ["", f"[$warning]▲ {fmt.counted(t.unknown_price_calls, 'call')} at unknown price[/]"]
            if names:
                lines.append(f"[dim]{names}[/]")
        else:
            lines += ["", "[dim]every call priced[/]"]
        self.query_one("#cost-summary", Static).update("\n".join(lines))

    def _draw_breakdown(self, view: CostView, palette: Palette) -> None:
        table = self.query_one("#breakdown", DataTable)
        name = table.columns[ColumnKey("name")]
        if name.label.plain != self.by.capitalize():
            name.label = Text(self.by.capitalize())
        rows = sorted(view.breakdown.rows, key=_sort_key(self.order), reverse=self.reverse)
        total = view.breakdown.total.cost_nanos
        digits = (fmt.money_digits(nanos_to_usd(r.totals.cost_nanos) for r in rows),
                  fmt.money_digits(nanos_to_usd(r.totals.saved_nanos) for r in rows))
        cells = {row_name(row.key, self.by): breakdown_cells(row.key, row.totals, total, palette, digits, self.by)
                 for row in rows}
        sync_table(table, cells, _KEYS)
        self.query_one("#breakdown", FitTable).empty = f"no calls in the last {view.range}"
        order_rows(table, [row_name(row.key, self.by) for row in rows], "name")
        self.query_one("#breakdown-box").border_title = (
            f"By {self.by} · last {view.range} · {fmt.counted(len(rows), 'row')} · total {fmt.usd(Decimal(total) / NANOS_PER_USD)}"
        )

    # -- controls --------------------------------------------------------------------------

    def _controls(self) -> None:
        for choice in self.query(_Choice):
            current = self.range if choice.action == "set_range" else self.by
            choice.set_class(choice.value == current, "-active")
        arrow = " ↑" if self.reverse else ""
        self.query_one("#order-label", Static).update(f"  order [b]{self.order}{arrow}[/] (o, O)")

    def action_set_range(self, name: str) -> None:
        """Show the last ``name`` (1h, 24h, 7d, 30d)."""
        if name in RANGES and name != self.range:
            self.range = name
            self._controls()
            self.query_one(WhatIfPanel).follow(name)
            self.refresh_now()

    def action_set_group(self, group: str) -> None:
        """Break spend down by ``group`` (provider, model, user)."""
        if group in GROUPS and group != self.by:
            self.by = group
            self._controls()
            table = self.query_one("#breakdown", DataTable)
            table.clear()
            self.refresh_now()

    def action_whatif(self) -> None:
        """Open the what-if panel (the range's calls replayed under another strategy or price file), or close it.

        Opening puts the focus in the panel, on its strategy; ``w`` on an open panel the focus is not in
        brings the focus there, and ``w`` in the panel closes it (the focus goes back to the breakdown).
        """
        panel = self.query_one(WhatIfPanel)
        inside = self.focused is not None and panel in self.focused.ancestors_with_self
        if panel.is_open and not inside:
            panel.query_one("#whatif-strategy").focus()
            return
        panel.toggle()
        if panel.is_open:
            panel.query_one("#whatif-strategy").focus()
        else:
            self.query_one("#breakdown", DataTable).focus()

    def action_next_range(self) -> None:
        """The next range: 1h → 24h → 7d → 30d."""
        names = list(RANGES)
        self.action_set_range(names[(names.index(self.range) + 1) % len(names)])

    def action_next_group(self) -> None:
        """Group by the next dimension: provider → model → user."""
        self.action_set_group(GROUPS[(GROUPS.index(self.by) + 1) % len(GROUPS)])

    def action_next_order(self) -> None:
        """Order the breakdown by the next key: cost → calls → tokens → name."""
        self.order = ORDERS[(ORDERS.index(self.order) + 1) % len(ORDERS)]
        self.reverse = False
        self._redraw_order()

    def action_reverse_order(self) -> None:
        """Order the breakdown the other way round."""
        self.reverse = not self.reverse
        self._redraw_order()

    def _redraw_order(self) -> None:
        self._controls()
        if self._last is not None:
            self._draw_breakdown(self._last, Palette.of(self.app))

    def on_theme_changed(self) -> None:
        if self._last is not None:
            self.show(self._last)
