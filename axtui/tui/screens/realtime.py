"""Screen 1, Realtime: headline numbers, sparklines, deployments, the live log."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Static

from axtui.metrics.snapshot import RecentCall, Series, Stats
from axtui.tui import fmt
from axtui.tui.data import DeploymentState, LiveView
from axtui.tui.export_view import ViewRows
from axtui.tui.filtering import FilterError, parse_filter
from axtui.tui.screens.base import DashboardScreen
from axtui.tui.screens.detail import DetailScreen, call_sections, deployment_sections
from axtui.tui.widgets.calllog import LOG_ORDERS, CallLog, log_header
from axtui.tui.widgets.palette import Palette
from axtui.tui.widgets.table_sync import sync_table
from axtui.tui.widgets.tables import FitTable
from axtui.tui.widgets.tiles import StatTile

__all__ = ["SORTS", "RealtimeScreen", "carry_forward", "deployment_cells", "pad_window", "trim_series"]

#: The error rate a full bar of the errors sparkline stands for, at least.
ERROR_SCALE = 0.05
#: Sparkline windows the ``w`` key cycles through, in seconds.
WINDOWS: tuple[int, ...] = (300, 900)
#: (column, label) of the deployment table.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("deployment", "Deployment", 0),
    ("health", "Health", 11),
    ("rps", "req/s", 5),
    ("p50", "p50", 6),
    ("p95", "p95", 6),
    ("errors", "errors", 6),
    ("cost", "$/min", 9),
)
#: Widest the deployment column gets on a narrow terminal (longer names end in …).
NARROW_NAME = 27
_COLUMN_KEYS = tuple(c[0] for c in COLUMNS)
#: Orders the ``s`` key cycles through: (name, sort key over a row's stats, descending).
SORTS: tuple[tuple[str, str], ...] = (
    ("name", "deployment"),
    ("req/s", "rps"),
    ("p95", "p95_ms"),
    ("errors", "error_rate"),
    ("$/min", "cost_per_min_usd"),
)


def carry_forward(values: Sequence[float | None]) -> list[float]:
    """None points take the last known value (0 before any), so lines do not drop to zero between calls."""
    out: list[float] = []
    last = 0.0
    for v in values:
        if v is not None:
            last = float(v)
        out.append(last)
    return out


def pad_window(values: Sequence[float | None], length: int) -> list[float | None]:
    """``values`` (the newest seconds) preceded by blanks (None) up to ``length``: the whole window spans the line."""
    return [None] * max(0, length - len(values)) + list(values)


def trim_series(series: Series, started: float) -> Series:
    """The series without its still-filling last second, and without the seconds before the source started.

    Seconds before the start were not observed; drawing them as zeros
    would show a fall that never happened.
    """
    first = max(0, int(started) + 1 - series.start)
    last = max(first, len(series) - 1)
    if first == 0 and last == len(series):
        return series
    cut = Series(start=series.start + first, step_s=series.step_s)
    for name in ("requests", "errors", "rate_limited", "budget_refused", "cache_hits", "served", "tokens",
                 "cost_nanos", "p50_ms", "p95_ms", "p99_ms", "ttft_ms"):
        setattr(cut, name, getattr(series, name)[first:last])
    return cut


#: Error rates from which a deployment with a closed circuit is no longer "ok": (failing, erroring).
FAILING, ERRORING = 0.05, 0.01


def _health_cell(state: DeploymentState | None, palette: Palette, error_rate: float | None = None) -> Text:
    if state is None:
        return Text("·", style=palette.muted)
    word = state.health
    if word == "ok":
        # The circuit is closed, but calls failing now is not health: say how many fail.
        if error_rate is not None and error_rate >= FAILING:
            return Text(f"▲ {fmt.pct(error_rate, 0)} fail", style=palette.bad)
        if error_rate is not None and error_rate >= ERRORING:
            return Text(f"◑ {fmt.pct(error_rate, 0)} fail", style=palette.warn)
        return Text("● ok", style=palette.ok)
    if word == "cooling":
        return Text(f"◔ 429 · {state.cooldown_s:.0f}s", style=palette.warn)
    if word == "probing":
        return Text("◐ probing", style=palette.warn)
    return Text(f"○ open {state.retry_in_s:.0f}s" if state.retry_in_s >= 1 else "○ open", style=palette.bad)


def _num(text: str, style: str = "") -> Text:
    return Text(text, style=style, justify="right")


def deployment_cells(s: Stats, state: DeploymentState | None, palette: Palette, digits: int = 4) -> tuple[Any, ...]:
    """One row of the deployment table, in `COLUMNS` order; ``digits``: the decimals of the $/min column."""
    err = s.error_rate
    err_style = palette.bad if err is not None and err >= 0.05 else palette.warn if err else ""
    p95_style = palette.bad if (s.p95_ms or 0) >= 8000 else palette.warn if (s.p95_ms or 0) >= 4000 else ""
    idle = not s.requests
    return (
        Text(s.key, style=palette.muted if idle else "", no_wrap=True, overflow="ellipsis"),
        _health_cell(state, palette, err),
        _num(fmt.rate(s.rps) if not idle else "·", palette.muted if idle else ""),
        _num(fmt.ms(s.p50_ms)),
        _num(fmt.ms(s.p95_ms), p95_style),
        _num(fmt.pct(err) if err is not None else "–", err_style),
        _num(fmt.usd_fixed(s.cost_per_min_usd, digits) if s.cost_per_min_usd else ("–" if idle else "$0")),
    )


class RealtimeScreen(DashboardScreen):
    """Totals with sparklines, the deployment table, and the live log of calls."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("slash", "filter", "Filter"),
        Binding("w", "window", "5m/15m"),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
        Binding("o", "order_log", "Order log", show=False),
        Binding("O", "reverse_log", "Reverse log order", show=False),
    ]
    MODE = "realtime"
    HELP = """enter on a call of the log (j/k or ↑/↓ pick one) or on a deployment opens its details: route, rule,
attempts, tokens, cost, cache similarity; a deployment's numbers, circuit and calls. / filters the log
(x then exports the calls it shows); o orders it by latency, cost or tokens, O the other way round;
s sorts the deployments by the next column, S the other way round; w switches the sparklines 5/15 min.
Health: [i]◔ 429 · 3s[/] the provider answered 429 (too many requests): no calls go to it for 3 s more;
[i]○ open[/] its circuit is open after failures; [i]◑/▲ N% fail[/] calls are failing now."""

    def __init__(self) -> None:
        super().__init__()
        self.window_s = WINDOWS[0]
        self.sort_index = 0
        #: Whether the deployments are sorted the other way (Z→A, lowest first).
        self.sort_reverse = False
        self._stats: dict[str, Stats] = {}
        self._last: LiveView | None = None
        self._filter_error: str | None = None

    def compose_body(self) -> Iterable[Any]:
        with Horizontal(id="tiles"):
            yield StatTile("req/s", tile_id="t-rps", short="rps")
            yield StatTile("p95", tile_id="t-p95", peak=True)
            yield StatTile("$/min", tile_id="t-cost", short="$/m")
            yield StatTile("cache", tile_id="t-cache", short="hit", floor=1.0)
            # A full bar is at least 5 % errors: 0.1 % must not look like an outage.
            yield StatTile("errors", tile_id="t-errors", peak=True, short="err", floor=ERROR_SCALE)
            with Vertical(id="t-alerts", classes="tile"):
                yield Static("[dim]alerts[/] [b]–[/]", id="alerts-count", classes="tile-value")
                yield Static("", id="alerts-names")
        with Vertical(id="deployments-box", classes="section"):
            # At 80 columns the p50 makes room for the names; at 200 the names get it all.
            table: DataTable[Any] = FitTable(id="deployments", squeeze=("deployment", NARROW_NAME, 31, 48),
                                             drop=("p50",))
            for key, label, width in COLUMNS:
                table.add_column(label, key=key, width=width or None)
            yield table
        with Vertical(id="log-box", classes="section"):
            yield Static("", id="log-head")
            yield CallLog(id="calls")
            yield Input(placeholder="filter: words, user=…, provider=…, status!=ok, latency>2000  (enter keeps, esc clears)",
                        id="filter")

    def on_mount(self) -> None:
        self._titles()

    def on_resize(self) -> None:
        self._log_head()

    def _log_head(self) -> None:
        log = self.query_one(CallLog)
        head = log_header(log.size.width or self.size.width - 2)
        box = self.query_one("#log-head", Static)
        if str(box.content) != head:
            box.update(Text(head))

    # -- data ------------------------------------------------------------------------------

    def fetch(self) -> LiveView:
        return self.backend.live(self.window_s)

    def show(self, view: LiveView) -> None:
        self._last = view
        snap = view.snapshot
        t = snap.totals
        series = trim_series(snap.series, snap.started)
        length = max(len(snap.series) - 1, len(series))

        def window(values: Sequence[float | None]) -> list[float | None]:
            return pad_window(values, length)

        palette = Palette.of(self.app)
        with self.app.batch_update():
            self.query_one("#t-rps", StatTile).show(fmt.rate(t.rps), window(series.rps()))
            p95 = t.p95_ms
            self.query_one("#t-p95", StatTile).show(
                fmt.ms(p95), window(carry_forward(series.p95_ms)),
                "bad" if (p95 or 0) >= 8000 else "warn" if (p95 or 0) >= 4000 else "",
            )
            self.query_one("#t-cost", StatTile).show(fmt.usd(t.cost_per_min_usd), window(series.cost_per_min_usd()))
            self.query_one("#t-cache", StatTile).show(fmt.pct(t.cache_hit_rate, 0),
                                                      window(carry_forward(series.cache_hit_rate())))
            err = t.error_rate
            self.query_one("#t-errors", StatTile).show(
                fmt.pct(err), window(carry_forward(series.error_rate())),
                "bad" if (err or 0) >= 0.05 else "warn" if (err or 0) >= 0.01 else "",
            )
            self._show_alerts(view)
            self._show_deployments(view, palette)
            log = self.query_one(CallLog)
            log.add(snap.recent)
            self._log_head()
            self._titles()

    def _show_alerts(self, view: LiveView) -> None:
        firing = view.firing
        pending = [a for a in view.alerts if a.state == "pending"]
        box = self.query_one("#t-alerts")
        box.set_class(bool(firing), "-bad")
        box.set_class(not firing and bool(pending), "-warn")
        count = f"{len(firing)} firing" if firing else (f"{len(pending)} pending" if pending else "none")
        self.query_one("#alerts-count", Static).update(f"[dim]alerts[/] [b]{count}[/]")
        names = [f"▲ {a.name}" for a in firing] + [f"△ {a.name}" for a in pending]
        self.query_one("#alerts-names", Static).update("\n".join(names[:2]) if names else "[dim]all clear[/]")

    def _show_deployments(self, view: LiveView, palette: Palette) -> None:
        table = self.query_one("#deployments", DataTable)
        stats = {s.key: s for s in view.snapshot.deployments}
        for dep in view.health:
            stats.setdefault(dep, Stats(key=dep))
        self._stats = stats
        digits = fmt.money_digits(s.cost_per_min_usd for s in stats.values())
        rows = {key: deployment_cells(s, view.health.get(key), palette, digits) for key, s in sorted(stats.items())}
        added = sync_table(table, rows, _COLUMN_KEYS)
        if added or self.sort_index or self.sort_reverse:
            self._sort(table)

    def _sort(self, table: DataTable[Any]) -> None:
        _, attr = SORTS[self.sort_index]
        if attr == "deployment":
            table.sort("deployment", key=lambda cell: cell.plain, reverse=self.sort_reverse)
            return

        def metric(cell: Text) -> tuple[bool, float]:
            # Deployments without the figure (idle: · or –) go last whichever way the others are ordered.
            s = self._stats.get(cell.plain)
            value = getattr(s, attr, None) if s is not None and s.requests else None
            if value is None:
                return True, 0.0
            return False, float(value) if self.sort_reverse else -float(value)

        table.sort("deployment", key=metric)

    def _titles(self) -> None:
        window = f"{self.window_s // 60} min"
        sort = SORTS[self.sort_index][0] + (" ↑" if self.sort_reverse else "")
        recent = self._last.snapshot.recent_s if self._last else 60
        box = self.query_one("#deployments-box")
        box.border_title = f"Deployments · last {recent}s · sorted by {sort} · sparklines {window}"
        log = self.query_one(CallLog)
        lifetime = self._last.snapshot.lifetime.requests if self._last else 0
        title = f"Calls · {fmt.count(lifetime)} since start"
        if log.order != "time" or log.descending:
            title += f" · by {log.order} {'↓' if log.descending else '↑'}"
        if self._filter_error:
            title += f" · {self._filter_error}"
        elif log.filter:
            title += f" · filter: {log.filter.text}"
        self.query_one("#log-box").border_title = title

    def export_view(self) -> ViewRows | None:
        """The calls the filtered log shows (an unfiltered log is every call: the store exports those).

        Written as ``ax monitor export`` writes calls (`CALL_COLUMNS`, UTC ISO-8601 times), in the
        log's order; each call as stored, read in the export's worker.
        """
        from axtui.metrics.export_rows import CALL_COLUMNS

        log = self.query_one(CallLog)
        if not log.filter:
            return None
        shown = list(log.view)
        backend = self.backend
        return ViewRows(f"calls {log.filter.text}", f"the {fmt.count(len(shown))} calls the log shows for "
                        f"“{log.filter.text}” (of the last {fmt.count(len(log.calls))} kept)", CALL_COLUMNS, lambda: backend.call_rows(shown))

    # -- details ---------------------------------------------------------------------------

    @on(CallLog.Selected)
    def _call_selected(self, event: CallLog.Selected) -> None:
        event.stop()
        self._open_call(event.call)

    @work(thread=True, group="detail", exit_on_error=False)
    def _open_call(self, call: RecentCall) -> None:
        try:
            record = self.backend.call_record(call.request_id, call.ts)
        except Exception:  # the live log's own fields still make a detail view
            record = None
        title = f"Call {call.request_id or ''} · {call.requested_model} → {call.deployment or 'no deployment'}"
        self.app.call_from_thread(self.app.push_screen, DetailScreen(title, call_sections(call, record)))

    @on(DataTable.RowSelected, "#deployments")
    def _deployment_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = str(event.row_key.value)
        stats = self._stats.get(key, Stats(key=key))
        state = self._last.health.get(key) if self._last is not None else None
        calls = [c for c in self.query_one(CallLog).calls if c.deployment == key]
        self.app.push_screen(DetailScreen(f"Deployment {key}", deployment_sections(stats, state, calls)))

    # -- actions ---------------------------------------------------------------------------

    def action_filter(self) -> None:
        """Show the filter box and type into it."""
        box = self.query_one("#filter", Input)
        box.add_class("-open")
        box.focus()

    def action_leave_input(self) -> None:
        """Esc drops the filter and hides its box (the deployments table takes the keys)."""
        self.action_clear_filter()

    def action_clear_filter(self) -> None:
        """Drop the filter and hide its box."""
        box = self.query_one("#filter", Input)
        if not box.has_class("-open") and not self.query_one(CallLog).filter:
            return
        box.value = ""
        box.remove_class("-open")
        self._filter_error = None
        self.query_one(CallLog).set_filter(parse_filter(""))
        self.query_one("#deployments", DataTable).focus()
        self._titles()

    def action_window(self) -> None:
        """Switch the sparklines between the last 5 and 15 minutes."""
        i = WINDOWS.index(self.window_s) if self.window_s in WINDOWS else 0
        self.window_s = WINDOWS[(i + 1) % len(WINDOWS)]
        self._titles()
        self.refresh_now()

    def action_sort(self) -> None:
        """Sort deployments by the next column (name, req/s, p95, errors, $/min)."""
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.sort_reverse = False
        self._sort(self.query_one("#deployments", DataTable))
        self._titles()

    def action_reverse_sort(self) -> None:
        """Sort the deployments the other way round."""
        self.sort_reverse = not self.sort_reverse
        self._sort(self.query_one("#deployments", DataTable))
        self._titles()

    def action_order_log(self) -> None:
        """Order the call log by the next key: time, latency, cost, tokens."""
        log = self.query_one(CallLog)
        log.order_by(LOG_ORDERS[(LOG_ORDERS.index(log.order) + 1) % len(LOG_ORDERS)], log.descending)
        self._titles()

    def action_reverse_log(self) -> None:
        """Order the call log the other way round."""
        log = self.query_one(CallLog)
        log.order_by(log.order, not log.descending)
        self._titles()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        try:
            new = parse_filter(event.value)
        except FilterError as exc:
            event.input.add_class("-invalid")
            self._filter_error = str(exc)
            self._titles()
            return
        event.input.remove_class("-invalid")
        self._filter_error = None
        self.query_one(CallLog).set_filter(new)
        self._titles()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.action_clear_filter()
            return
        event.input.remove_class("-open")
        self.query_one(CallLog).focus()

    def on_theme_changed(self) -> None:
        """Colours live in Rich text: redraw it in the new theme's."""
        self.query_one(CallLog).redraw()
        if self._last is not None:
            self._show_deployments(self._last, Palette.of(self.app))
