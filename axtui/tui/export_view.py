"""Exporting what a screen shows: the filtered call log, the cost breakdown of the range and grouping on screen.

`ax monitor export` (and the dialog's other choices) write whole tables
from the store; a view is smaller and already on screen, so it is written
here from the rows the screen drew, in the same three formats, to a
temporary file renamed when complete.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from axtui import locations
from axtui.errors import InvalidRequest
from axtui.tui.views import ExportResult

__all__ = ["ViewRows", "export_file_name", "unused_path", "write_view"]


@dataclass(frozen=True, slots=True)
class ViewRows:
    """What a screen shows, as a table to export.

    Attributes:
        name: a few words for the file name (``calls user=alice``, ``costs by user 1h``).
        label: what the dialog says will be written.
        columns: the column names.
        rows: the rows, each in ``columns`` order.
    """

    name: str
    label: str
    columns: tuple[str, ...]
    rows: Sequence[Sequence[Any]]


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
    if fmt not in ("csv", "json", "jsonl"):
        raise InvalidRequest(f"unknown format {fmt!r}; use csv, json or jsonl")
    path = Path(path).expanduser()
    try:
        with locations.replace_private(path, newline="") as out:
            if fmt == "csv":
                writer = csv.writer(out)
                writer.writerow(view.columns)
                for row in view.rows:
                    writer.writerow([_cell(v) for v in row])
            else:
                records = [dict(zip(view.columns, (_cell(v) for v in row), strict=True)) for row in view.rows]
                if fmt == "json":
                    json.dump(records, out, indent=1)
                    out.write("\n")
                else:
                    for record in records:
                        out.write(json.dumps(record) + "\n")
    except OSError as exc:
        raise InvalidRequest(f"cannot write {path}: {exc.strerror}; choose another path") from None
    return ExportResult(path=path, rows=len(view.rows), what=view.name, fmt=fmt)
