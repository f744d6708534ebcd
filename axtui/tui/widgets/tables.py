"""Tables of the dashboard: a name column of fixed width, narrower on narrow terminals."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

__all__ = ["NARROW", "VIM_KEYS", "EditableTable", "FitTable"]

#: Terminals narrower than this get the narrow layout.
NARROW = 110


#: Vim keys every table and log of the dashboard takes: j/k a row, g/G the first and last.
VIM_KEYS: list[Binding | tuple[str, str] | tuple[str, str, str]] = [
    Binding("j", "cursor_down", "Down", show=False),
    Binding("k", "cursor_up", "Up", show=False),
    Binding("g", "scroll_top", "First", show=False),
    Binding("G", "scroll_bottom", "Last", show=False),
]


class FitTable(DataTable[Any]):
    """A row-cursor table whose name column has a set width: ``wide``, or ``narrow`` on a narrow terminal.

    Longer names end in … (the cells say ``overflow="ellipsis"``). The width
    never follows the content, so the header and the rows cannot disagree
    while rows come and go.

    Args:
        squeeze: (column key, width on a narrow terminal, width otherwise), or None.
    """

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = VIM_KEYS

    def __init__(self, *, id: str, squeeze: tuple[str, int, int] | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self.squeeze = squeeze

    def add_column(self, label: Any, *, width: int | None = None, key: str | None = None,
                   default: Any = None) -> ColumnKey:
        if self.squeeze is not None and key == self.squeeze[0] and width is None:
            width = self.squeeze[2]
        return super().add_column(label, width=width, key=key, default=default)

    def on_resize(self) -> None:
        if self.squeeze is None:
            return
        key, narrow, wide = self.squeeze
        column = self.columns.get(ColumnKey(key))
        if column is None:
            return
        width = narrow if self.app.size.width < NARROW else wide
        if column.width != width or column.auto_width:
            column.auto_width = False
            column.width = width
            self._require_update_dimensions = True
            self.refresh()


class EditableTable(FitTable):
    """A `FitTable` whose ``enter`` edits the row (the footer says so)."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("enter", "select_cursor", "Edit"),
    ]
