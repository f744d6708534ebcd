"""Exporting what a screen shows: the filtered call log, the cost breakdown of the range and grouping on screen.

`ax monitor export` (and the dialog's other choices) write whole tables
from the store; a view is smaller and already on screen, so it is written
here from the rows the screen drew, by the same writer
(`axtui.metrics.export.write_rows`: the same three formats, the same CSV
and JSON conventions), to a temporary file renamed when complete. The calls
of a filtered log are ``ax monitor export`` rows (`CALL_COLUMNS`, UTC
ISO-8601 times), so one format serves both.
"""

from __future__ import annotations

import re
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from axtui import locations
from axtui.errors import InvalidRequest
from axtui.metrics.export import FORMATS, write_rows
from axtui.metrics.export_rows import call_row
from axtui.metrics.snapshot import RecentCall
from axtui.money import usd_to_nanos
from axtui.tui.views import ExportResult

__all__ = ["ViewRows", "export_file_name", "live_call_row", "unused_path", "write_view"]

Rows = Sequence[Sequence[Any]]


@dataclass(frozen=True, slots=True)
class ViewRows:
    """What a screen shows, as a table to export.

    Attributes:
        name: a few words for the file name (``calls user=alice``, ``costs by user 1h``).
        label: what the dialog says will be written.
        columns: the column names.
        rows: the rows, each in ``columns`` order; or a function that reads them (it may block:
            the export runs it in a worker thread).
    """

    name: str
    label: str
    columns: tuple[str, ...]
    rows: Rows | Callable[[], Rows]


def live_call_row(call: RecentCall) -> list[Any]:
    """A line of the live log as an ``ax monitor export`` row; what the log does not carry is empty."""
    return call_row({
        "ts": call.ts, "request_id": call.request_id or None, "user": call.user,
        "requested_model": call.requested_model, "provider": call.provider, "model": call.model,
        "deployment": call.deployment, "status": call.status, "error_class": call.error_class,
        "latency_ms": call.latency_ms, "ttft_ms": call.ttft_ms, "input_tokens": call.input_tokens,
        "output_tokens": call.output_tokens, "cache": call.cache,
        "cost_nanos": None if call.cost_usd is None else usd_to_nanos(call.cost_usd),
    })  # fmt: skip


def export_file_name(name: str, fmt: str, now: float) -> str:
    """A file name a person can read: ``ax-costs-by-user-1h-2025-06-15-1506.csv``.

    Characters a shell or a file system would trip over become dashes.
    """
    slug = re.sub(r"[^A-Za-z0-9=._-]+", "-", name).strip("-").lower() or "export"
    stamp = time.strftime("%Y-%m-%d-%H%M", time.localtime(now))
    return f"ax-{slug[:60]}-{stamp}.{fmt}"


def unused_path(path: Path) -> Path:
    """``path`` if nothing is there yet, else the first free ``NAME-2.EXT``, ``NAME-3.EXT``, … beside it.

    Export names go to the minute, so a second export in the same minute gets ``-2`` instead of
    replacing the first.
    """
    if not path.exists():
        return path
    n = 2
    while True:
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
        n += 1


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def write_view(view: ViewRows, fmt: str, path: Path) -> ExportResult:
    """Write ``view`` as ``fmt`` (csv, json, jsonl) to ``path``, whole or not at all.

    Raises:
        InvalidRequest: an unknown format, or a path that cannot be written.
    """
    if fmt not in FORMATS:
        raise InvalidRequest(f"unknown format {fmt!r}; use {', '.join(FORMATS)}")
    path = Path(path).expanduser()
    rows = view.rows() if callable(view.rows) else view.rows
    try:
        with locations.replace_private(path, newline="") as out:
            n = write_rows(typing.cast(TextIO, out), fmt, view.columns, ([_cell(v) for v in row] for row in rows))
    except OSError as exc:
        raise InvalidRequest(f"cannot write {path}: {exc.strerror}; choose another path") from None
    return ExportResult(path=path, rows=n, what=view.name, fmt=fmt)
