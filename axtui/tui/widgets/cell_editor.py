"""Editing one cell of a table where it stands.

`CellEditor` is an input laid over a `DataTable` cell (the screen's
overlay layer), prefilled with the cell's value. It checks what is typed as
it is typed (a ``validate`` function), posts `CellEditor.Accepted` on
enter and `CellEditor.Cancelled` on escape; the screen saves, and closes
the editor only when the save worked, so a refused value stays in front of
the user with the reason beside it, and the table keeps the old value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from textual.binding import Binding
from textual.geometry import Offset
from textual.message import Message
from textual.widgets import DataTable, Input

from axtui.tui.widgets.calm import calm_inputs

__all__ = ["CellEditor", "cell_offset"]

Validate = Callable[[str], str | None]


def cell_offset(table: DataTable[Any], row: int, column_key: str) -> tuple[Offset, int]:
    """Where a cell is on the screen (top-left) and how wide it is."""
    x = 0
    width = 0
    for column in table.ordered_columns:
        w = column.get_render_width(table)
        if column.key.value == column_key:
            width = w
            break
        x += w
    y = (table.header_height if table.show_header else 0) + row
    region = table.content_region
    return Offset(region.x + x - int(table.scroll_x), region.y + y - int(table.scroll_y)), width


class CellEditor(Input):
    """An input over a table cell; see the module docstring.

    Args:
        table: the table whose cell is edited.
        row_key: the row's key.
        column_key: the column's key.
        value: the text to start from.
        validate: returns a message when the text is not acceptable, else None.
        purpose: what is edited, for messages (``budget #3 amount``).
    """

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "cancel", "Cancel", show=True),
    ]

    @dataclass
    class Accepted(Message):
        """Enter pressed on a value that passed the live check."""

        editor: CellEditor
        row_key: str
        column_key: str
        value: str

    @dataclass
    class Cancelled(Message):
        """Escape pressed: nothing is saved."""

        editor: CellEditor
        row_key: str

    @dataclass
    class Problem(Message):
        """The live check's verdict changed: a message, or None when the text is fine."""

        editor: CellEditor
        message: str | None

    def __init__(
        self,
        table: DataTable[Any],
        row_key: str,
        column_key: str,
        value: str,
        *,
        validate: Validate | None = None,
        purpose: str = "",
        min_width: int = 14,
    ) -> None:
        super().__init__(value=value, id="cell-editor", select_on_focus=True)
        self.table = table
        self.row_key = row_key
        self.column_key = column_key
        self.check = validate
        self.purpose = purpose
        self.min_width = min_width
        self.problem: str | None = None

    def on_mount(self) -> None:
        calm_inputs(self)
        self.place()
        self.focus()

    def place(self) -> None:
        """Put the editor over its cell (after a scroll or a resize)."""
        table = self.table
        try:
            row = table.get_row_index(self.row_key)
        except Exception:  # the row went away: nothing left to edit
            self.post_message(self.Cancelled(self, self.row_key))
            return
        offset, width = cell_offset(table, row, self.column_key)
        self.styles.offset = (offset.x, offset.y)
        self.styles.width = max(width, self.min_width)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        message = self.check(event.value) if self.check is not None else None
        self.set_class(message is not None, "-invalid")
        if message != self.problem:
            self.problem = message
            self.post_message(self.Problem(self, message))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        message = self.check(event.value) if self.check is not None else None
        if message is not None:
            self.problem = message
            self.add_class("-invalid")
            self.post_message(self.Problem(self, message))
            return
        self.post_message(self.Accepted(self, self.row_key, self.column_key, event.value))

    def action_cancel(self) -> None:
        """Leave the cell as it was."""
        self.post_message(self.Cancelled(self, self.row_key))
