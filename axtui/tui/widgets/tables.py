"""Tables of the dashboard: every column that fits the table's width, cut text ending in ….

`fit_columns` is the pure rule (which columns, how wide); `FitTable` applies
it whenever its width changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding
from textual.events import Resize
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import CellType, ColumnKey, RowKey

from axtui.tui.widgets.palette import Palette

__all__ = ["HUGE", "NARROW", "VIM_KEYS", "EditableTable", "FitTable", "ellipsized", "fit_columns"]

#: Terminals narrower than this get the narrow layout.
NARROW = 110
#: Terminals at least this wide give name columns their widest.
HUGE = 160
#: Columns are never squeezed below this many characters, whatever the room.
FLOOR = 3

#: Vim keys every table and log of the dashboard takes: j/k a row, g/G the first and last.
VIM_KEYS: list[Binding | tuple[str, str] | tuple[str, str, str]] = [
    Binding("j", "cursor_down", "Down", show=False),
    Binding("k", "cursor_up", "Up", show=False),
    Binding("g", "scroll_top", "First", show=False),
    Binding("G", "scroll_bottom", "Last", show=False),
]


def fit_columns(columns: Sequence[tuple[str, int, int]], room: int, drop: Sequence[str] = (),
                padding: int = 1) -> dict[str, int]:
    """Which columns to show in ``room`` characters, and how wide.

    Columns in ``drop`` are left out, least wanted first, only while the
    others cannot fit at their least widths: a column that fits is kept.
    The room left over widens the stretchy columns (least < most) left to
    right, each up to its most. When even that does not fit, the stretchy
    columns shrink below their least, right to left (down to `FLOOR`), so
    text is cut inside a cell, with …, rather than at the screen's edge.

    Args:
        columns: (key, least width, most width) in order; fixed columns have least == most.
        room: the characters available for the whole row.
        drop: keys of the columns that may be left out, least wanted first.
        padding: the cell padding on each side of every column.

    Returns:
        The width of every column shown, by key, in order.
    """
    kept = list(columns)

    def need(cols: Sequence[tuple[str, int, int]]) -> int:
        return sum(least + 2 * padding for _, least, _ in cols)

    for key in drop:
        if need(kept) <= room:
            break
        kept = [c for c in kept if c[0] != key]
    widths = {key: least for key, least, _ in kept}
    spare = room - need(kept)
    for key, least, most in kept:
        grow = max(0, min(most - least, spare))
        widths[key] += grow
        spare -= grow
    for key, least, most in reversed(kept):
        if spare >= 0:
            break
        if least < most:
            cut = min(-spare, max(0, widths[key] - FLOOR))
            widths[key] -= cut
            spare += cut
    return widths


def ellipsized(cell: Any) -> Any:
    """``cell`` as a table draws it, but ending in … when its column is too narrow (not silently cut)."""
    if isinstance(cell, str):
        cell = Text.from_markup(cell, end="")  # what DataTable makes of a string
    elif isinstance(cell, Text) and cell.overflow is None:
        cell = cell.copy()
    else:
        return cell
    cell.overflow = "ellipsis"
    return cell


class FitTable(DataTable[Any]):
    """A row-cursor table that fits its width: no column runs off the edge.

    Every column has a set width (the content never changes it, so the
    header and the rows cannot disagree while rows come and go). At each
    resize `fit_columns` chooses the columns and their widths: the name
    column (``squeeze``) is ``narrow`` wide at least and grows to ``wide``
    (``huge`` on a very wide terminal) when there is room; the ``flex``
    columns take what room is left up to their full width; columns in
    ``drop`` are left out only when the rest cannot fit otherwise. Cut
    text ends in … (`ellipsized`). `axtui.tui.widgets.table_sync.sync_table`
    writes only the columns shown.

    Args:
        squeeze: (column key, narrow width, wide width[, huge width]), or None.
        drop: keys of the columns a narrow table goes without, least wanted first.
        flex: (column key, least width) of long text columns that give up room before a column is dropped.
    """

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = VIM_KEYS

    #: What the table says on its first line while it has no rows: why, or how to add one. The screen sets
    #: it once it has data, so a table still loading says nothing.
    empty: reactive[str] = reactive("", layout=True)

    @dataclass
    class Relaid(Message):
        """Columns were dropped or brought back: the rows must be written again."""

        table: FitTable

    def __init__(self, *, id: str, squeeze: tuple[int | str, ...] | None = None,
                 drop: Iterable[str] = (), flex: Iterable[tuple[str, int]] = ()) -> None:
        super().__init__(id=id, cursor_type="row")
        self.squeeze = squeeze
        self.drop = tuple(drop)
        self.flex = dict(flex)
        #: Every column the table can show: (label, key, width), in order.
        self.spec: list[tuple[Any, str | None, int | None]] = []

    def add_column(self, label: Any, *, width: int | None = None, key: str | None = None,
                   default: Any = None) -> ColumnKey:
        if not any(k == key for _, k, _ in self.spec):
            self.spec.append((label, key, width))
        if self.squeeze is not None and key == self.squeeze[0] and width is None:
            width = int(self.squeeze[2])
        return super().add_column(label, width=width, key=key, default=default)

    def add_row(self, *cells: CellType, height: int | None = 1, key: str | None = None,
                label: Any = None) -> RowKey:
        self._justify_labels(cells)
        return super().add_row(*(ellipsized(c) for c in cells), height=height, key=key, label=label)

    def _justify_labels(self, cells: Sequence[Any]) -> None:
        """Right-align the label of a column whose cells are right-aligned: a heading sits over its figures."""
        changed = False
        for column, cell in zip(self.ordered_columns, cells, strict=False):
            if not isinstance(cell, Text) or cell.justify != "right" or column.label.justify == "right":
                continue
            label = column.label.copy()
            label.justify = "right"
            column.label = label
            changed = True
        if changed:
            self._clear_caches()
            self.refresh()

    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: CellType, *,
                    update_width: bool = False) -> None:
        super().update_cell(row_key, column_key, ellipsized(value), update_width=update_width)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        height = super().get_content_height(container, viewport, width)
        return height + 1 if self.empty and not self.row_count else height

    def render_line(self, y: int) -> Strip:
        header = self.header_height if self.show_header else 0
        if y != header or not self.empty or self.row_count:
            return super().render_line(y)
        width = self.size.width
        note = Text(" " + self.empty, style=Palette.of(self.app).muted, no_wrap=True, overflow="ellipsis")
        note.truncate(width, overflow="ellipsis")
        style = self.rich_style
        return Strip(list(note.render(self.app.console, end=""))).apply_style(style).crop_extend(0, width, style)

    def shown(self) -> list[str]:
        """The keys of the columns on screen now."""
        return [str(k.value) for k in self.columns]

    def bounds(self, terminal: int) -> list[tuple[str, int, int]]:
        """(key, least width, most width) of every column, on a terminal ``terminal`` columns wide."""
        out = []
        for label, key, width in self.spec:
            name = str(key)
            least = most = width or len(str(label))
            if self.squeeze is not None and name == str(self.squeeze[0]):
                narrow, *wider = (int(w) for w in self.squeeze[1:])
                least = narrow
                most = wider[1] if len(wider) > 1 and terminal >= HUGE else wider[0] if wider else narrow
            elif name in self.flex:
                least = min(self.flex[name], most)
            out.append((name, least, most))
        return out

    def room(self) -> int:
        """The characters a row may take: the table's width, less the vertical scrollbar's."""
        return self.size.width - self.styles.scrollbar_size_vertical

    def on_resize(self, event: Resize) -> None:
        self.fit()

    def fit(self) -> None:
        """Show the columns that fit the table's width now, at the widths that fit."""
        if self.size.width <= 0:
            return
        widths = fit_columns(self.bounds(self.app.size.width), self.room(), self.drop, self.cell_padding)
        if list(widths) != self.shown():
            labels = {str(key): label for label, key, _ in self.spec}
            self.clear(columns=True)
            for key, width in widths.items():
                super().add_column(labels[key], width=width, key=key)
            self.post_message(self.Relaid(self))
            return
        changed = False
        for key, width in widths.items():
            column = self.columns[ColumnKey(key)]
            if column.width != width or column.auto_width:
                column.auto_width = False
                column.width = width
                changed = True
        if changed:
            self._require_update_dimensions = True
            self._clear_caches()
            self.refresh()


class EditableTable(FitTable):
    """A `FitTable` whose ``enter`` edits the row (the footer says so)."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("enter", "select_cursor", "Edit"),
    ]
