"""Exports: calls, costs, alert events, budgets and the audit trail as CSV, JSON or JSON Lines.

Rows are streamed from the database to the output in chunks, so memory
stays flat whatever the size (1M calls export in well under 150 MB). CSV
follows RFC 4180 (a header row, CRLF line ends, fields quoted when they
hold a comma, quote or line break); ``json`` is one valid JSON array,
written element by element; ``jsonl`` is one object per line. Timestamps
are UTC ISO-8601 with microseconds (``2026-11-01T09:30:00.123456Z``).
Money is an exact decimal string of dollars (``0.000123``), empty (CSV) or
null (JSON) when the price is unknown. A CSV cell that a spreadsheet
would run as a formula (one starting with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return, and not a plain number) is written with a leading
``'`` (OWASP's CSV injection advice): user names and tags come from callers.

With a path to a regular file (or none yet), the export is written to a
temporary file beside it and renamed when complete, so an interrupted
export never leaves a half file; a new file is readable by its owner only,
an existing one keeps its mode, and a symlink stays a symlink. A device, a
pipe, a socket, or anything under /dev or /proc (``/dev/stdout``) is
written in place, never replaced.

The columns of each kind are `COLUMNS` (stable; documented in the README):
new columns may be added at the end, none is renamed or removed.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from sqlalchemy.engine import Connection

from axtui.errors import InvalidRequest
from axtui.metrics.export_rows import (
    ALERT_COLUMNS,
    AUDIT_COLUMNS,
    BUDGET_COLUMNS,
    CALL_COLUMNS,
    COST_COLUMNS,
    alert_rows,
    audit_rows,
    budget_rows,
    call_rows,
    cost_rows,
)
from axtui.store import Store

__all__ = ["COLUMNS", "FORMATS", "WHATS", "ExportQuery", "check", "defuse_cell", "export", "export_to_path", "write_rows"]

Format = Literal["csv", "json", "jsonl"]
What = Literal["calls", "costs", "alerts", "budgets", "audit"]
FORMATS: tuple[Format, ...] = ("csv", "json", "jsonl")
WHATS: tuple[What, ...] = ("calls", "costs", "alerts", "budgets", "audit")

#: Column names of each export, in order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "calls": CALL_COLUMNS,
    "costs": COST_COLUMNS,
    "alerts": ALERT_COLUMNS,
    "budgets": BUDGET_COLUMNS,
    "audit": AUDIT_COLUMNS,
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
    if q.what == "audit":
        return audit_rows(conn, q.since, q.until)
    return budget_rows(store, q.provider, q.user, time.time() if q.now is None else q.now, q.tz)


def export(store: Store, out: TextIO, fmt: str, query: ExportQuery) -> int:
    """Stream the rows of ``query`` to ``out`` in ``fmt``; returns the number of rows.

    Raises:
        InvalidRequest: an unknown format or kind, or ``since`` after ``until``.
    """
    check(fmt, query)
    with store.connect() as conn:
        return write_rows(out, fmt, COLUMNS[query.what], _rows(conn, store, query))


def write_rows(out: TextIO, fmt: str, columns: tuple[str, ...], rows: Iterable[list[Any]]) -> int:
    """Write ``rows`` (fresh lists in ``columns`` order; they may be changed) to ``out`` as ``fmt``.

    The one writer of every export, the store's and the dashboard's views alike: CSV
    with CRLF line ends and defused formulas, JSON as one array, JSON Lines.
    Returns the number of rows.

    Raises:
        InvalidRequest: an unknown format.
    """
    if fmt not in FORMATS:
        raise InvalidRequest(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}", param="format")
    if fmt == "csv":
        return _write_csv(out, columns, iter(rows))
    return _write_json(out, columns, iter(rows), lines=fmt == "jsonl")


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
#: Columns holding objects, written as JSON text in CSV (empty when empty or none) and as objects in JSON.
_OBJECT_COLUMNS = frozenset({"labels", "before", "after"})


#: Columns ax fills with numbers or times it formats itself: never a formula, not checked cell by cell.
_OWN_COLUMNS = frozenset({
    "ts", "period_start", "period_end", "http_status", "latency_ms", "ttft_ms", "input_tokens", "cached_input_tokens",
    "cache_write_tokens", "output_tokens", "reasoning_tokens", "similarity", "attempts", "calls", "errors", "refused",
    "priced_calls", "unknown_price_calls", "cache_hits", "id", "rule_id", "value", "threshold", "used_pct",
})  # fmt: skip
#: What a spreadsheet takes for the start of a formula.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def defuse_cell(value: str) -> str:
    """``value`` as a CSV cell no spreadsheet runs as a formula (a leading ``'`` when needed)."""
    if value.startswith(_FORMULA) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _write_csv(out: TextIO, columns: tuple[str, ...], rows: Iterator[list[Any]]) -> int:
    # The csv module writes None as an empty field itself; only booleans and
    # text that starts like a formula need converting.
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    bools = [i for i, c in enumerate(columns) if c in _BOOL_COLUMNS]
    texts = [i for i, c in enumerate(columns) if c not in _BOOL_COLUMNS and c not in _OWN_COLUMNS]
    objects = [i for i, c in enumerate(columns) if c in _OBJECT_COLUMNS]
    n = 0
    chunk: list[list[Any]] = []
    for row in rows:
        for i in bools:
            v = row[i]
            if v is not None:
                row[i] = "true" if v else "false"
        for i in texts:
            v = row[i]
            if v.__class__ is str and v.startswith(_FORMULA):
                row[i] = defuse_cell(v)
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


def _in_place(path: Path) -> bool:
    """Whether ``path`` must be written into rather than replaced (a device, a pipe, /dev/stdout …)."""
    real = os.path.realpath(path)
    if str(path).startswith(("/dev/", "/proc/")) or real.startswith(("/dev/", "/proc/")):
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


def export_to_path(store: Store, path: Path | str, fmt: str, query: ExportQuery) -> int:
    """Export to ``path``: atomically to a regular file, in place to a device or a pipe.

    A regular file is written as a temporary file beside it, renamed when
    complete (through a symlink: its target). Anything else (``/dev/null``,
    ``/dev/stdout``, a named pipe) is opened and written into, never replaced.

    Raises:
        InvalidRequest: bad arguments, or the file cannot be written (the
            folder is missing or read-only, the disk is full); an existing
            file at ``path`` is then left as it was.
    """
    check(fmt, query)
    path = Path(path).expanduser()
    if path.is_dir():
        raise InvalidRequest(f"cannot write {path}: it is a folder; give a file name", param="output")
    if _in_place(path):
        return _export_in_place(store, path, fmt, query)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidRequest(
            f"cannot write {path}: the folder {folder} does not exist; create it first", param="output"
        )
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o600  # calls, users and spend: the owner's
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=folder)
    except OSError as exc:
        raise InvalidRequest(f"cannot write in {folder}: {exc.strerror}; choose another path", param="output") from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            n = export(store, out, fmt, query)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # a full disk, a file that vanished: say so, no traceback
            raise InvalidRequest(f"cannot write {path}: {exc.strerror or exc}; nothing was written") from None
        raise
    return n


def _export_in_place(store: Store, path: Path, fmt: str, query: ExportQuery) -> int:
    try:
        # Append, never truncate: /dev/stdout may be a file the shell opened with >>.
        with open(path, "a", encoding="utf-8", newline="") as out:
            n = export(store, out, fmt, query)
            out.flush()
    except OSError as exc:
        raise InvalidRequest(f"cannot write {path}: {exc.strerror or exc}", param="output") from None
    return n
