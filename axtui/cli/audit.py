"""``ax audit``: every admin change (keys, teams, budgets, limits, alert rules, routing, prices)."""

from __future__ import annotations

import json
import time

import click

from axtui.cli._common import console, dump_json, handle_errors


def _short(value: dict[str, object] | None) -> str:
    if value is None:
        return "-"
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= 120 else text[:119] + "…"


@click.command()
@click.option("--since", default="7d", show_default=True, metavar="T",
              help="From T: 1h, 7d, 2026-11-01 (all: everything).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True,
              help="At most this many entries, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: one object per change, with before and after.")
@handle_errors
def audit(since: str, limit: int, as_json: bool) -> None:
    """Who changed what, when, through what, before and after (secrets never).

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
    for column in ("when", "who", "via", "action", "target", "before", "after"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.ts)), e.actor, e.via, e.action, e.target,
                      _short(e.before), _short(e.after))
    console.print(table, markup=False)
