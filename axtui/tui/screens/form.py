"""A small modal form: fields checked as they are typed, saved in a worker.

Used to add budgets, rate limits and alert rules. Each field may have a
live check (a function returning a message, or None when fine); the save
function runs in a worker thread and may raise an `AxError` (or a
`ValueError`), whose message is shown in the form, which stays open with
what the user typed, so nothing is lost and nothing invalid is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from axtui.tui.widgets.calm import calm_inputs

__all__ = ["Field", "FormScreen"]

Check = Callable[[str], str | None]


@dataclass(slots=True)
class Field:
    """One field of a form.

    ``kind`` is ``text``, ``choice`` (``options``) or ``flag``.
    """

    name: str
    label: str
    kind: str = "text"
    value: Any = ""
    placeholder: str = ""
    options: Sequence[str] = ()
    check: Check | None = None
    help: str = ""
    required: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


class FormScreen(ModalScreen[Any]):
    """A titled form; dismisses with the save function's result, or None when cancelled.

    Args:
        title: the form's title.
        fields: the fields, in order.
        save: called in a worker thread with the values by name; returns the result or raises.
        submit_label: the save button's label.
    """

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(self, title: str, fields: Sequence[Field], save: Callable[[dict[str, Any]], Any], *,
                 submit_label: str = "Save") -> None:
        super().__init__()
        self.title_text = title
        self.fields = list(fields)
        self.save = save
        self.submit_label = submit_label
        self.saving = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form"):
            yield Static(f"[b]{self.title_text}[/]", classes="form-title")
            for f in self.fields:
                yield Label(f.label, classes="form-label")
                if f.kind == "choice":
                    yield Select([(o, o) for o in f.options], value=f.value or f.options[0], allow_blank=False,
                                 id=f"f-{f.name}", compact=True)
                elif f.kind == "flag":
                    yield Checkbox(f.help or f.label, value=bool(f.value), id=f"f-{f.name}", compact=True)
                else:
                    yield Input(value=str(f.value), placeholder=f.placeholder, id=f"f-{f.name}", compact=True)
                    yield Static(f.help, id=f"e-{f.name}", classes="form-help", markup=False)
            yield Static("", id="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel (esc)", id="cancel")
                yield Button(f"{self.submit_label} (ctrl+s)", id="save", variant="primary")

    def on_mount(self) -> None:
        calm_inputs(self)
        inputs = self.query(Input)
        if inputs:
            inputs.first().focus()

    def values(self) -> dict[str, Any]:
        """What the form holds now, by field name."""
        out: dict[str, Any] = {}
        for f in self.fields:
            widget = self.query_one(f"#f-{f.name}")
            out[f.name] = widget.value if isinstance(widget, (Checkbox, Select, Input)) else None
        return out

    def _check(self, f: Field, value: str) -> str | None:
        if not value.strip():
            return f"{f.label.lower()} is needed" if f.required else None
        return _run_check(f, value)

    def on_input_changed(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("f-")
        f = next((f for f in self.fields if f.name == name), None)
        if f is None:
            return
        message = _run_check(f, event.value) if event.value.strip() else None
        event.input.set_class(message is not None, "-invalid")
        help_line = self.query_one(f"#e-{name}", Static)
        help_line.set_class(message is not None, "-error")
        help_line.update(message or f.help)
        self.query_one("#form-error", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "cancel":
            self.action_cancel()
        else:
            self.action_save()

    def action_cancel(self) -> None:
        """Close without saving."""
        self.dismiss(None)

    def action_save(self) -> None:
        """Check every field, then save in a worker."""
        if self.saving:
            return
        values = self.values()
        for f in self.fields:
            if f.kind != "text":
                continue
            message = self._check(f, str(values[f.name]))
            if message is not None:
                self.query_one("#form-error", Static).update(f"[$error]{f.label}: {message}[/]")
                self.query_one(f"#f-{f.name}", Input).focus()
                return
        self.saving = True
        self.query_one("#form-error", Static).update("[dim]saving…[/]")
        self._save(values)

    @work(thread=True, exclusive=True, group="form-save", exit_on_error=False)
    def _save(self, values: dict[str, Any]) -> Any:
        return self.save(values)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "form-save":
            return
        if event.state == WorkerState.SUCCESS:
            self.dismiss(event.worker.result)
        elif event.state == WorkerState.ERROR:
            self.saving = False
            error = event.worker.error
            message = getattr(error, "message", None) or str(error)
            self.query_one("#form-error", Static).update(f"[$error]Not saved: {_escape(message)}[/]")


def _run_check(f: Field, value: str) -> str | None:
    """The field's live check; a check that breaks says so instead of closing the dashboard."""
    if f.check is None:
        return None
    try:
        return f.check(value)
    except Exception as exc:  # a bug in a check must not take the form down
        return f"cannot check this value: {exc}"


def _escape(text: str) -> str:
    return text.replace("[", "\\[")
