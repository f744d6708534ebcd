"""``x``: export what the screen shows, with the headless exporter (`ax monitor export`)."""

from __future__ import annotations

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

__all__ = ["RANGES", "ExportScreen"]

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


class ExportScreen(ModalScreen[ExportResult | None]):
    """Choose what, the format, the range and the file; dismisses with the `ExportResult`."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "export", "Export"),
    ]
    AUTO_FOCUS = "#x-path"

    def __init__(self, backend: Backend, what: str = "calls", view: ViewRows | None = None) -> None:
        super().__init__()
        self.backend = backend
        #: What the screen beneath shows, offered first (and chosen) when there is one.
        self.view = view
        self.what = "view" if view is not None else what if what in WHATS else "calls"
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
                    yield Select([(label, i) for i, (label, _) in enumerate(RANGES)], value=1, allow_blank=False,
                                 id="x-range", compact=True, disabled=self.what == "view")
            yield Static(self._says(), id="x-says")
            yield Label("File", classes="form-label")
            yield Input(str(self._default_path()), id="x-path", compact=True)
            yield Static("[dim]Written to a temporary file and renamed when complete.[/]", id="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel (esc)", id="cancel")
                yield Button("Export (ctrl+s)", id="go", variant="primary")

    def on_mount(self) -> None:
        calm_inputs(self)

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
        if self.what == "view" and self.view is not None:
            return f"[dim]{escape(self.view.label)}[/]"
        return f"[dim]every {self.what} row of the range, from the store[/]"

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "x-what":
            self.what = str(event.value)
            self.query_one("#x-range", Select).disabled = self.what == "view"
            self.query_one("#x-says", Static).update(self._says())
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
        chosen = self.query_one("#x-range", Select).value
        _, back = RANGES[chosen if isinstance(chosen, int) else 1]
        now = self.backend.clock.now()
        since = None if back is None else now - back
        self._busy = True
        self.query_one("#form-error", Static).update("[dim]exporting…[/]")
        self._export(self.what, fmt_value, path, since)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def _export(self, what: str, fmt_value: str, path: Path, since: float | None) -> ExportResult:
        if what == "view" and self.view is not None:
            return write_view(self.view, fmt_value, path)
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
