"""Screen 4, Alerts: rules with their state, recent events; add, edit, remove, acknowledge, silence.

Rules are written in the CLI's grammar (``p95_latency_ms > 2000 for 5m
where provider=openai``) and checked as they are typed, with the column of
a mistake pointed at.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from axtui.cost.alerts import BudgetAlert
from axtui.metrics.alerts.model import AlertEvent, RuleInfo
from axtui.tui import fmt
from axtui.tui.checks import check_rule
from axtui.tui.screens.base import DashboardScreen
from axtui.tui.screens.confirm import ConfirmScreen
from axtui.tui.screens.detail import DetailScreen, event_sections
from axtui.tui.screens.draw_once import draw_after_edit
from axtui.tui.screens.form import Field, FormScreen
from axtui.tui.views import AlertsView
from axtui.tui.widgets.palette import Palette
from axtui.tui.widgets.table_sync import move_to_row, order_rows, sync_table
from axtui.tui.widgets.tables import EditableTable, FitTable

__all__ = ["SILENCES", "AlertsScreen", "event_cells", "rule_cells", "silenced_for"]

RULE_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("id", "#", 3),
    ("name", "Name", 0),
    ("state", "State", 11),
    ("quiet", "Silenced", 8),
    ("value", "Value", 9),
    ("fired", "Last fired", 10),
    ("severity", "Sev", 4),
    ("rule", "Rule", 56),
)
EVENT_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("time", "Time", 8),
    ("kind", "Event", 11),
    ("name", "Rule", 20),
    ("message", "What", 90),
)
_RKEYS = tuple(c[0] for c in RULE_COLUMNS)
_EKEYS = tuple(c[0] for c in EVENT_COLUMNS)
#: Silences the ``s`` key cycles through, in seconds (None lifts it).
SILENCES: tuple[float | None, ...] = (3600.0, 4 * 3600.0, 86_400.0, None)
SEVERITIES: tuple[str, ...] = ("warning", "critical", "info")


def _value(rule_text: str, value: float | None) -> str:
    if value is None:
        return "–"
    from axtui.errors import AxError
    from axtui.metrics.alerts.evaluator import describe_value
    from axtui.metrics.alerts.grammar import parse_rule

    try:
        return describe_value(parse_rule(rule_text), value)
    except (AxError, ValueError):
        return f"{value:.4g}"


def silenced_for(rule: RuleInfo, now: float) -> str:
    """How long the rule stays silenced: ``59m``, ``4h``, ``3h59m``; empty when it notifies."""
    left = (rule.silenced_until or 0) - now
    if left <= 0:
        return ""
    hours, minutes = divmod(math.ceil(left / 60), 60)  # a silence of 4h set a moment ago reads 4h
    if not hours:
        return f"{minutes}m"
    return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"


def rule_cells(rule: RuleInfo, now: float, palette: Palette, values: dict[int, float | None] | None = None) \
        -> tuple[Any, ...]:
    """One rule row, in `RULE_COLUMNS` order; ``values`` holds what rules measure now (else the stored value).

    A firing rule someone acknowledged reads ``▲ firing ✓``, silenced or not; a silence has its own
    column, with how long it lasts.
    """
    value = values[rule.id] if values is not None and rule.id in values else rule.last_value
    state = rule.state if rule.enabled else "off"
    style = {"firing": f"bold {palette.bad}", "pending": palette.warn, "ok": palette.ok}.get(state, palette.muted)
    label = {"firing": "▲ firing", "pending": "△ pending", "ok": "● ok"}.get(state, state)
    if state == "firing" and rule.acknowledged_at is not None:
        label += " ✓"
    sev_style = {"critical": palette.bad, "warning": palette.warn}.get(rule.severity, palette.muted)
    return (
        Text(str(rule.id), style=palette.muted),
        Text(rule.name, no_wrap=True, overflow="ellipsis"),
        Text(label, style=style),
        Text(silenced_for(rule, now), style=palette.warn),
        Text(_value(rule.rule, value), justify="right"),
        Text(fmt.ago(rule.last_fired_at, now), style=palette.muted),
        Text(rule.severity[:4], style=sev_style),
        Text(rule.rule, style=palette.muted if rule.name == rule.rule else ""),
    )


def event_cells(event: Any, palette: Palette) -> tuple[Any, ...]:
    """One event row (an alert rule's transition or a budget threshold), in `EVENT_COLUMNS` order."""
    if hasattr(event, "budget_id"):
        return (
            Text(fmt.clock_time(event.ts), style=palette.muted),
            Text(f"budget {event.threshold}%", style=palette.warn),
            Text(f"budget #{event.budget_id} {event.scope}"),
            Text(event.message, style=palette.muted),
        )
    style = {"firing": f"bold {palette.bad}", "resolved": palette.ok, "pending": palette.warn}.get(event.kind,
                                                                                                  palette.muted)
    return (
        Text(fmt.clock_time(event.ts), style=palette.muted),
        Text(event.kind, style=style),
        Text(event.rule_name, no_wrap=True, overflow="ellipsis"),
        Text(event.message, style=palette.muted),
    )


class AlertsScreen(DashboardScreen):
    """Alert rules and events."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("a", "add", "Add"),
        Binding("enter", "edit", "Edit", show=False),
        Binding("d", "remove", "Remove"),
        Binding("c", "acknowledge", "Ack"),
        Binding("s", "silence", "Silence"),
    ]
    MODE = "alerts"
    MIN_INTERVAL_S = 1.0
    WATCHES = frozenset({"alerts"})
    HELP = """A rule is [b]METRIC OP VALUE \\[per PERIOD] \\[for DURATION] \\[where DIM=VALUE,…][/], as in
`ax monitor alerts add`:  p95_latency_ms > 2000 for 5m where provider=openai · error_rate > 5% for 10m ·
spend_usd > 50 per day · cache_hit_rate < 0.3 for 30m · budget_used_pct >= 80 where user=alice.
c acknowledges a firing rule (✓); s silences it for 1h, 4h, 24h, then off.
From the Events table, c, s and d act on the rule of the selected event."""

    def __init__(self) -> None:
        super().__init__()
        self._last: AlertsView | None = None
        #: The key of the rule row the cursor goes to once it is drawn (one just added or saved).
        self._select: str | None = None

    def compose_body(self) -> Iterable[Any]:
        with Vertical(id="rules-box", classes="section"):
            table: DataTable[Any] = EditableTable(id="rules", squeeze=("name", 16, 20, 28), drop=("fired", "severity"),
                                                   flex=[("rule", 24)])
            for key, label, width in RULE_COLUMNS:
                table.add_column(label, key=key, width=width or None)
            yield table
        with Vertical(id="events-box", classes="section"):
            events: DataTable[Any] = FitTable(id="events", squeeze=("name", 14, 20), flex=[("message", 24)])
            for key, label, width in EVENT_COLUMNS:
                events.add_column(label, key=key, width=width or None)
            yield events
        yield Static("", id="hint")

    def on_mount(self) -> None:
        self.query_one("#rules-box").border_title = "Rules"
        self.query_one("#events-box").border_title = "Events"
        self.query_one("#rules", DataTable).focus()

    def export_kind(self) -> str:
        return "alerts"

    # -- data ------------------------------------------------------------------------------

    def fetch(self) -> AlertsView:
        self.backend.wait_ready(60)
        return self.backend.alerts()

    def show(self, view: AlertsView) -> None:
        self._last = view
        palette = Palette.of(self.app)
        with self.app.batch_update():
            rules = self.query_one("#rules", DataTable)
            sync_table(rules, {str(r.id): rule_cells(r, view.now, palette, view.values) for r in view.rules},
                       _RKEYS)
            if self._select is not None and move_to_row(rules, self._select.__eq__):
                self._select = None
            firing = sum(1 for r in view.rules if r.state == "firing" and r.enabled)
            pending = sum(1 for r in view.rules if r.state == "pending" and r.enabled)
            self.query_one("#rules-box").border_title = (
                f"Rules · {len(view.rules)} · {firing} firing · {pending} pending"
            )
            merged: list[tuple[float, str, Any]] = [(e.ts, f"a{e.id}", e) for e in view.events]
            merged += [(b.ts, f"b{b.event_id}", b) for b in view.budget_alerts]
            merged.sort(key=lambda t: t[0], reverse=True)
            events = self.query_one("#events", DataTable)
            rows = {key: event_cells(e, palette) for _, key, e in merged[:100]}
            if sync_table(events, rows, _EKEYS):
                order_rows(events, [key for _, key, _ in merged[:100]], "time")
            self.query_one("#events-box").border_title = f"Events · latest {min(len(merged), 100)}"
            self.query_one("#events", FitTable).empty = (
                "none yet: rules going pending, firing or resolved, and budget alerts, show here")
            if not view.rules:
                self.hint("No alert rules yet: press [b]a[/] to add one, e.g. p95_latency_ms > 2000 for 5m")

    # -- helpers ---------------------------------------------------------------------------

    def hint(self, message: str, *, error: bool = False) -> None:
        """The line above the footer."""
        line = self.query_one("#hint", Static)
        line.set_class(error, "-error")
        line.update(message)

    def _rule(self) -> RuleInfo | None:
        table = self.query_one("#rules", DataTable)
        if self._last is None or not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return next((r for r in self._last.rules if str(r.id) == row_key.value), None)

    def _target(self) -> tuple[RuleInfo, str] | None:
        """The rule ``c``, ``s`` and ``d`` act on, and how to name it: the one the user sees selected.

        That is the rules table's cursor, or, when the events table has the focus (the rules' cursor is
        not drawn then), the rule of the event under its cursor; the rules' cursor moves to it.
        """
        events = self.query_one("#events", DataTable)
        if self.focused is not events:
            rule = self._rule()
            return None if rule is None else (rule, f"rule #{rule.id} ({rule.name})")
        view = self._last
        if view is None or not events.row_count:
            return None
        row_key, _ = events.coordinate_to_cell_key(events.cursor_coordinate)
        key = str(row_key.value)
        if key.startswith("b"):
            self.hint("That event is a budget's, not an alert rule's: budgets are on screen 3.", error=True)
            return None
        event = next((e for e in view.events if f"a{e.id}" == key), None)
        if event is None:
            return None
        rule = next((r for r in view.rules if r.id == event.rule_id), None)
        if rule is None:
            self.hint(f"The rule of that event ({event.rule_name}) no longer exists.", error=True)
            return None
        move_to_row(self.query_one("#rules", DataTable), str(rule.id).__eq__)
        return rule, f"rule #{rule.id} ({rule.name}), the selected event's rule,"

    def _run(self, fn: Callable[[], Any], done: str) -> None:
        self._write(fn, done)

    @work(thread=True, group="write", exit_on_error=False)
    def _write(self, fn: Callable[[], Any], done: str) -> str:
        fn()
        return done

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Textual calls `DashboardScreen`'s handler too (for the fetches): this one only does the writes.
        if event.worker.group != "write":
            return
        if event.state == WorkerState.SUCCESS:
            done = str(event.worker.result)
            self.hint(done)
            self.notify(done, timeout=4, markup=False)
            draw_after_edit(self, "alerts")
        elif event.state == WorkerState.ERROR:
            error = event.worker.error
            self.hint(f"Not done: {getattr(error, 'message', None) or error}", error=True)

    def _form(self, title: str, rule: RuleInfo | None, save: Callable[[dict[str, Any]], Any]) -> FormScreen:
        fields = [
            Field("rule", "Rule", value=rule.rule if rule else "",
                  placeholder="p95_latency_ms > 2000 for 5m where provider=openai", check=check_rule,
                  help="METRIC OP VALUE [per PERIOD] [for DURATION] [where DIM=VALUE,…]"),
            Field("name", "Name", value=rule.name if rule and rule.name != rule.rule else "", required=False,
                  placeholder="(the rule itself)", help="a short name for notifications"),
            Field("severity", "Severity", kind="choice", value=rule.severity if rule else "warning",
                  options=SEVERITIES),
        ]
        return FormScreen(title, fields, save)

    # -- actions ---------------------------------------------------------------------------

    def action_add(self) -> None:
        """Add a rule, checked as it is typed."""
        backend = self.backend
        self.app.push_screen(
            self._form("Add an alert rule", None, lambda v: backend.add_rule(v["rule"], v["name"], v["severity"])),
            lambda result: self._saved(result, "Added"),
        )

    def action_edit(self) -> None:
        """Edit the rule under the cursor."""
        rule = self._rule()
        if rule is None or self.focused is not self.query_one("#rules", DataTable):
            return
        backend = self.backend
        self.app.push_screen(
            self._form(f"Edit alert rule #{rule.id}", rule,
                       lambda v: backend.update_rule(rule.id, v["rule"], v["name"], v["severity"])),
            lambda result: self._saved(result, "Saved"),
        )

    @on(DataTable.RowSelected, "#rules")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    @on(DataTable.RowSelected, "#events")
    def _event_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        view, key = self._last, str(event.row_key.value)
        if view is None:
            return
        found: AlertEvent | BudgetAlert | None
        if key.startswith("b"):
            found = next((b for b in view.budget_alerts if f"b{b.event_id}" == key), None)
        else:
            found = next((e for e in view.events if f"a{e.id}" == key), None)
        if found is not None:
            title = (f"Budget #{found.budget_id} at {found.threshold}%" if isinstance(found, BudgetAlert)
                     else f"{found.kind}: {found.rule_name}")
            self.app.push_screen(DetailScreen(title, event_sections(found)))

    def _saved(self, result: RuleInfo | None, verb: str) -> None:
        if result is None:
            return
        self._select = str(result.id)
        self.hint(f"{verb} rule #{result.id}: {result.rule}")
        self.notify(f"{verb} rule #{result.id}", timeout=4)
        draw_after_edit(self, "alerts")

    def action_remove(self) -> None:
        """Remove the selected rule (or the selected event's rule), after a confirm."""
        target = self._target()
        if target is None:
            return
        rule, named = target
        backend = self.backend

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._run(lambda: backend.remove_rule(rule.id), f"Removed rule #{rule.id} ({rule.name})")
            else:
                self.hint("Kept.")

        question = f"Remove alert {escape(named.rstrip(','))}?\n\n  {escape(rule.rule)}\n\nIts events are kept."
        self.app.push_screen(ConfirmScreen(question, yes="Remove"), confirmed)

    def action_acknowledge(self) -> None:
        """Mark the selected rule's (or the selected event's rule's) current episode as seen."""
        target = self._target()
        if target is None:
            return
        rule, named = target
        if rule.state != "firing":
            self.hint(f"{_cap(named)} is not firing; nothing to acknowledge.")
            return
        backend = self.backend
        self._run(lambda: backend.acknowledge_rule(rule.id), f"Acknowledged {named.rstrip(',')}")

    def action_silence(self) -> None:
        """Silence the selected rule for 1h, then 4h, then 24h; once more lifts the silence."""
        target = self._target()
        if target is None or self._last is None:
            return
        rule, named = target
        now = self._last.now
        current = (rule.silenced_until or 0) - now
        nxt: float | None = SILENCES[0]
        if current > 0:
            longer = [s for s in SILENCES if s is not None and s > current + 60]
            nxt = longer[0] if longer else None
        backend = self.backend
        if nxt is None:
            self._run(lambda: backend.silence_rule(rule.id, None), f"{_cap(named)} notifies again")
        else:
            self._run(lambda: backend.silence_rule(rule.id, nxt),
                      f"{_cap(named)} silenced for {nxt / 3600:g}h (events are still recorded)")

    def on_theme_changed(self) -> None:
        if self._last is not None:
            self.show(self._last)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
