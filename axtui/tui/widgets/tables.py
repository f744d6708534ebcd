"""Tables of the dashboard: a name column that gives way on narrow terminals."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding
from textual.widgets import DataTable

__all__ = ["NARROW", "EditableTable", "FitTable"]

#: Terminals narrower than this get the narrow layout.
NARROW = 110


class FitTable(DataTable[Any]):
    """A row-cursor table whose name column is capped on a narrow terminal (longer names end in …).

    Args:
        squeeze: (column key, width on a narrow terminal), or None to never cap.
    """

    def __init__(self, *, id: str, squeeze: tuple[str, int] | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self.squeeze = squeeze

    def on_resize(self) -> None:
        if self.squeeze is None:
            return
        key, width = self.squeeze
        column = self.columns.get(key)  # type: ignore[call-overload]
        if column is None:
            return
        narrow = self.app.size.width < NARROW
        if narrow and (column.auto_width or column.width != width):
            column.auto_width = False
            column.width = width
            self._require_update_dimensions = True
            self.refresh()
        elif not narrow and not column.auto_width:
            column.auto_width = True
            self._require_update_dimensions = True
            self.refresh()


class EditableTable(FitTable):
    """A `FitTable` whose ``enter`` edits the row (the footer says so)."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("enter", "select_cursor", "Edit"),
    ]
