"""``ax audit``: every admin change (keys, teams, budgets, limits, alert rules, routing, prices)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import click

from axtui.cli._common import console, dump_json, handle_errors


def _show(value: object) -> str:
    # A space after each comma and colon: a long object wraps between its fields, not in the middle of one.
    return json.dumps(value, sort_keys=True, default=str)


def changes_text(before: dict[str, Any] | None, after: dict[str, Any] | None, width: int = 160) -> str:
    """What a change did, for people: the fields it changed (``models: ["a"] → null``), or what it made or removed."""
    if before is None and after is None:
        return ""
    if before is None or after is None:
        shown = after if before is None else before
        assert shown is not None
        text = ("made " if before is None else "removed ") + _show(
            {k: v for k, v in shown.items() if v not in (None, [], "")})
    else:
        keys = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
        text = "; ".join(f"{k}: {_show(before.get(k))} → {_show(after.get(k))}" for k in keys) or "no change"
    return text if len(text) <= width else text[: width - 1] + "…"


@click.command()
@click.option("--since", default="7d", show_default=True, metavar="T",
              help="From T: 1h, 7d, 2026-11-01 (all: everything).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True,
              help="At most this many entries, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: one object per change, with before and after.")
@handle_errors
def audit(since: str, limit: int, as_json: bool) -> None:
    """Who changed what, when, through what, and the fields it changed (secrets never).

    --json gives each change's whole before and after.

    \b
    Examples:
      ax audit
      ax audit --since 24h --json
    The CLI and the dashboard record the local OS user; the admin API records "admin".
    """
    from axtui.cli._common import open_store
    from axtui.metrics.timespec import parse_time
    from axtui.store.audit import list_audit

    since_ts = None if since == "all" else parse_time(since, time.time(), option="--since")
    store = open_store()
    try:
        entries = list_audit(store, since=since_ts, limit=limit)
    finally:
        store.close()
    if as_json:
        dump_json([e.to_json() for e in entries])
        return
    if not entries:
        console.print(f"no changes since {since}")
        return
    rows = [(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.ts)), e.actor, e.via, e.action, e.target)
            for e in entries]
    longest = max(160, 3 * (console.width - 5))  # three lines under the change, or more; --json has it whole
    print_changes(rows, [changes_text(e.before, e.after, longest) for e in entries], console.width)


#: The columns of a change's line; what it changed goes on the lines under it, the terminal's whole width.
FIELDS = ("when", "who", "via", "action", "target")
#: The narrowest the ``who`` column gets before it folds.
_MIN_WHO = 8


def _layout(rows: Sequence[tuple[str, ...]], width: int) -> tuple[int, list[int]]:
    """How many of `FIELDS` the line shows (the target moves under it when they do not fit), and their widths."""
    from rich.cells import cell_len

    widths = [max(cell_len(header), *(cell_len(row[i]) for row in rows)) for i, header in enumerate(FIELDS)]
    shown = len(FIELDS)
    if sum(widths) + 2 * shown > width:  # a space either side of each column
        shown -= 1
        widths.pop()
    who = FIELDS.index("who")
    widths[who] = max(_MIN_WHO, min(widths[who], width - 2 * shown - (sum(widths) - widths[who])))
    return shown, widths


def print_changes(rows: Sequence[tuple[str, ...]], changes: Sequence[str], width: int) -> None:
    """Each change as a line of `FIELDS`, aligned like a table's rows, and what it changed on the lines under it.

    The time, the place and the action never wrap or get cut: where the line
    would be wider than ``width`` the target moves under it, and then a long
    name folds. Nothing is left out for want of room.
    """
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    shown, widths = _layout(rows, width)
    for n, (row, change) in enumerate(zip(rows, changes, strict=True)):
        line = Table(box=None, header_style="bold", show_header=n == 0)
        for header, column_width in zip(FIELDS[:shown], widths, strict=True):
            line.add_column(Text(header), width=column_width, overflow="fold")
        line.add_row(*(Text(cell) for cell in row[:shown]))
        console.print(line)
        for detail in (*row[shown:], change):
            if detail:
                console.print(Padding(Text(detail, overflow="fold"), (0, 1, 0, 4)))
