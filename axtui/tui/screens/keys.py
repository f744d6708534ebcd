"""Screen 6, Keys: the gateway's keys and teams, with spend, budget use, limits, allowed models and expiry.

``d`` revokes and ``r`` rotates the key under the cursor, each after a
confirm; a rotation shows the new secret once, in a dialog, and the old
secret keeps working for `ROTATE_GRACE`. Every change goes through the
same functions as ``ax keys`` (stored and audited, via the dashboard).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Static
from textual.worker import Worker, WorkerState

from axtui.governance.standing import Standing
from axtui.governance.teams import TeamInfo
from axtui.money import usd_text
from axtui.server.keys import KeyInfo
from axtui.tui import fmt
from axtui.tui.export_view import ViewRows
from axtui.tui.screens.base import DashboardScreen
from axtui.tui.screens.confirm import ConfirmScreen
from axtui.tui.screens.draw_once import draw_after_edit
from axtui.tui.views import KeysView
from axtui.tui.widgets.palette import Palette
from axtui.tui.widgets.table_sync import sync_table
from axtui.tui.widgets.tables import FitTable

__all__ = ["ROTATE_GRACE", "KeysScreen", "SecretScreen", "key_cells", "key_status", "team_cells"]

#: How long a rotated key's old secret keeps working, so the apps using it can be moved over.
ROTATE_GRACE = "1h"

KEY_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("id", "Id", 12),
    ("name", "Name", 0),
    ("user", "User", 10),
    ("team", "Team", 6),
    ("status", "Status", 7),
    ("models", "Models", 12),
    ("expires", "Expires", 10),
    ("spent", "Spent", 8),
    ("budget", "Budget", 11),
    ("limits", "RPM/TPM", 11),
)
TEAM_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("name", "Team", 0),
    ("members", "Members", 20),
    ("budget", "Budget", 17),
    ("spent", "Spent", 8),
    ("used", "Used", 14),
    ("limits", "RPM/TPM", 11),
    ("models", "Models", 14),
)
#: The columns of an export of each table (``x``): the same facts, as plain values.
KEY_EXPORT = ("id", "name", "user", "team", "status", "models", "expires", "spent_usd", "budget_usd", "budget_used",
              "rpm", "tpm")
TEAM_EXPORT = ("team", "members", "budget_usd", "period", "hard", "spent_usd", "budget_used", "rpm", "tpm", "models")
_KKEYS = tuple(c[0] for c in KEY_COLUMNS)
_TKEYS = tuple(c[0] for c in TEAM_COLUMNS)


def key_status(info: KeyInfo, now: float) -> str:
    """``active``, ``expired`` or ``revoked``."""
    if not info.active:
        return "revoked"
    if info.expired(now):
        return "expired"
    return "active"


def _usd(nanos: int | None) -> str | None:
    return None if nanos is None else usd_text(nanos)


def _globs(models: tuple[str, ...] | None) -> str | None:
    return " ".join(models) if models else None


def _models(models: tuple[str, ...] | None) -> str:
    return ",".join(models) if models else "any"


def _used(used: float | None, palette: Palette) -> Text:
    if used is None:
        return Text("–", style=palette.muted)
    tone = palette.bad if used >= 1 else palette.warn if used >= 0.8 else palette.ok
    text = Text(fmt.bar(used, 8), style=tone)
    text.append(f" {used * 100:3.0f}%")
    return text


def _limits(rpm: int | None, tpm: int | None, palette: Palette) -> Text:
    """``60 / 20,000``: requests and tokens per minute (– for none)."""
    if not rpm and not tpm:
        return Text("–", style=palette.muted)
    return Text(f"{fmt.count(rpm) if rpm else '–'} / {fmt.count(tpm) if tpm else '–'}")


def _spent(standing: Standing, palette: Palette) -> Text:
    if not standing.spent_nanos:
        return Text("–", justify="right", style=palette.muted)
    return Text(fmt.usd_nanos(standing.spent_nanos), justify="right")


def key_cells(info: KeyInfo, standing: Standing, now: float, palette: Palette) -> tuple[Any, ...]:
    """One key row, in `KEY_COLUMNS` order."""
    status = key_status(info, now)
    tone = {"active": palette.ok, "expired": palette.warn, "revoked": palette.bad}[status]
    budget = Text("–", style=palette.muted)
    if info.budget_nanos is not None:
        used = standing.budget_used or 0.0
        budget = Text(f"{fmt.usd_nanos(info.budget_nanos)} ")
        budget.append(f"{used * 100:.0f}%", style=palette.bad if used >= 1 else palette.warn if used >= 0.8 else "")
    expires = time.strftime("%Y-%m-%d", time.localtime(info.expires)) if info.expires else "never"
    return (
        Text(info.id, style=palette.muted if status != "active" else ""),
        Text(info.name or "–", no_wrap=True, overflow="ellipsis"),
        Text(info.user + (" ✓" if info.trusted else ""), no_wrap=True, overflow="ellipsis"),
        Text(info.team or "–", no_wrap=True, overflow="ellipsis"),
        Text(status, style=tone),
        Text(_models(info.models), no_wrap=True, overflow="ellipsis"),
        Text(expires, style=palette.warn if status == "expired" else "" if info.expires else palette.muted),
        _spent(standing, palette),
        budget,
        _limits(info.rpm, info.tpm, palette),
    )


def team_cells(info: TeamInfo, standing: Standing, palette: Palette) -> tuple[Any, ...]:
    """One team row, in `TEAM_COLUMNS` order."""
    budget = Text("–", style=palette.muted)
    if info.budget_nanos is not None:
        budget = Text(f"{fmt.usd_nanos(info.budget_nanos)}/{info.period or 'month'}")
        budget.append(" hard" if info.hard else " soft", style=f"bold {palette.bad}" if info.hard else palette.muted)
    return (
        Text(info.name, no_wrap=True, overflow="ellipsis"),
        Text(", ".join(info.members) or "–", no_wrap=True, overflow="ellipsis"),
        budget,
        _spent(standing, palette),
        _used(standing.budget_used or 0.0, palette) if info.budget_nanos is not None else Text("–", style=palette.muted),
        _limits(info.rpm, info.tpm, palette),
        Text(_models(info.models), no_wrap=True, overflow="ellipsis"),
    )


class SecretScreen(ModalScreen[None]):
    """The new secret of a rotated key: shown this once."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape,enter", "close", "Close"),
        Binding("c", "copy", "Copy"),
    ]

    def __init__(self, secret: str, info: KeyInfo) -> None:
        super().__init__()
        self.secret = secret
        self.info = info

    def compose(self) -> ComposeResult:
        until = self.info.prev_until
        old = (f"The old secret works until {time.strftime('%H:%M', time.localtime(until))}."
               if until else "The old secret no longer works.")
        with Vertical(id="secret", classes="dialog"):
            yield Static(f"New secret of key {self.info.id} ({self.info.user}) — shown this once:", markup=False)
            yield Static(self.secret, id="secret-value", markup=False)
            yield Static(f"{old} Only its hash is kept: copy it now (c).", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Done (esc)", id="done", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_close()

    def action_copy(self) -> None:
        """Send the secret to the clipboard through the terminal, and say what may stop it arriving."""
        from axtui.tui.clipboard import copy_text

        copy_text(self.app, self.secret, "the new secret")

    def action_close(self) -> None:
        """Close the dialog; the secret is gone from the screen."""
        self.dismiss(None)


class KeysScreen(DashboardScreen):
    """Gateway keys (status, policy, spend, budget use) and teams (members, budget, limits, models)."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("d", "revoke", "Revoke"),
        Binding("r", "rotate", "Rotate"),
    ]
    MODE = "keys"
    MIN_INTERVAL_S = 2.0
    WATCHES = frozenset({"keys"})
    HELP = f"""[b]Keys[/]: d revokes the key under the cursor and r gives it a new secret, each after asking.
The new secret is shown once; the old one keeps working for {ROTATE_GRACE}. Status: active, expired or revoked.
[b]Teams[/]: budget, its use this month, limits and models.
Create and change keys and teams with `ax keys` and `ax teams`."""

    def __init__(self) -> None:
        super().__init__()
        self._last: KeysView | None = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("revoke", "rotate"):
            return self.focused is not None and self.focused.id == "keys"
        return True

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    def compose_body(self) -> Iterable[Any]:
        with Vertical(id="keys-box", classes="section"):
            table: DataTable[Any] = FitTable(id="keys", squeeze=("name", 10, 10, 24),
                                             drop=("limits", "spent", "expires", "team"))
            for key, label, width in KEY_COLUMNS:
                table.add_column(label, key=key, width=width or None)
            yield table
        with Vertical(id="teams-box", classes="section"):
            teams: DataTable[Any] = FitTable(id="teams", squeeze=("name", 10, 12, 24),
                                             drop=("limits", "models", "spent"))
            for key, label, width in TEAM_COLUMNS:
                teams.add_column(label, key=key, width=width or None)
            yield teams
        yield Static("", id="hint")

    def on_mount(self) -> None:
        self.query_one("#keys-box").border_title = "Keys"
        self.query_one("#teams-box").border_title = "Teams"
        self.query_one("#keys", DataTable).focus()

    def export_view(self) -> ViewRows | None:
        """The table with the focus as it stands: the keys (never a secret), or the teams."""
        view = self._last
        if view is None:
            return None
        if self.focused is not None and self.focused.id == "teams":
            rows = []
            for t in view.teams:
                standing = view.team_standing.get(t.name, Standing())
                rows.append([t.name, " ".join(t.members), _usd(t.budget_nanos), t.period, t.hard,
                             _usd(standing.spent_nanos), standing.budget_used, t.rpm, t.tpm, _globs(t.models)])
            return ViewRows("teams", f"the {len(rows)} teams the Teams table shows", TEAM_EXPORT, rows)
        now = view.now or self.backend.clock.now()
        rows = []
        for k in view.keys:
            standing = view.key_standing.get(k.id, Standing())
            rows.append([k.id, k.name, k.user, k.team, key_status(k, now), _globs(k.models), k.expires,
                         _usd(standing.spent_nanos), _usd(k.budget_nanos), standing.budget_used, k.rpm, k.tpm])
        return ViewRows("keys", f"the {len(rows)} keys the Keys table shows, without secrets (tab to Teams "
                        "to export those)", KEY_EXPORT, rows)

    # -- data ------------------------------------------------------------------------------

    def fetch(self) -> KeysView:
        self.backend.wait_ready(60)
        return self.backend.keys()

    def show(self, view: KeysView) -> None:
        self._last = view
        palette = Palette.of(self.app)
        now = view.now or self.backend.clock.now()
        with self.app.batch_update():
            keys = self.query_one("#keys", DataTable)
            rows = {k.id: key_cells(k, view.key_standing.get(k.id, Standing()), now, palette) for k in view.keys}
            sync_table(keys, rows, _KKEYS)
            active = sum(1 for k in view.keys if key_status(k, now) == "active")
            self.query_one("#keys-box").border_title = f"Keys · {len(view.keys)} · {active} active"
            teams = self.query_one("#teams", DataTable)
            sync_table(teams, {t.name: team_cells(t, view.team_standing.get(t.name, Standing()), palette)
                               for t in view.teams}, _TKEYS)
            self.query_one("#teams-box").border_title = f"Teams · {len(view.teams)}"
            self.query_one("#teams", FitTable).empty = "no teams: ax teams create NAME makes one"
            if not view.keys:
                self.hint("No keys yet: make one with [b]ax keys create --user NAME[/].")

    # -- helpers ---------------------------------------------------------------------------

    def hint(self, message: str, *, error: bool = False) -> None:
        """The line above the footer: what to do, or why something was refused."""
        line = self.query_one("#hint", Static)
        line.set_class(error, "-error")
        line.update(message)

    def _selected(self) -> KeyInfo | None:
        table = self.query_one("#keys", DataTable)
        if self._last is None or not table.row_count:
            return None
        try:
            row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        except Exception:  # an empty table or a stale cursor
            return None
        return next((k for k in self._last.keys if k.id == row_key.value), None)

    @work(thread=True, group="write", exit_on_error=False)
    def _write(self, what: str, key_id: str) -> tuple[str, Any]:
        if what == "rotate":
            return what, self.backend.rotate_key(key_id, ROTATE_GRACE)
        return what, self.backend.revoke_key(key_id)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Textual calls `DashboardScreen`'s handler too (for the fetches): this one only does the writes.
        if event.worker.group != "write":
            return
        if event.state == WorkerState.SUCCESS and event.worker.result is not None:
            what, result = event.worker.result
            if what == "rotate":
                secret, info = result
                self.hint(f"Rotated key {info.id}; the old secret works for {ROTATE_GRACE}")
                self.app.push_screen(SecretScreen(secret, info))
            else:
                self.hint(f"Revoked key {result.id} of {result.user}")
                self.notify(f"Revoked key {result.id}", timeout=4)
            draw_after_edit(self, "keys")
        elif event.state == WorkerState.ERROR:
            error = event.worker.error
            self.hint(f"Not done: {getattr(error, 'message', None) or error}", error=True)

    # -- actions ---------------------------------------------------------------------------

    def action_revoke(self) -> None:
        """Revoke the key under the cursor, after a confirm."""
        info = self._selected()
        if info is None:
            return
        if not info.active:
            self.hint(f"Key {info.id} is already revoked.", error=True)
            return
        question = (f"Revoke key {info.id}?\n\n  {info.name or '(no name)'} · user {info.user}"
                    f"{' · team ' + info.team if info.team else ''}\n\nCalls with it are refused from now on; "
                    "this cannot be undone.")

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._write("revoke", info.id)
            else:
                self.hint("Kept.")

        self.app.push_screen(ConfirmScreen(question, yes="Revoke", no="Keep"), confirmed)

    def action_rotate(self) -> None:
        """Give the key under the cursor a new secret, after a confirm; the secret is shown once."""
        info = self._selected()
        if info is None:
            return
        if not info.active:
            self.hint(f"Key {info.id} is revoked: it cannot be rotated.", error=True)
            return
        question = (f"Rotate key {info.id}?\n\n  {info.name or '(no name)'} · user {info.user}\n\n"
                    f"It gets a new secret, shown once; the old one keeps working for {ROTATE_GRACE}.")

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._write("rotate", info.id)
            else:
                self.hint("Not rotated.")

        self.app.push_screen(ConfirmScreen(question, yes="Rotate", no="Cancel"), confirmed)

    def on_theme_changed(self) -> None:
        if self._last is not None:
            self.show(self._last)
