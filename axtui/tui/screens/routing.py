"""Screen 5, Routing: health, weights, rules in order, A/B tests, and an explain box.

Edits (weights, splits, rule order) are staged, marked, and written to the
config file with ``ctrl+s`` (validated first; the running engine picks them
up at once), or dropped with ``u``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.suggester import SuggestFromList
from textual.widgets import DataTable, Input, Static
from textual.worker import Worker, WorkerState

from axtui.config import RoutingConfig, RoutingRule
from axtui.routing.explain import Explanation
from axtui.routing.health import HealthSnapshot
from axtui.tui import fmt
from axtui.tui.export_view import ViewRows
from axtui.tui.routing_edit import check_percent, check_weight, move_rule, parse_weight, rebalance
from axtui.tui.screens.base import DashboardScreen
from axtui.tui.screens.draw_once import draw_after_edit
from axtui.tui.views import RoutingView
from axtui.tui.widgets.cell_editor import CellEditor
from axtui.tui.widgets.palette import Palette
from axtui.tui.widgets.table_sync import order_rows, sync_table
from axtui.tui.widgets.tables import EditableTable, FitTable

__all__ = ["RoutingScreen", "explanation_text", "health_cells"]

HEALTH_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("deployment", "Deployment", 0),
    ("weight", "Weight", 7),
    ("circuit", "Circuit", 11),
    ("calls", "Calls", 6),
    ("errors", "Err", 5),
    ("p95", "p95", 6),
    ("p50", "p50", 6),
    ("busy", "Busy", 4),
    ("region", "Region", 10),
)
RULE_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("n", "#", 3),
    ("name", "Rule", 22),
    ("when", "When", 34),
    ("then", "Then", 50),
)
AB_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("test", "Test", 0),
    ("variant", "Variant", 10),
    ("model", "Model", 18),
    ("split", "Split", 7),
    ("calls", "Calls", 6),
    ("p95", "p95", 7),
    ("errors", "Err", 6),
    ("cost", "$/call", 10),
)
_HKEYS = tuple(c[0] for c in HEALTH_COLUMNS)
_RKEYS = tuple(c[0] for c in RULE_COLUMNS)
_AKEYS = tuple(c[0] for c in AB_COLUMNS)


def health_cells(h: HealthSnapshot, weight: float, changed: bool, palette: Palette) -> tuple[Any, ...]:
    """One deployment row, in `HEALTH_COLUMNS` order."""
    state = h.state
    if state == "open":
        circuit = Text(f"○ open {h.retry_in_s:.0f}s", style=palette.bad)
    elif state == "half_open":
        circuit = Text("◐ half-open", style=palette.warn)
    elif h.cooldown_s > 0:
        circuit = Text(f"◔ 429 · {h.cooldown_s:.0f}s", style=palette.warn)
    else:
        circuit = Text("● closed", style=palette.ok)
    err = h.error_rate if h.calls else None
    return (
        Text(h.deployment, no_wrap=True, overflow="ellipsis"),
        Text(f"{'● ' if changed else ''}{weight:g}", justify="right", style=palette.accent if changed else ""),
        circuit,
        Text(fmt.count(h.calls), justify="right"),
        Text(fmt.pct(err, 0) if err is not None else "–", justify="right",
             style=palette.bad if (err or 0) >= 0.1 else ""),
        Text(fmt.ms(h.latency_p95_ms), justify="right"),
        Text(fmt.ms(h.latency_p50_ms), justify="right"),
        Text(str(h.in_flight) if h.in_flight else "·", justify="right", style=palette.muted),
        Text(h.region or "–", style=palette.muted),
    )


def shadowed_rules(e: Explanation, rules: Sequence[RoutingRule]) -> list[str]:
    """Rules that name the model asked for but never see it, because an A/B test rewrote it first.

    One line each: ``rule user-1-stays-in-us names smart, but A/B test smart-4o-vs-sonnet sends
    this call to gpt-4o first``.
    """
    if e.ab is None or e.target == e.model:
        return []
    checks = {c.rule: c for c in e.rule_checks}
    out = []
    for rule in rules:
        check = checks.get(rule.name)
        if check is not None and check.matched:
            continue
        if (fnmatch.fnmatchcase(e.model, rule.model) and not fnmatch.fnmatchcase(e.target, rule.model)
                and fnmatch.fnmatchcase(e.caller.user, rule.user)):
            out.append(f"rule {rule.name} names {rule.model}, but A/B test {e.ab.test} sends this call to "
                       f"{e.target} first: the rule is shadowed")
    return out


def explanation_text(e: Explanation, rules: Sequence[RoutingRule] = ()) -> str:
    """The explain box's content, in Textual markup; ``rules`` (in order) lets it say which ones are shadowed."""
    lines = []
    chosen = e.chosen
    head = f"[b]{e.model}[/]"
    if e.ab is not None:
        head += f" → A/B [b]{e.ab.test}[/]: variant {e.ab.variant} ({e.ab.percent:g}%) → [b]{e.target}[/]"
    if chosen is not None:
        head += f" → [b $success]{chosen.deployment}[/]"
    elif e.error:
        head += f" → [b $error]no deployment[/]: {_esc(e.error)}"
    lines.append(head)
    lines.append(
        f"[dim]strategy[/] {e.strategy or '–'} · [dim]rule[/] {e.rule or 'none matched'} · "
        f"[dim]call[/] {_esc(e.requirements.describe())}"
        + (f" · [dim]region[/] {e.required_region} only" if e.required_region else "")
        + (f" · [dim]prefers[/] {e.preferred_region}" if e.preferred_region else "")
    )
    for line in shadowed_rules(e, rules):
        lines.append(f"  [$warning]▲[/] {_esc(line)}")
    for c in e.candidates[:8]:
        mark = {"chosen": "[b $success]1st[/]", "fallback": "[$accent]then[/]", "not tried": "[dim]…[/]"}.get(
            c.status, "[$error]skip[/]")
        estimate = "" if c.estimate_nanos is None else f" ~{fmt.usd(c.estimate_nanos / 1e9)}"
        lines.append(f"  {mark} {c.deployment}{estimate} [dim]— {_esc(c.reason)}[/]")
    return "\n".join(lines)


def _esc(text: str) -> str:
    return text.replace("[", "\\[")


#: The footer shows the two keys that move a rule as one entry.
_MOVE = Binding.Group("Move rule", compact=True)


class RoutingScreen(DashboardScreen):
    """Routing health, weights, rules, A/B tests and explain."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("enter", "edit", "Edit", show=False),
        Binding("shift+up,K", "move(-1)", "Rule up", key_display="⇧↑", group=_MOVE),
        Binding("shift+down,J", "move(1)", "Rule down", key_display="⇧↓", group=_MOVE),
        Binding("ctrl+s", "save", "Save"),
        Binding("u", "revert", "Undo"),
        Binding("e", "explain", "Explain"),
        # With nothing staged, Save and Undo leave the footer, but their keys still answer (`check_action`).
        Binding("ctrl+s", "nothing_staged('save')", show=False),
        Binding("u", "nothing_staged('undo')", show=False),
    ]
    #: Whether routing or weights were edited and not saved (the footer offers Save and Undo then).
    dirty: reactive[bool] = reactive(False, repaint=False, bindings=True)

    MODE = "routing"
    MIN_INTERVAL_S = 2.0
    WATCHES = frozenset({"routing"})
    HELP = """enter on a deployment edits its weight (used by the weighted strategy); on an A/B variant, its split
(the others are rescaled so they add up to 100). shift+↑/↓ (or K/J) move the selected rule: the first
rule that matches a call decides it. Edits are marked ● until ctrl+s writes them to the config file
(validated; the running engine uses them at once); u drops them. e opens the explain box.
Circuit: [i]◔ 429 · 3s[/] the provider answered 429 (too many requests): no calls go to it for 3 s more;
[i]○ open[/] failing, skipped until the retry; [i]◐ half-open[/] one trial call decides."""

    def __init__(self) -> None:
        super().__init__()
        self._last: RoutingView | None = None
        self.staged: RoutingConfig | None = None
        self.weights: dict[str, float] = {}
        self._editor: CellEditor | None = None

    def compose_body(self) -> Iterable[Any]:
        with VerticalScroll(id="routing-body"):
            with Vertical(id="health-box", classes="section"):
                yield self._table("health", HEALTH_COLUMNS, squeeze=("deployment", 26, 31, 48),
                                  drop=("p50", "busy", "region"))
            with Vertical(id="rules-box", classes="section"):
                yield self._table("route-rules", RULE_COLUMNS, editable=False, flex=(("when", 20), ("then", 16)))
            with Vertical(id="ab-box", classes="section"):
                yield self._table("ab", AB_COLUMNS, squeeze=("test", 20, 30, 44), drop=("model", "p95"))
            with Vertical(id="explain-box", classes="section"):
                with Horizontal(id="explain-inputs"):
                    yield Input(placeholder="model or alias", id="explain-model", compact=True)
                    yield Input(placeholder="user", id="explain-user", compact=True)
                    yield Input(placeholder="prompt tokens", id="explain-tokens", compact=True, type="integer")
                yield Static("[dim]Type a model (e.g. smart) and press enter to see which deployment it gets, "
                             "and why.[/]", id="explain-result")
        yield Static("", id="hint")

    @staticmethod
    def _table(table_id: str, columns: tuple[tuple[str, str, int], ...], editable: bool = True,
               squeeze: tuple[str | int, ...] | None = None, drop: tuple[str, ...] = (),
               flex: tuple[tuple[str, int], ...] = ()) -> DataTable[Any]:
        table: DataTable[Any] = (EditableTable if editable else FitTable)(id=table_id, squeeze=squeeze, drop=drop, flex=flex)
        for key, label, width in columns:
            table.add_column(label, key=key, width=width or None)
        return table

    def on_mount(self) -> None:
        self.query_one("#explain-box").border_title = "Explain"
        self.query_one("#health", DataTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The footer offers what applies now (and fits 80 columns): a rule moves in the Rules table,
        # and only staged edits can be saved or undone; with none, ctrl+s and u say so instead.
        if action == "move":
            return self.focused is not None and self.focused.id == "route-rules"
        if action in ("save", "revert"):
            return self.dirty
        if action == "nothing_staged":
            return not self.dirty
        return True

    def unsaved_edits(self) -> str | None:
        return "the staged routing edits" if self.dirty else None

    def export_view(self) -> ViewRows | None:
        """The Deployments table: each deployment's weight (as staged), circuit, calls, errors and latency."""
        view = self._last
        if view is None:
            return None
        columns = ("deployment", "provider", "model", "region", "weight", "circuit", "calls", "errors", "error_rate",
                   "latency_p95_ms", "latency_p50_ms", "in_flight")
        rows = [[h.deployment, h.provider, h.model, h.region, self.weights.get(h.deployment, 1.0), h.state, h.calls,
                 h.errors, h.error_rate, h.latency_p95_ms, h.latency_p50_ms, h.in_flight]
                for h in sorted(view.health, key=lambda h: h.deployment)]
        staged = ", weights as staged (not saved)" if self.dirty else ""
        return ViewRows("routing deployments", f"the {len(rows)} deployments of the Deployments table{staged}",
                        columns, rows)

    # -- data ------------------------------------------------------------------------------

    def fetch(self) -> RoutingView:
        self.backend.wait_ready(60)
        return self.backend.routing()

    def show(self, view: RoutingView) -> None:
        self._last = view
        if not self.dirty:
            self.staged = RoutingConfig.model_validate(
                {**self.backend.settings.routing.model_dump(), "rules": [r.model_dump() for r in view.rules],
                 "ab_tests": [t.model_dump() for t in view.ab_tests]})
            self.weights = dict(view.weights)
            suggester = SuggestFromList(view.models, case_sensitive=False)
            self.query_one("#explain-model", Input).suggester = suggester
        self._draw()

    def _draw(self) -> None:
        view, staged = self._last, self.staged
        if view is None or staged is None:
            return
        palette = Palette.of(self.app)
        with self.app.batch_update():
            health = self.query_one("#health", DataTable)
            rows = {}
            for h in sorted(view.health, key=lambda h: h.deployment):
                weight = self.weights.get(h.deployment, 1.0)
                rows[h.deployment] = health_cells(h, weight, weight != view.weights.get(h.deployment, 1.0), palette)
            sync_table(health, rows, _HKEYS)
            down = sum(1 for h in view.health if h.state == "open")
            self.query_one("#health-box").border_title = (
                f"Deployments · strategy {staged.strategy} · {len(view.health)} deployments"
                + (f" · {down} circuit open" if down else "")
            )
            self._draw_rules(staged, view, palette)
            self._draw_ab(staged, view, palette)
            dirty = " · [b $accent]● unsaved: ctrl+s saves, u undoes[/]" if self.dirty else ""
            self.query_one("#routing-body").border_title = ""
            self.query_one("#rules-box").border_title = f"Rules, first match wins · {len(staged.rules)}{dirty}"
        if self._editor is not None:
            self._editor.place()

    def _draw_rules(self, staged: RoutingConfig, view: RoutingView, palette: Palette) -> None:
        from axtui.routing.explain import describe_rule

        table = self.query_one("#route-rules", DataTable)
        saved_order = [r.name for r in view.rules]
        rows = {}
        for i, rule in enumerate(staged.rules):
            when, then = describe_rule(rule)
            moved = saved_order.index(rule.name) != i if rule.name in saved_order else True
            rows[rule.name] = (
                Text(f"{'●' if moved else ''}{i + 1}", style=palette.accent if moved else palette.muted),
                Text(rule.name),
                Text(when, style=palette.muted),
                Text(then),
            )
        if not rows:
            rows["(none)"] = (Text(""), Text("(no rules)", style=palette.muted),
                              Text("every call", style=palette.muted), Text(f"strategy {staged.strategy}"))
        sync_table(table, rows, _RKEYS)
        order_rows(table, list(rows), "name")

    def _draw_ab(self, staged: RoutingConfig, view: RoutingView, palette: Palette) -> None:
        table = self.query_one("#ab", DataTable)
        rows: dict[str, tuple[Text, ...]] = {}
        saved = {t.name: {v.name: v.percent for v in t.variants} for t in view.ab_tests}
        digits = fmt.money_digits(v.cost_per_call_usd for r in view.reports.values() for v in r.variants)
        for test in staged.ab_tests:
            report = view.reports.get(test.name)
            results = {v.variant: v for v in report.variants} if report is not None else {}
            for v in test.variants:
                r = results.get(v.name)
                changed = saved.get(test.name, {}).get(v.name) != v.percent
                per_call = r.cost_per_call_usd if r is not None else None
                rows[f"{test.name}/{v.name}"] = (
                    Text(f"{test.name} ({test.model})" + ("" if test.enabled else " off")),
                    Text(v.name),
                    Text(v.model, style=palette.muted),
                    Text(f"{'● ' if changed else ''}{v.percent:g}%", justify="right",
                         style=palette.accent if changed else ""),
                    Text(fmt.count(r.calls) if r else "0", justify="right"),
                    Text(fmt.ms(r.latency_p95_ms) if r else "–", justify="right"),
                    Text(fmt.pct(r.error_rate, 1) if r and r.calls else "–", justify="right"),
                    Text(fmt.usd_fixed(per_call, digits) if per_call is not None else "–", justify="right"),
                )
        if not rows:
            rows["(none)"] = (Text("(no A/B tests)", style=_dim(palette)), *(Text("") for _ in range(7)))
        sync_table(table, rows, _AKEYS)
        self.query_one("#ab-box").border_title = f"A/B tests · {len(staged.ab_tests)} · results of the last 24h"

    # -- hints and writes ------------------------------------------------------------------

    def hint(self, message: str, *, error: bool = False) -> None:
        """The line above the footer."""
        line = self.query_one("#hint", Static)
        line.set_class(error, "-error")
        line.update(message)

    @work(thread=True, exclusive=True, group="save", exit_on_error=False)
    def _save_worker(self, staged: RoutingConfig, weights: dict[str, float]) -> Path:
        return self.backend.save_routing(staged, weights)

    @work(thread=True, exclusive=True, group="explain", exit_on_error=False)
    def _explain_worker(self, model: str, user: str, tokens: int | None) -> Explanation:
        return self.backend.explain(model, user, tokens)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Textual calls `DashboardScreen`'s handler too (for the fetches): this one only does saves and explains.
        group = event.worker.group
        if group not in ("save", "explain"):
            return
        if event.state == WorkerState.SUCCESS:
            if group == "save":
                self.dirty = False
                if self.backend.applies_routing_now:
                    self.hint(f"Saved to {event.worker.result}; the gateway routes with it now.")
                else:
                    self.hint(f"Saved to {event.worker.result}; gateways started from now on route with it "
                              "(restart a running `ax serve` to apply it there).")
                self.notify(f"Routing saved to {event.worker.result}", timeout=5)
                draw_after_edit(self, "routing")
            elif isinstance(event.worker.result, Explanation):
                rules = self.staged.rules if self.staged is not None else []
                self.query_one("#explain-result", Static).update(explanation_text(event.worker.result, rules))
        elif event.state == WorkerState.ERROR:
            error = event.worker.error
            message = getattr(error, "message", None) or str(error)
            if group == "save":
                self.hint(f"Not saved: {message}", error=True)
            else:
                self.query_one("#explain-result", Static).update(f"[$error]{_esc(message)}[/]")

    # -- editing ---------------------------------------------------------------------------

    def _cursor_key(self, table: DataTable[Any]) -> str | None:
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(row_key.value)

    def action_edit(self) -> None:
        """Edit the weight (deployments) or split (A/B tests) under the cursor, in place."""
        focused = self.focused
        if not isinstance(focused, DataTable) or self.staged is None:
            return
        key = self._cursor_key(focused)
        if key is None:
            return
        if focused.id == "health":
            self._open(focused, key, "weight", f"{self.weights.get(key, 1.0):g}", check_weight, f"weight of {key}")
        elif focused.id == "ab" and "/" in key:
            test_name, variant = key.split("/", 1)
            test = next((t for t in self.staged.ab_tests if t.name == test_name), None)
            v = next((v for v in test.variants if v.name == variant), None) if test else None
            if v is not None:
                self._open(focused, key, "split", f"{v.percent:g}", check_percent, f"split of {key} (%)")
        elif focused.id == "route-rules":
            self.hint("Move a rule with shift+↑ / shift+↓ (or K / J); edit its conditions in the config file.")

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    def _open(self, table: DataTable[Any], key: str, column: str, value: str,
              check: Callable[[str], str | None], purpose: str) -> None:
        if self._editor is not None:
            self._editor.remove()
        self._editor = CellEditor(table, key, column, value, validate=check, purpose=purpose, min_width=9)
        self.mount(self._editor)
        self.hint(f"{purpose}: enter stages it, esc cancels")

    def _close_editor(self) -> None:
        editor, self._editor = self._editor, None
        if editor is not None:
            editor.table.focus()
            editor.remove()

    @on(CellEditor.Problem)
    def _problem(self, event: CellEditor.Problem) -> None:
        self.hint(event.message or f"{event.editor.purpose}: enter stages it, esc cancels", error=bool(event.message))

    @on(CellEditor.Cancelled)
    def _cancelled(self, _: CellEditor.Cancelled) -> None:
        self._close_editor()
        self.hint("Not changed.")

    @on(CellEditor.Accepted)
    def _submitted(self, event: CellEditor.Accepted) -> None:
        staged = self.staged
        if staged is None:
            return
        if event.column_key == "weight":
            self.weights[event.row_key] = parse_weight(event.value)
        else:
            test_name, variant = event.row_key.split("/", 1)
            tests = [rebalance(t, variant, float(event.value.strip().removesuffix("%"))) if t.name == test_name else t
                     for t in staged.ab_tests]
            self.staged = staged.model_copy(update={"ab_tests": tests})
        self.dirty = True
        self._close_editor()
        self.hint("Staged. ctrl+s saves to the config file; u undoes.")
        self._draw()

    def action_move(self, delta: int) -> None:
        """Move the selected rule up (-1) or down (+1)."""
        table = self.query_one("#route-rules", DataTable)
        if self.focused is not table or self.staged is None or not self.staged.rules:
            return
        rules, to = move_rule(self.staged.rules, table.cursor_row, delta)
        if to == table.cursor_row:
            return
        self.staged = self.staged.model_copy(update={"rules": rules})
        self.dirty = True
        self._draw()
        table.move_cursor(row=to)
        self.hint("Staged. ctrl+s saves to the config file; u undoes.")

    def action_save(self) -> None:
        """Validate the staged routing and write it to the config file."""
        if not self.dirty or self.staged is None:
            self.action_nothing_staged("save")
            return
        self.hint("Saving…")
        self._save_worker(self.staged, dict(self.weights))

    def action_revert(self) -> None:
        """Drop the staged edits."""
        if not self.dirty:
            self.action_nothing_staged("undo")
            return
        self.dirty = False
        if self._last is not None:
            self.show(self._last)
        self.hint("Edits dropped.")

    def action_nothing_staged(self, verb: str) -> None:
        """Say that no edit is staged, so there is nothing to ``verb`` (save, undo)."""
        if self._editor is not None:
            # A value being typed is not staged yet: enter stages it, then ctrl+s saves.
            self.notify(f"Nothing to {verb} yet: enter stages the {self._editor.purpose} first.", timeout=4,
                        markup=False)
            return
        self.notify(f"Nothing to {verb}: no edit is staged.", timeout=4)

    def action_explain(self) -> None:
        """Type a model in the explain box."""
        self.query_one("#explain-model", Input).focus()

    @on(Input.Submitted, "#explain-model, #explain-user, #explain-tokens")
    def _explain(self, event: Input.Submitted) -> None:
        event.stop()
        model = self.query_one("#explain-model", Input).value.strip()
        if not model:
            self.query_one("#explain-model", Input).focus()
            return
        user = self.query_one("#explain-user", Input).value.strip() or "anonymous"
        tokens_text = self.query_one("#explain-tokens", Input).value.strip()
        tokens = int(tokens_text) if tokens_text.isdigit() else None
        self.query_one("#explain-result", Static).update("[dim]asking the router…[/]")
        self._explain_worker(model, user, tokens)

    def on_theme_changed(self) -> None:
        self._draw()


def _dim(palette: Palette) -> str:
    return palette.muted
