"""``ax audit``: every admin change (keys, teams, budgets, limits, alert rules, routing, prices)."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from axtui.cli._common import console, dump_json, handle_errors


def _show(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


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
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("when", "who", "via", "action", "target"):
        table.add_column(column, no_wrap=True)
    table.add_column("change", overflow="fold")
    for e in entries:
        table.add_row(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.ts)), e.actor, e.via, e.action, e.target,
                      changes_text(e.before, e.after))
    console.print(table, markup=False)
