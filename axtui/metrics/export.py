"""Exports: calls, costs, alert events and budgets as CSV, JSON or JSON Lines.

Rows are streamed from the database to the output in chunks, so memory
stays flat whatever the size (1M calls export in well under 150 MB). CSV
follows RFC 4180 (a header row, CRLF line ends, fields quoted when they
hold a comma, quote or line break); ``json`` is one valid JSON array,
written element by element; ``jsonl`` is one object per line. Timestamps
are UTC ISO-8601 with microseconds (``2026-11-01T09:30:00.123456Z``).
Money is an exact decimal string of dollars (``0.000123``), empty (CSV) or
null (JSON) when the price is unknown. With a path, the export is written
to a temporary file beside it and renamed when complete, so an interrupted
export never leaves a half file.

The columns of each kind are `COLUMNS` (stable; documented in the README):
new columns may be added at the end, none is renamed or removed.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from sqlalchemy.engine import Connection

from axtui.errors import InvalidRequest
from axtui.metrics.export_rows import (
    ALERT_COLUMNS,
    BUDGET_COLUMNS,
    CALL_COLUMNS,
    COST_COLUMNS,
    alert_rows,
    budget_rows,
    call_rows,
    cost_rows,
)
from axtui.store import Store

__all__ = ["COLUMNS", "FORMATS", "WHATS", "ExportQuery", "check", "export", "export_to_path"]

Format = Literal["csv", "json", "jsonl"]
What = Literal["calls", "costs", "alerts", "budgets"]
FORMATS: tuple[Format, ...] = ("csv", "json", "jsonl")
WHATS: tuple[What, ...] = ("calls", "costs", "alerts", "budgets")

#: Column names of each export, in order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "calls": CALL_COLUMNS,
    "costs": COST_COLUMNS,
    "alerts": ALERT_COLUMNS,
    "budgets": BUDGET_COLUMNS,
}


@dataclass(slots=True, frozen=True)
class ExportQuery:
    """What to export.

    Attributes:
        what: ``calls``, ``costs`` (hourly spend per provider and model, or
            per provider for one ``user``), ``alerts`` (alert rule events and
            budget threshold events) or ``budgets`` (each budget with its
            spend in the current period).
        since: epoch seconds, inclusive (None: from the start).
        until: epoch seconds, exclusive (None: until now).
        provider: only this provider (for budgets: provider-scoped budgets).
        user: only this user (for budgets: user-scoped budgets).
        now: the time budgets are measured at (None: the current time).
        tz: the time zone of budget periods (``settings.budgets.timezone``).
    """

    what: What = "calls"
    since: float | None = None
    until: float | None = None
    provider: str | None = None
    user: str | None = None
    now: float | None = None
    tz: str = "UTC"


def _rows(conn: Connection, store: Store, q: ExportQuery) -> Iterator[list[Any]]:
    if q.what == "calls":
        return call_rows(conn, q.since, q.until, q.provider, q.user)
    if q.what == "costs":
        return cost_rows(conn, q.since, q.until, q.provider, q.user)
    if q.what == "alerts":
        return alert_rows(conn, q.since, q.until, q.provider, q.user)
    return budget_rows(store, q.provider, q.user, time.time() if q.now is None else q.now, q.tz)


def export(store: Store, out: TextIO, fmt: str, query: ExportQuery) -> int:
    """Stream the rows of ``query`` to ``out`` in ``fmt``; returns the number of rows.

    Raises:
        InvalidRequest: an unknown format or kind, or ``since`` after ``until``.
    """
    check(fmt, query)
    columns = COLUMNS[query.what]
    with store.connect() as conn:
        rows = _rows(conn, store, query)
        if fmt == "csv":
            return _write_csv(out, columns, rows)
        return _write_json(out, columns, rows, lines=fmt == "jsonl")


def check(fmt: str, query: ExportQuery) -> None:
    """Refuse an export that cannot be made, before anything is written.

    Raises:
        InvalidRequest: an unknown format or kind, or ``since`` after ``until``.
    """
    if fmt not in FORMATS:
        raise InvalidRequest(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}", param="format")
    if query.what not in WHATS:
        raise InvalidRequest(f"cannot export {query.what!r}; choose one of {', '.join(WHATS)}", param="what")
    if query.since is not None and query.until is not None and query.since >= query.until:
        raise InvalidRequest("--since must be before --until; nothing lies between them", param="since")


#: Columns holding booleans, written ``true``/``false`` in CSV (JSON has its own).
_BOOL_COLUMNS = frozenset({"usage_estimated", "stream", "hard"})
#: Columns holding objects, written as JSON text in CSV (empty when empty) and as objects in JSON.
_OBJECT_COLUMNS = frozenset({"labels"})


def _write_csv(out: TextIO, columns: tuple[str, ...], rows: Iterator[list[Any]]) -> int:
    # The csv module writes None as an empty field itself; only booleans need
    # converting, so cells are not touched one by one (a million rows × 33 columns).
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    bools = [i for i, c in enumerate(columns) if c in _BOOL_COLUMNS]
    objects = [i for i, c in enumerate(columns) if c in _OBJECT_COLUMNS]
    n = 0
    chunk: list[list[Any]] = []
    for row in rows:
        for i in bools:
            v = row[i]
            if v is not None:
                row[i] = "true" if v else "false"
        for i in objects:
            row[i] = json.dumps(row[i], sort_keys=True) if row[i] else ""
        chunk.append(row)
        if len(chunk) >= 2000:
            writer.writerows(chunk)
            n += len(chunk)
            chunk.clear()
    writer.writerows(chunk)
    return n + len(chunk)


def _write_json(out: TextIO, columns: tuple[str, ...], rows: Iterator[list[Any]], *, lines: bool) -> int:
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
    n = 0
    if not lines:
        out.write("[")
    buf: list[str] = []
    for row in rows:
        text = encode(dict(zip(columns, row, strict=True)))
        if lines:
            buf.append(text + "\n")
        else:
            buf.append(("\n" if n == 0 else ",\n") + text)
        n += 1
        if len(buf) >= 2000:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))
    if not lines:
        out.write("\n]\n" if n else "]\n")
    return n


def export_to_path(store: Store, path: Path | str, fmt: str, query: ExportQuery) -> int:
    """Export to ``path`` atomically: a temporary file beside it, renamed when complete.

    Raises:
        InvalidRequest: bad arguments, or the file cannot be written (the
            folder is missing or read-only, the disk is full); an existing
            file at ``path`` is then left as it was.
    """
    path = Path(path).expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidRequest(
            f"cannot write {path}: the folder {folder} does not exist; create it first", param="output"
        )
    if path.is_dir():
        raise InvalidRequest(f"cannot write {path}: it is a folder; give a file name", param="output")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=folder)
    except OSError as exc:
        raise InvalidRequest(f"cannot write in {folder}: {exc.strerror}; choose another path", param="output") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            n = export(store, out, fmt, query)
            out.flush()
            os.fsync(out.fileno())
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # a full disk, a file that vanished: say so, no traceback
            raise InvalidRequest(f"cannot write {path}: {exc.strerror or exc}; nothing was written") from None
        raise
    return n
