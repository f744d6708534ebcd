"""Screen 3, Budgets & limits: see them fill, change them from the keyboard.

``a`` adds, ``enter`` edits the amount (or the limit) in place, ``h``
toggles a budget hard or soft, ``d`` deletes after a confirm, ``r`` resets
what a rate-limit subject used. Every change is written to the store at
once (and handed to the running engine in the demo); a refused value
shows why and the table keeps the old one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from textual import on, work
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from axtui.cost.budgets import BudgetInfo, BudgetStatus
from axtui.money import nanos_to_usd, usd_text
from axtui.ratelimit.limiter import LimitStatus
from axtui.tui import fmt
from axtui.tui.checks import check_amount, check_rate, check_scope, check_subject
from axtui.tui.screens.base import DashboardScreen
from axtui.tui.screens.budget_change import BudgetChange, change_question, describe_budget, find_existing
from axtui.tui.screens.budget_rows import (
    BUDGET_COLUMNS,
    LIMIT_COLUMNS,
    budget_cells,
    describe_stored,
    limit_cells,
    limit_key,
    used_up,
)
from axtui.tui.screens.confirm import ConfirmScreen
from axtui.tui.screens.draw_once import draw_after_edit
from axtui.tui.screens.form import Field, FormScreen
from axtui.tui.views import BudgetsView
from axtui.tui.widgets.cell_editor import CellEditor
from axtui.tui.widgets.palette import Palette
from axtui.tui.widgets.table_sync import move_to_row, sync_table
from axtui.tui.widgets.tables import EditableTable, FitTable

__all__ = ["BudgetsScreen", "budget_cells", "limit_cells", "limit_saved_message", "used_up"]

_BKEYS = tuple(c[0] for c in BUDGET_COLUMNS)
_LKEYS = tuple(c[0] for c in LIMIT_COLUMNS)
PERIODS: tuple[str, ...] = ("day", "week", "month", "total")


def limit_saved_message(subject: str, unit: str, value: str) -> str:
    """What saving ``value`` as ``subject``'s ``unit`` limit did, in the words `ax ratelimit set` uses."""
    word = value.strip().lower()
    if word in ("unlimited", "none", "off"):
        return (f"{subject}: stored — no {unit} limit applies to it now (unlimited); d removes it and the "
                "default applies again")
    if word == "default":
        return f"{subject}: {unit} limit is the default again (the config's [ratelimit], if it sets one)"
    return f"{subject}: {unit} limit is now {fmt.with_separators(value.strip())}"


class BudgetsScreen(DashboardScreen):
    """Budgets (scope, period, amount, spent, bar, projection, hard/soft) and rate limits."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("a", "add", "Add"),
        Binding("enter", "edit", "Edit", show=False),
        Binding("h", "toggle_hard", "Hard/soft"),
        Binding("d", "delete", "Delete"),
        Binding("r", "reset", "Reset limit"),
    ]
    MODE = "budgets"
    MIN_INTERVAL_S = 1.0
    WATCHES = frozenset({"budgets"})
    HELP = """Keys act on the table with the focus (tab moves between them).
[b]Budgets[/]: enter edits the amount where it stands (esc cancels); h makes it hard (refuses calls)
or soft (alerts only); d deletes it after asking. [b]Limits[/]: enter edits the limit (60/minute,
100000/hour; [i]unlimited[/] exempts the subject, [i]default[/] goes back to the config's); d removes a
subject's stored limit; r resets what it used. [i]Refill[/]: when the whole quota is back."""

    def __init__(self) -> None:
        super().__init__()
        self._last: BudgetsView | None = None
        self._editor: CellEditor | None = None
        #: (table id, row test) of the row the cursor goes to once it is drawn: the one just added.
        self._select: tuple[str, Callable[[str], bool]] | None = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Keys that act on one table only show (and work) while that table has the focus.
        focused = self.focused.id if self.focused is not None else None
        if action == "toggle_hard":
            return focused == "budgets"
        if action == "reset":
            return focused == "limits"
        return True

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    def compose_body(self) -> Iterable[Any]:
        with Vertical(id="budgets-box", classes="section"):
            table: DataTable[Any] = EditableTable(id="budgets", squeeze=("scope", 18, 24, 40),
                                                    drop=("id", "spent"))
            for key, label, width in BUDGET_COLUMNS:
                table.add_column(label, key=key, width=width or None)
            yield table
        with Vertical(id="limits-box", classes="section"):
            limits: DataTable[Any] = EditableTable(id="limits", squeeze=("subject", 20, 26, 40),
                                                   drop=("source",))
            for key, label, width in LIMIT_COLUMNS:
                limits.add_column(label, key=key, width=width or None)
            yield limits
        yield Static("", id="hint")

    def on_mount(self) -> None:
        self.query_one("#budgets-box").border_title = "Budgets"
        self.query_one("#limits-box").border_title = "Rate limits"
        self.query_one("#budgets", DataTable).focus()

    def export_kind(self) -> str:
        return "budgets"

    # -- data ------------------------------------------------------------------------------

    def fetch(self) -> BudgetsView:
        self.backend.wait_ready(60)
        return self.backend.budgets()

    def show(self, view: BudgetsView) -> None:
        self._last = view
        palette = Palette.of(self.app)
        now = self.backend.clock.now()
        with self.app.batch_update():
            budgets = self.query_one("#budgets", DataTable)
            digits = fmt.money_digits(nanos_to_usd(s.spent_nanos) for s in view.budgets)
            rows = {str(s.budget.id): budget_cells(s, now, palette, digits) for s in view.budgets}
            sync_table(budgets, rows, _BKEYS)
            self._move_to_added(budgets)
            over = sum(1 for s in view.budgets if used_up(s))
            hard = sum(1 for s in view.budgets if s.budget.hard)
            self.query_one("#budgets-box").border_title = (
                f"Budgets · {len(view.budgets)} · {hard} hard" + (f" · {over} used up" if over else "")
            )
            limits = self.query_one("#limits", DataTable)
            sync_table(limits, {limit_key(x): limit_cells(x, palette) for x in view.limits}, _LKEYS)
            self._move_to_added(limits)
            title = f"Rate limits · {len(view.limits)}"
            if view.limits_error:
                title += f" · unavailable: {view.limits_error}"
            self.query_one("#limits-box").border_title = title
            self.query_one("#limits", FitTable).empty = (
                "" if view.limits_error else "none in force: no call is held back; press a here to add one")
            if not view.budgets and self._editor is None:
                self.hint("No budgets yet: press [b]a[/] to add one (like $25 a day for everyone).")
        if self._editor is not None:
            self._editor.place()

    # -- helpers ---------------------------------------------------------------------------

    def _move_to_added(self, table: DataTable[Any]) -> None:
        """Once the row just added is drawn, the cursor (and the focus) go to it."""
        if self._select is None or self._select[0] != table.id:
            return
        if move_to_row(table, self._select[1]):
            self._select = None
            table.focus()

    def hint(self, message: str, *, error: bool = False) -> None:
        """The line above the footer: what to do, or why something was refused."""
        line = self.query_one("#hint", Static)
        line.set_class(error, "-error")
        line.update(message)

    def _focused_table(self) -> DataTable[Any] | None:
        focused = self.focused
        if isinstance(focused, DataTable):
            return focused
        return None

    def _current_key(self, table: DataTable[Any]) -> str | None:
        if not table.row_count:
            return None
        try:
            row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        except Exception:  # an empty table or a stale cursor
            return None
        return str(row_key.value)

    def _status_of(self, budget_id: int) -> BudgetStatus | None:
        if self._last is None:
            return None
        return next((s for s in self._last.budgets if s.budget.id == budget_id), None)

    def _limit_of(self, key: str) -> LimitStatus | None:
        if self._last is None:
            return None
        return next((x for x in self._last.limits if limit_key(x) == key), None)

    def _run(self, what: str, fn: Callable[[], Any], done: str | Callable[[Any], str]) -> None:
        """Write in a worker; on success say ``done`` and draw the table again, on failure say why.

        ``done`` may be a function of what the write returned (the budget as stored), so the message
        says what the store holds, not what the screen showed before.
        """
        self._write(what, fn, done)

    @work(thread=True, group="write", exit_on_error=False)
    def _write(self, what: str, fn: Callable[[], Any], done: str | Callable[[Any], str]) -> tuple[str, str]:
        result = fn()
        return what, done(result) if callable(done) else done

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Textual calls `DashboardScreen`'s handler too (for the fetches): this one only does the writes.
        if event.worker.group != "write":
            return
        if event.state == WorkerState.SUCCESS and event.worker.result is not None:
            what, done = event.worker.result
            self.hint(done)
            self.notify(done, timeout=4)
            if what == "edit" and self._editor is not None:
                self._close_editor()
            draw_after_edit(self, "budgets")
        elif event.state == WorkerState.ERROR:
            error = event.worker.error
            message = getattr(error, "message", None) or str(error)
            self.hint(f"Not saved: {message}", error=True)
            if self._editor is not None:
                self._editor.add_class("-invalid")
                self._editor.focus()

    # -- actions ---------------------------------------------------------------------------

    def action_add(self) -> None:
        """Add a budget (budgets focused) or a rate limit (limits focused)."""
        table = self._focused_table()
        backend = self.backend
        if table is not None and table.id == "limits":
            def save_limit(v: dict[str, Any]) -> object:
                subject = str(v["subject"]).strip()
                saved = backend.set_limit(subject, v["requests"], v["tokens"])
                # Rows are keyed "scope:name|unit"; a bare name is a user.
                label = subject if ":" in subject or subject == "global" else f"user:{subject}"
                self._select = ("limits", lambda key: key.split("|", 1)[0] == label)
                return saved

            fields = [
                Field("subject", "Subject", placeholder="user:alice, key:k_1, provider:openai, global",
                      check=check_subject, help="who the limit applies to"),
                Field("requests", "Requests", placeholder="60/minute", check=check_rate, required=False,
                      help="requests per period (blank: the default)"),
                Field("tokens", "Tokens", placeholder="100000/minute", check=check_rate, required=False,
                      help="input+output tokens per period (blank: the default)"),
            ]
            self.app.push_screen(
                FormScreen("Add a rate limit", fields, save_limit),
                lambda result: self._added(result, "limit"),
            )
            return

        def save_budget(v: dict[str, Any]) -> BudgetInfo | BudgetChange:
            scope, period, amount, hard = str(v["scope"]), str(v["period"]), str(v["amount"]), bool(v["hard"])
            # The store keeps one budget per scope and period: asked from the store (not from the rows on
            # screen, which may be paused), so a budget that exists is changed only after a confirm.
            change = find_existing((s.budget for s in backend.budgets().budgets), scope, period, amount, hard)
            if change is not None:
                return change
            return backend.add_budget(scope, period, amount, hard)

        fields = [
            Field("scope", "Scope", value="global", placeholder="global, provider:openai, model:gpt-4o, user:alice",
                  check=check_scope, help="what the budget covers"),
            Field("period", "Period", kind="choice", value="day", options=PERIODS),
            Field("amount", "Amount ($)", placeholder="25", check=check_amount, help="dollars per period"),
            Field("hard", "Hard", kind="flag", help="hard: refuse calls once spent (soft only alerts)"),
        ]
        self.app.push_screen(FormScreen("Add a budget", fields, save_budget),
                             lambda result: self._added(result, "budget"))

    def _added(self, result: Any, kind: str) -> None:
        if result is None:
            return
        if isinstance(result, BudgetChange):
            self._confirm_change(result)
            return
        if isinstance(result, BudgetInfo):
            self._select = ("budgets", str(result.id).__eq__)
            described = describe_budget(result)
        else:
            described = f"rate limit of {describe_stored(result)}"
        self.hint(f"Saved {described}")
        self.notify(f"Saved {described}", timeout=4)
        draw_after_edit(self, "budgets")

    def _confirm_change(self, change: BudgetChange) -> None:
        """An add that matches a budget that exists: nothing written until the user says so, old → new shown."""
        old = change.old
        if change.same:
            self._select = ("budgets", str(old.id).__eq__)
            self.hint(f"Budget {describe_budget(old)} already is that; nothing changed.")
            return
        backend = self.backend

        def answered(yes: bool | None) -> None:
            if not yes:
                self.hint(f"Kept budget {describe_budget(old)} as it was; enter on its row changes only the amount.")
                return
            self._select = ("budgets", str(old.id).__eq__)
            self._run("change", lambda: backend.add_budget(change.scope, change.period, change.amount, change.hard),
                      lambda info: f"Changed budget {describe_budget(info)}")

        yes = "Change, make it soft" if change.weakens else "Change"
        self.app.push_screen(ConfirmScreen(change_question(change), yes=yes, no="Keep"), answered)

    def action_edit(self) -> None:
        """Edit the amount of the budget (or the limit) under the cursor, in place."""
        table = self._focused_table()
        if table is None:
            return
        key = self._current_key(table)
        if key is None:
            return
        if table.id == "budgets":
            status = self._status_of(int(key))
            if status is None:
                return
            value = usd_text(status.budget.limit_nanos)
            self._open_editor(table, key, "amount", value, check_amount, f"budget #{key} amount")
            self.hint(f"Amount of {status.budget.scope} per {status.budget.period}: enter saves, esc cancels")
        else:
            limit = self._limit_of(key)
            if limit is None:
                return
            if limit.subject == "*":
                self.hint(f"{limit.label} is the default for each one, set in the config file ([ratelimit]); "
                          "press a to give one subject its own limit", error=True)
                return
            self._open_editor(table, key, "limit", limit.limit, check_rate, f"{limit.label} {limit.unit} limit")
            self.hint(f"{limit.unit.capitalize()} limit of {limit.label} (60/minute, 1000/hour, unlimited): "
                      "enter saves, esc cancels")

    def _open_editor(self, table: DataTable[Any], key: str, column: str, value: str,
                     check: Callable[[str], str | None], purpose: str) -> None:
        self._close_editor()
        editor = CellEditor(table, key, column, value, validate=check, purpose=purpose, min_width=12)
        self._editor = editor
        self.mount(editor)

    def _close_editor(self) -> None:
        editor = self._editor
        self._editor = None
        if editor is not None:
            table = editor.table
            editor.remove()
            table.focus()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    @on(CellEditor.Problem)
    def _editor_problem(self, event: CellEditor.Problem) -> None:
        if event.message:
            self.hint(event.message, error=True)
        else:
            self.hint(f"{event.editor.purpose}: enter saves, esc cancels")

    @on(CellEditor.Cancelled)
    def _editor_cancelled(self, event: CellEditor.Cancelled) -> None:
        self._close_editor()
        self.hint("Not changed.")

    @on(CellEditor.Accepted)
    def _editor_submitted(self, event: CellEditor.Accepted) -> None:
        backend = self.backend
        value = event.value.strip()
        if event.editor.table.id == "budgets":
            budget_id = int(event.row_key)
            self._run("edit", lambda: backend.set_budget_amount(budget_id, value),
                      lambda info: f"Budget #{budget_id} is now {fmt.usd_limit(info.limit_nanos)} — in force from "
                                   "the next call")
        else:
            limit = self._limit_of(event.row_key)
            if limit is None:
                self._close_editor()
                return
            subject = limit.label
            requests, tokens = (value, None) if limit.unit == "requests" else (None, value)
            self._run("edit", lambda: backend.set_limit(subject, requests, tokens),
                      limit_saved_message(subject, limit.unit, value))

    def action_toggle_hard(self) -> None:
        """Make the budget under the cursor hard (refusing calls) or soft (alerting only)."""
        table = self.query_one("#budgets", DataTable)
        if self.focused is not table:
            return
        key = self._current_key(table)
        status = self._status_of(int(key)) if key else None
        if status is None:
            return
        backend = self.backend
        budget_id = status.budget.id
        # The store flips what it holds (the row may be stale while paused); the message says what it became.
        self._run("toggle", lambda: backend.toggle_hard(budget_id),
                  lambda info: f"Budget #{budget_id} is now "
                               f"{'hard (refuses calls once spent)' if info.hard else 'soft (alerts only)'}")

    def action_delete(self) -> None:
        """Delete the budget, or the subject's stored limit, under the cursor, after a confirm."""
        table = self._focused_table()
        if table is None:
            return
        key = self._current_key(table)
        if key is None:
            return
        backend = self.backend
        if table.id == "budgets":
            status = self._status_of(int(key))
            if status is None:
                return
            b = status.budget
            question = (f"Delete budget #{b.id}?\n\n  {b.scope} · {fmt.usd_limit(b.limit_nanos)} per {b.period} · "
                        f"{'hard' if b.hard else 'soft'}\n\nIts alert history is kept.")

            def confirmed(yes: bool | None) -> None:
                if yes:
                    self._run("delete", lambda: backend.delete_budget(b.id), f"Deleted budget #{b.id} ({b.scope})")
                else:
                    self.hint("Kept.")

            self.app.push_screen(ConfirmScreen(question), confirmed)
            return
        limit = self._limit_of(key)
        if limit is None or limit.source not in ("store", "stored"):
            self.hint("Only limits set for one subject (from the store) can be deleted here; defaults live in "
                      "the config file", error=True)
            return
        question = f"Remove the stored limits of {limit.label}?\n\nThe defaults apply to it again."

        def confirmed_limit(yes: bool | None) -> None:
            if yes:
                self._run("delete", lambda: backend.delete_limit(limit.label), f"Removed the limits of {limit.label}")
            else:
                self.hint("Kept.")

        self.app.push_screen(ConfirmScreen(question, yes="Remove"), confirmed_limit)

    def action_reset(self) -> None:
        """Give the rate-limit subject under the cursor its full quota again (after a confirm)."""
        table = self.query_one("#limits", DataTable)
        if self.focused is not table:
            return
        key = self._current_key(table)
        limit = self._limit_of(key) if key else None
        if limit is None or limit.subject == "*":
            return
        backend = self.backend

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._run("reset", lambda: backend.reset_limit(limit.label), f"{limit.label} has its full quota again")

        self.app.push_screen(ConfirmScreen(f"Forget what {limit.label} used?", yes="Reset", no="Cancel"), confirmed)

    def on_theme_changed(self) -> None:
        if self._last is not None:
            self.show(self._last)
