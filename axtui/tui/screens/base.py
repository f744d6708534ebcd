"""What every dashboard screen shares: the bars, and the fetch loop.

A screen fetches its data in a worker thread (`fetch`), draws it on the UI
thread (`show`), and only then schedules the next fetch, one refresh
interval later: a slow store slows the screen down instead of piling up
requests. A screen out of sight (another screen, the too-small notice) or
a paused dashboard fetches and draws nothing. A dialog (a `ModalScreen`,
drawn over a see-through backdrop) does not hide the screen behind it: that
screen stays live (`in_sight`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Mount
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input
from textual.worker import Worker, WorkerState

from axtui.tui.screens.draw_once import fill_while_paused
from axtui.tui.widgets.calm import calm_inputs
from axtui.tui.widgets.navbar import NavBar
from axtui.tui.widgets.sight import in_sight
from axtui.tui.widgets.tables import FitTable

if TYPE_CHECKING:
    from axtui.tui.app import AxApp
    from axtui.tui.data import Backend
    from axtui.tui.export_view import ViewRows

__all__ = ["DashboardScreen"]

#: After a failed fetch, wait this long before trying again.
RETRY_S = 3.0


class DashboardScreen(Screen[None]):
    """A top-level screen (a mode): navigation bar, body, footer of keys.

    Subclasses set `MODE`, and implement `compose_body`, `fetch` and `show`.
    """

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "leave_input", "Leave", show=False),
    ]

    #: The mode this screen is (``realtime``, ``costs``, …).
    MODE: ClassVar[str] = ""
    #: Fetch at most this often, whatever the refresh rate (heavier queries).
    MIN_INTERVAL_S: ClassVar[float] = 0.0
    #: Which writes (`DataChanged.what`) make this screen fetch at once.
    WATCHES: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self._timer: Timer | None = None
        self._error: str | None = None
        self.fetches = 0
        #: The theme the screen's Rich text was last coloured in (None: not drawn yet).
        self.drawn_theme: str | None = None

    @property
    def ax(self) -> AxApp:
        """The dashboard app."""
        from axtui.tui.app import AxApp

        app = self.app
        assert isinstance(app, AxApp), "dashboard screens run inside AxApp"
        return app

    @property
    def in_sight(self) -> bool:
        """Whether the screen can be seen: on top, or with only dialogs (modal screens) over it (`in_sight`)."""
        return in_sight(self)

    @property
    def backend(self) -> Backend:
        """Where the data comes from."""
        return self.ax.backend

    def compose(self) -> ComposeResult:
        yield NavBar(self.MODE)
        yield from self.compose_body()
        yield Footer(show_command_palette=False)  # its keys are in the help (?); the footer's room is this screen's

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets, between the navigation bar and the footer."""
        return iter(())

    @on(FitTable.Relaid)
    def _relaid(self, event: FitTable.Relaid) -> None:
        """A table dropped or brought back columns for the terminal's width: write its rows again."""
        event.stop()
        self.refresh_now()

    def action_leave_input(self) -> None:
        """Esc in a text box: give the keys back to the screen (the first table takes the focus)."""
        if isinstance(self.focused, Input):
            tables = list(self.query(DataTable))
            if tables:
                tables[0].focus()
            else:
                self.set_focus(None)

    # -- the fetch loop -------------------------------------------------------------------

    def fetch(self) -> Any:
        """Read what the screen shows (runs in a worker thread; may block)."""
        return None

    def show(self, data: Any) -> None:
        """Draw freshly fetched data (on the UI thread)."""

    def unsaved_edits(self) -> str | None:
        """What is staged here and not saved (``"staged routing edits"``), or None: quitting asks first."""
        return None

    def export_view(self) -> ViewRows | None:
        """What this screen shows, as rows to export (None: only the store's full exports make sense)."""
        return None

    def export_kind(self) -> str:
        """What the export dialog offers first on this screen (``calls``, ``costs``, ``alerts``, ``budgets``)."""
        return "calls"

    def interval(self) -> float:
        """Seconds from one fetch's end to the next fetch."""
        return max(1.0 / self.ax.refresh_hz, self.MIN_INTERVAL_S)

    @on(Mount)
    def _calm(self) -> None:
        calm_inputs(self)
        if self.MODE:
            self.ax.dashboards[self.MODE] = self

    def on_theme_changed(self) -> None:
        """Colours live in Rich text (table cells, log lines): screens that hold some draw it again."""

    def recolour(self) -> None:
        """Draw the screen's Rich text again if the theme changed since it was drawn (even while paused)."""
        theme = self.app.theme
        if self.drawn_theme is not None and self.drawn_theme != theme:
            self.on_theme_changed()
        self.drawn_theme = theme

    def on_screen_resume(self) -> None:
        # A theme chosen on another screen: this one's rows were drawn in the old colours.
        self.recolour()
        self.ax.update_status()
        self.refresh_now()
        fill_while_paused(self)  # shown for the first time while paused: drawn once, not left empty

    def on_screen_suspend(self) -> None:
        # A dialog on top leaves this screen in sight, and live; anything else hides it.
        if not self.in_sight:
            self._cancel_timer()

    def refresh_now(self) -> None:
        """Fetch now (unless hidden or paused), dropping the scheduled fetch."""
        self._cancel_timer()
        if self.in_sight and not self.ax.paused:
            self._fetch()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _schedule(self, delay: float) -> None:
        self._cancel_timer()
        if self.in_sight and not self.ax.paused:
            self._timer = self.set_timer(delay, self.refresh_now)

    @work(thread=True, exclusive=True, group="fetch", exit_on_error=False)
    def _fetch(self) -> Any:
        return self.fetch()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "fetch" or worker.node is not self:
            return
        if event.state == WorkerState.SUCCESS:
            self.fetches += 1
            if self.in_sight and not self.ax.paused:
                self.show(worker.result)
                self.drawn_theme = self.app.theme
            self._error = None
            if self.ax.problem is not None and self.ax.started:
                self.ax.clear_problem()
            self._schedule(self.interval())
        elif event.state == WorkerState.ERROR:
            message = _describe(worker.error)
            if message != self._error:
                self._error = message
                self.ax.report_problem(message)
            self._schedule(max(RETRY_S, self.interval()))


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(message)
