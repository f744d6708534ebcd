"""Keeping a DataTable in step with fresh rows, cell by cell.

A table is never cleared and refilled: rows are matched by key, only
changed cells are written, new rows are added and gone rows removed, all in
one batch, so the cursor, the scroll position and the eye stay put. A cell
whose colours changed (a theme switch, a status turning red) is changed,
even when its text is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowKey

from axtui.tui.widgets.tables import FitTable, ellipsized

__all__ = ["move_to_row", "order_rows", "same_cell", "sync_table"]


def same_cell(old: Any, new: Any) -> bool:
    """Whether ``new`` would draw exactly as ``old``: for Rich text, the same characters *and* styles.

    `rich.text.Text` equality looks at the characters and the spans only, not the text's own style,
    so a row drawn in the old theme's colours would otherwise never be written again.
    """
    if isinstance(old, Text) and isinstance(new, Text):
        return (old.plain == new.plain and str(old.style) == str(new.style) and old.spans == new.spans
                and old.justify == new.justify and old.overflow == new.overflow)
    return bool(old == new)


def sync_table(table: DataTable[Any], rows: Mapping[str, Sequence[Any]], columns: Sequence[str]) -> bool:
    """Make ``table`` show ``rows`` (key -> cells in ``columns`` order), touching only what changed.

    Returns:
        Whether rows were added or removed (the caller may want to re-sort).
    """
    changed = False
    shown = {k.value for k in table.columns}
    if not set(columns) <= shown:
        # Columns a narrow terminal leaves out (a `FitTable`'s ``drop``) are not written.
        keep = [i for i, col in enumerate(columns) if col in shown]
        columns = [columns[i] for i in keep]
        rows = {key: [cells[i] for i in keep] for key, cells in rows.items()}
    # A FitTable keeps its cells as `ellipsized` makes them: compare like with like.
    drawn: Callable[[Any], Any] = ellipsized if isinstance(table, FitTable) else (lambda cell: cell)
    with table.app.batch_update():
        present = {k.value for k in table.rows if k.value is not None}
        for key, cells in rows.items():
            if key in present:
                for col, cell in zip(columns, cells, strict=True):
                    value = drawn(cell)
                    try:
                        if same_cell(table.get_cell(key, col), value):
                            continue
                    except CellDoesNotExist:
                        pass
                    table.update_cell(key, col, value)
            else:
                table.add_row(*cells, key=key)
                changed = True
        for gone in present - set(rows):
            table.remove_row(RowKey(gone))
            changed = True
    return changed


def move_to_row(table: DataTable[Any], matches: Callable[[str], bool]) -> bool:
    """Put the cursor on the first row whose key ``matches`` (the row just added); False when none does yet."""
    for index, row_key in enumerate(table.rows):
        if row_key.value is not None and matches(row_key.value):
            table.move_cursor(row=index, animate=False)
            return True
    return False


def order_rows(table: DataTable[Any], order: Sequence[str], column: str) -> None:
    """Put the rows in the order of their keys in ``order`` (rows not in it go last).

    ``column`` is any column of the table; its cells identify their rows.
    """
    position = {id(table.get_cell(key, column)): i for i, key in enumerate(order) if key in table.rows}
    last = len(order)
    table.sort(column, key=lambda cell: position.get(id(cell), last))
