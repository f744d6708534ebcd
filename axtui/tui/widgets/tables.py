"""Tables of the dashboard: a name column sized to the terminal, low-priority columns dropped when narrow."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

__all__ = ["HUGE", "NARROW", "VIM_KEYS", "EditableTable", "FitTable"]

#: Terminals narrower than this get the narrow layout.
NARROW = 110
#: Terminals at least this wide give name columns their widest.
HUGE = 160

#: Vim keys every table and log of the dashboard takes: j/k a row, g/G the first and last.
VIM_KEYS: list[Binding | tuple[str, str] | tuple[str, str, str]] = [
    Binding("j", "cursor_down", "Down", show=False),
    Binding("k", "cursor_up", "Up", show=False),
    Binding("g", "scroll_top", "First", show=False),
    Binding("G", "scroll_bottom", "Last", show=False),
]


class FitTable(DataTable[Any]):
    """A row-cursor table sized to the terminal.

    The name column (``squeeze``) has a set width: ``narrow`` on a narrow
    terminal, ``wide`` otherwise, ``huge`` (when given) on a very wide
    one; longer names end in … (the cells say ``overflow="ellipsis"``).
    The width never follows the content, so the header and the rows cannot
    disagree while rows come and go. The columns in ``drop`` are left out
    on a narrow terminal, so the rest fit; `axtui.tui.widgets.table_sync.sync_table`
    writes only the columns shown.

    Args:
        squeeze: (column key, narrow width, wide width[, huge width]), or None.
        drop: keys of the columns a narrow terminal goes without, least wanted first.
    """

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = VIM_KEYS

    @dataclass
    class Relaid(Message):
        """Columns were dropped or brought back: the rows must be written again."""

        table: FitTable

    def __init__(self, *, id: str, squeeze: tuple[int | str, ...] | None = None,
                 drop: Iterable[str] = ()) -> None:
        super().__init__(id=id, cursor_type="row")
        self.squeeze = squeeze
        self.drop = tuple(drop)
        #: Every column the table can show: (label, key, width), in order.
        self.spec: list[tuple[Any, str | None, int | None]] = []
        self._narrow: bool | None = None

    def add_column(self, label: Any, *, width: int | None = None, key: str | None = None,
                   default: Any = None) -> ColumnKey:
        if not any(k == key for _, k, _ in self.spec):
            self.spec.append((label, key, width))
        if self.squeeze is not None and key == self.squeeze[0] and width is None:
            width = int(self.squeeze[2])
        return super().add_column(label, width=width, key=key, default=default)

    def shown(self) -> list[str]:
        """The keys of the columns on screen now."""
        return [str(k.value) for k in self.columns]

    def on_resize(self) -> None:
        terminal = self.app.size.width
        narrow = terminal < NARROW
        if self.drop and narrow != self._narrow:
            self._relay(narrow)
        self._narrow = narrow
        if self.squeeze is None:
            return
        key, *widths = self.squeeze
        column = self.columns.get(ColumnKey(str(key)))
        if column is None:
            return
        width = int(widths[0] if narrow else widths[2] if len(widths) > 2 and terminal >= HUGE else widths[1])
        if column.width != width or column.auto_width:
            column.auto_width = False
            column.width = width
            self._require_update_dimensions = True
            self.refresh()

    def _relay(self, narrow: bool) -> None:
        wanted = [(label, key, width) for label, key, width in self.spec if not (narrow and key in self.drop)]
        if [k for _, k, _ in wanted] == self.shown():
            return
        self.clear(columns=True)
        for label, key, width in wanted:
            super().add_column(label, width=width, key=key)
        self.post_message(self.Relaid(self))


class EditableTable(FitTable):
    """A `FitTable` whose ``enter`` edits the row (the footer says so)."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("enter", "select_cursor", "Edit"),
    ]
