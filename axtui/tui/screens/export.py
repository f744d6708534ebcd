"""``x``: export what the screen shows, with the headless exporter (`ax monitor export`).

The screen under the dialog stays live (a dialog leaves it in sight): calls
arrive, spend grows. So "this view" is read from it again when the export
starts, and the file gets what the screen shows then; while the dialog is
open it reads the view every `REREAD_S`, so what it says is what the file
would get.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from axtui.tui import fmt
from axtui.tui.data import Backend
from axtui.tui.export_view import ViewRows, export_file_name, unused_path, write_view
from axtui.tui.views import ExportResult
from axtui.tui.widgets.calm import calm_inputs

__all__ = ["RANGES", "REREAD_S", "ExportScreen"]

WHATS: tuple[str, ...] = ("calls", "costs", "alerts", "budgets")
FORMATS: tuple[str, ...] = ("csv", "json", "jsonl")
#: (label, seconds back; None for everything)
RANGES: tuple[tuple[str, float | None], ...] = (
    ("last hour", 3600.0),
    ("last 24 hours", 86_400.0),
    ("last 7 days", 7 * 86_400.0),
    ("last 30 days", 30 * 86_400.0),
    ("everything", None),
)
#: Seconds between two readings of the view under the dialog, to say what an export would write now.
REREAD_S = 0.5
#: What each store export writes, for the dialog to say (``{span}``: the range).
_STORE_SAYS: dict[str, str] = {
    "calls": "every call {span}",
    "costs": "the hourly spend per provider and model {span}",
    "alerts": "every alert and budget event {span}",
    "budgets": "every budget with its spend this period (the range does not apply)",
}
#: What the range does not apply to: the view on screen, and budgets (each in its current period).
_NO_RANGE = frozenset({"view", "budgets"})


class ExportScreen(ModalScreen[ExportResult | None]):
    """Choose what, the format, the range and the file; dismisses with the `ExportResult`.

    Args:
        backend: where store exports are read.
        what: the store export offered first when the screen has no view of its own.
        view: reads what the screen beneath shows now (its ``export_view``): as the dialog opens, every
            `REREAD_S` while it is open (for what it says), and when the export starts (for the file).
    """

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "export", "Export"),
    ]
    AUTO_FOCUS = "#x-path"

    def __init__(self, backend: Backend, what: str = "calls",
                 view: Callable[[], ViewRows | None] | None = None) -> None:
        super().__init__()
        self.backend = backend
        self.read_view: Callable[[], ViewRows | None] = view if view is not None else lambda: None
        #: What the screen beneath shows, as last read; offered first (and chosen) when there is one.
        self.view = self.read_view()
        self.what = "view" if self.view is not None else what if what in WHATS else "calls"
        #: The range chosen, an index into `RANGES` (store exports only).
        self.range_index = 1
        self._path_edited = False
        self._busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="export", classes="dialog form"):
            yield Static("[b]Export[/]", classes="form-title")
            with Horizontal(classes="form-row"):
                with Vertical():
                    yield Label("What", classes="form-label")
                    choices = [(w, w) for w in WHATS]
                    if self.view is not None:
                        choices.insert(0, ("this view", "view"))
                    yield Select(choices, value=self.what, allow_blank=False, id="x-what", compact=True)
                with Vertical():
                    yield Label("Format", classes="form-label")
                    yield Select([(f, f) for f in FORMATS], value="csv", allow_blank=False, id="x-format",
                                 compact=True)
                with Vertical():
                    yield Label("Range", classes="form-label")
                    yield Select([(label, i) for i, (label, _) in enumerate(RANGES)], value=self.range_index,
                                 allow_blank=False, id="x-range", compact=True, disabled=self.what in _NO_RANGE)
            yield Static(self._says(), id="x-says")
            yield Label("File", classes="form-label")
            yield Input(str(self._default_path()), id="x-path", compact=True)
            yield Static("[dim]Written to a temporary file and renamed when complete.[/]", id="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel (esc)", id="cancel")
                yield Button("Export (ctrl+s)", id="go", variant="primary")

    def on_mount(self) -> None:
        calm_inputs(self)
        if self.view is not None:
            self.set_interval(REREAD_S, self._reread)

    def _reread(self) -> None:
        """Read the view beneath again: traffic, or anything else it drew, changes what an export writes."""
        view, was = self.read_view(), self.view
        if view is None or (was is not None and (view.name, view.label) == (was.name, was.label)):
            return
        renamed = was is None or view.name != was.name
        self.view = view
        if self.what != "view":
            return
        self._say()
        if renamed and not self._path_edited:
            self.query_one("#x-path", Input).value = str(self._default_path())
            self._path_edited = False

    def _default_path(self) -> Path:
        try:
            fmt_value = str(self.query_one("#x-format", Select).value)
        except Exception:  # not composed yet
            fmt_value = "csv"
        if self.what == "view" and self.view is not None:
            from axtui import locations

            return unused_path(locations.data_dir() / "exports" / export_file_name(self.view.name, fmt_value,
                                                                                   self.backend.clock.now()))
        return self.backend.default_export_path(self.what, fmt_value)

    def _says(self) -> str:
        """What the export will write: the view as the screen shows it, or a table of the store over the range."""
        if self.what == "view" and self.view is not None:
            return f"[dim]{escape(self.view.label)}\ntaken from the screen when you export[/]"
        label, back = RANGES[self.range_index]
        span = "ever recorded" if back is None else f"of the {label}"
        return f"[dim]{_STORE_SAYS.get(self.what, self.what).format(span=span)}\nread from the store when you export[/]"

    def _say(self) -> None:
        self.query_one("#x-says", Static).update(self._says())

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "x-what":
            self.what = str(event.value)
            self.query_one("#x-range", Select).disabled = self.what in _NO_RANGE
        if event.select.id == "x-range" and isinstance(event.value, int):
            self.range_index = event.value
        if event.select.id in ("x-what", "x-range"):
            self._say()
        if not self._path_edited and event.select.id in ("x-what", "x-format"):
            box = self.query_one("#x-path", Input)
            box.value = str(self._default_path())
            self._path_edited = False

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "x-path" and event.value != str(self._default_path()):
            self._path_edited = True

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_export()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "cancel":
            self.action_cancel()
        else:
            self.action_export()

    def action_cancel(self) -> None:
        """Close without exporting."""
        self.dismiss(None)

    def action_export(self) -> None:
        """Write the export in a worker."""
        if self._busy:
            return
        path_text = self.query_one("#x-path", Input).value.strip()
        if not path_text:
            self.query_one("#form-error", Static).update("[$error]Name a file to write to.[/]")
            return
        path = Path(path_text).expanduser()
        if path.is_dir():
            self.query_one("#form-error", Static).update(f"[$error]{path} is a folder; name a file in it.[/]")
            return
        if path.exists():
            # An export never replaces a file: the name offered gets a free one, a name typed is asked again.
            free = unused_path(path)
            box = self.query_one("#x-path", Input)
            edited = self._path_edited
            box.value = str(free)
            if edited:
                self.query_one("#form-error", Static).update(
                    f"[$warning]{escape(path.name)} exists and is kept.[/] ctrl+s writes {escape(free.name)}, "
                    "or name another file.")
                box.focus()
                return
            path = free
        fmt_value = str(self.query_one("#x-format", Select).value)
        if path.suffix.lstrip(".") in FORMATS:
            fmt_value = path.suffix.lstrip(".")  # a file named .json gets JSON, whatever the select says
        _, back = RANGES[self.range_index]
        now = self.backend.clock.now()
        since = None if back is None else now - back
        view = None
        if self.what == "view":
            # The view as the screen shows it now, not as it was when the dialog opened.
            view = self.read_view()
            if view is None:
                self.query_one("#form-error", Static).update(
                    "[$error]The screen shows nothing of its own to export now; choose what to export.[/]")
                return
            self.view = view
            self._say()
        self._busy = True
        self.query_one("#form-error", Static).update("[dim]exporting…[/]")
        self._export(self.what, fmt_value, path, since, view)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def _export(self, what: str, fmt_value: str, path: Path, since: float | None,
                view: ViewRows | None) -> ExportResult:
        if view is not None:
            return write_view(view, fmt_value, path)
        return self.backend.export(what, fmt_value, path, since, None)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "export":
            return
        if event.state == WorkerState.SUCCESS and isinstance(event.worker.result, ExportResult):
            result = event.worker.result
            self.app.notify(f"{fmt.counted(result.rows, 'row')} of {result.what} → {result.path}", title="Exported",
                            timeout=8, markup=False)
            self.dismiss(result)
        elif event.state == WorkerState.ERROR:
            self._busy = False
            error = event.worker.error
            message = str(getattr(error, "message", None) or error).replace("[", "\\[")
            self.query_one("#form-error", Static).update(f"[$error]Not exported: {message}[/]")
