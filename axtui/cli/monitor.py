"""``ax monitor``: alert rules, exports, and (added by the dashboard) ``realtime``.

Headless: this module never imports textual. Subcommands that need more
(the full-screen dashboard) are listed in `SUBCOMMANDS` and imported only
when run, so ``ax monitor export`` stays light; a new one is added by
naming its module there.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from typing import Any

import click

from axtui.cli._common import console, dump_json, fit_table, handle_errors

__all__ = ["SUBCOMMANDS", "monitor"]

#: Lazily loaded subcommands: name -> (module, attribute, one-line help).
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "realtime": ("axtui.cli.realtime", "realtime", "The live dashboard, full screen."),
}


class _MonitorGroup(click.Group):
    """Built-in subcommands plus the lazily imported ones of `SUBCOMMANDS` that exist."""

    def _lazy(self) -> list[str]:
        out = []
        for name, (module, _, _) in SUBCOMMANDS.items():
            try:
                if importlib.util.find_spec(module) is not None:
                    out.append(name)
            except ModuleNotFoundError:
                continue
        return out

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in SUBCOMMANDS:
            return found
        module, attr, _ = SUBCOMMANDS[cmd_name]
        try:
            return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
        except ModuleNotFoundError as exc:
            if exc.name == module:
                return None
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                rows.append((name, self.commands[name].get_short_help_str(80)))
            else:
                rows.append((name, SUBCOMMANDS[name][2]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_MonitorGroup)
def monitor() -> None:
    """The dashboard, alert rules and exports.

    \b
    Examples:
      ax monitor alerts add "p95_latency_ms > 2000 for 5m where provider=openai"
      ax monitor alerts list
      ax monitor export --format csv --since 24h -o calls.csv
    """


# -- alerts ----------------------------------------------------------------------------------


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else ""


@monitor.group()
def alerts() -> None:
    """Alert rules: list, add, remove, and their events.

    \b
    A rule is one line:
      METRIC OP VALUE [per hour|day|month] [for DURATION] [where DIM=VALUE[,DIM=VALUE]]
    \b
    Metrics: p50_latency_ms p95_latency_ms p99_latency_ms ttft_ms p95_ttft_ms
      error_rate rps requests errors rate_limited budget_refused cache_hit_rate
      cost_per_min_usd tokens_per_min spend_usd (with `per`) budget_used_pct
    Dimensions: provider deployment model user (key for spend and budgets)
    \b
    Rules are checked every few seconds by a running gateway (`ax serve`,
    `ax monitor realtime`, `ax sim load`) on its live metrics.
    """


@alerts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the rules as JSON.")
@handle_errors
def alerts_list(as_json: bool) -> None:
    """Every rule with its state and when it last fired.

    A state is kept current only while a process evaluates the rules
    (``ax serve``, ``ax monitor realtime``, ``ax sim load``); once none has
    for a while, a firing or pending state is shown as stale.
    """
    from rich.markup import escape
    from rich.table import Table

    from axtui.cli._common import open_store
    from axtui.config import load_settings
    from axtui.metrics.alerts.storage import list_rules

    interval = load_settings().alerts.interval_s
    store = open_store()
    try:
        rules = list_rules(store)
    finally:
        store.close()
    now = time.time()
    if as_json:
        dump_json([{**r.to_json(), "stale": r.stale(now, interval)} for r in rules])
        return
    if not rules:
        click.echo('No alert rules. Add one with: ax monitor alerts add "error_rate > 5% for 5m"')
        return
    table = Table(box=None, header_style="bold")
    for col in ("id", "name", "rule", "severity", "state", "since", "last fired", "webhook"):
        table.add_column(col, justify="right" if col == "id" else "left", overflow="fold",
                         ratio=1 if col in ("name", "rule") else None)
    styles = {"firing": "bold red", "pending": "yellow", "ok": "green"}
    stale = [r for r in rules if r.stale(now, interval)]
    for r in rules:
        state = r.state if r.enabled else "disabled"
        if r in stale:
            state += " (stale)"
        if r.silenced_until and r.silenced_until > now:
            state += " (silenced)"
        table.add_row(
            str(r.id),
            escape(r.name),
            escape(r.rule),
            r.severity,
            f"[{styles.get(r.state, '')}]{state}[/]" if r.enabled else state,
            _when(r.state_since) if r.state != "ok" else "",
            _when(r.last_fired_at) or "never",
            escape(r.webhook or ""),
        )
    console.print(fit_table(table, keep=("id", "severity", "state", "since", "last fired"),
                            drop=("webhook", "since", "last fired", "severity")))
    if stale:
        seen = [r.evaluated_at for r in stale if r.evaluated_at is not None]
        when = f"since {_when(max(seen))}" if seen else "yet"
        console.print(f"(stale): no running ax has evaluated {'this rule' if len(stale) == 1 else 'these rules'} "
                      f"{when}; the state is the last one seen. `ax serve` keeps it current.", markup=False)


@alerts.command("add")
@click.argument("rule", nargs=-1, required=True)
@click.option("--name", "-n", default=None, help="A name to show instead of the rule (default: the rule).")
@click.option(
    "--severity", "-s", type=click.Choice(["info", "warning", "critical"]), default="warning", show_default=True,
    help="How loud the alert is.",
)  # fmt: skip
@click.option(
    "--webhook", default=None, metavar="URL", help="POST this rule's events here (JSON), besides alerts.webhook."
)
@click.option("--json", "as_json", is_flag=True, help="Print the stored rule as JSON.")
@handle_errors
def alerts_add(rule: tuple[str, ...], name: str | None, severity: str, webhook: str | None, as_json: bool) -> None:
    """Add an alert RULE (quote it, or its words are joined).

    \b
    Examples:
      ax monitor alerts add "p95_latency_ms > 2000 for 5m where provider=openai"
      ax monitor alerts add "error_rate > 5% for 10m" --severity critical
      ax monitor alerts add "spend_usd > 50 per day" --webhook https://hooks.example.com/ax
      ax monitor alerts add "budget_used_pct >= 80 where user=alice" --name "alice near budget"
    """
    from axtui.cli._common import open_store
    from axtui.metrics.alerts.storage import add_rule

    store = open_store()
    try:
        info = add_rule(store, " ".join(rule), now=time.time(), name=name, severity=severity, webhook=webhook)
    finally:
        store.close()
    if as_json:
        dump_json(info.to_json())
        return
    click.echo(f"added alert rule {info.id}: {info.rule}" + (f" ({info.name})" if info.name != info.rule else ""))


@alerts.command("remove")
@click.argument("rule_id", metavar="ID", type=int)
@handle_errors
def alerts_remove(rule_id: int) -> None:
    """Remove the rule with ID (its past events are kept)."""
    from axtui.cli._common import open_store
    from axtui.metrics.alerts.storage import remove_rule

    store = open_store()
    try:
        info = remove_rule(store, rule_id)
    finally:
        store.close()
    click.echo(f"removed alert rule {info.id}: {info.rule}")


@alerts.command("events")
@click.option("--since", default=None, metavar="T", help="Only events since T: 1h, 7d, 2026-11-01, 2026-11-01T09:30Z.")
@click.option("--rule", "rule_id", type=int, default=None, metavar="ID", help="Only the events of alert rule ID.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True, help="The newest this many.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the events as JSON (the columns of --what alerts exports)."
)
@handle_errors
def alerts_events(since: str | None, rule_id: int | None, limit: int, as_json: bool) -> None:
    """Alert events, oldest first: rule transitions and budget thresholds crossed.

    Rule events are pending, firing, resolved or cancelled; budget events
    (from `ax cost` budgets) are a threshold crossed.
    """
    from collections import deque

    from rich.markup import escape
    from rich.table import Table

    from axtui.cli._common import open_store
    from axtui.metrics.export_rows import ALERT_COLUMNS, alert_rows
    from axtui.metrics.timespec import parse_time

    start = parse_time(since, time.time(), option="--since") if since else None
    store = open_store()
    try:
        with store.connect() as conn:
            rows = (
                dict(zip(ALERT_COLUMNS, r, strict=True))
                for r in alert_rows(conn, start, None, None, None)
                if rule_id is None or (r[1] == "rule" and r[3] == rule_id)
            )
            events = list(deque(rows, maxlen=limit))
    finally:
        store.close()
    if as_json:
        dump_json(events)
        return
    if not events:
        click.echo("No alert events" + (f" since {since}." if since else "."))
        return
    table = Table(box=None, header_style="bold")
    for col in ("time (UTC)", "source", "event", "value", "message", "webhook"):
        table.add_column(col, overflow="fold", ratio=1 if col == "message" else None)
    styles = {"firing": "bold red", "pending": "yellow", "resolved": "green", "cancelled": "dim", "threshold": "yellow"}
    for e in events:
        delivery = e["delivery"] if e["delivery"] != "failed" else f"failed: {e['delivery_error'] or ''}"
        source = f"rule {e['rule_id']}" if e["source"] == "rule" else f"budget {e['rule_id']}"
        table.add_row(
            e["ts"][:19].replace("T", " "),
            source,
            f"[{styles.get(e['kind'], '')}]{e['kind']}[/]",
            "" if e["value"] is None else f"{e['value']:.6g}",
            escape(e["message"]),
            "" if e["delivery"] == "none" else escape(delivery),
        )
    console.print(fit_table(table, keep=("time (UTC)", "source", "event", "value"), drop=("webhook",)))


# -- export ----------------------------------------------------------------------------------


@monitor.command("export")
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["csv", "json", "jsonl"]),
    default="csv",
    show_default=True,
    help="csv (RFC 4180), json (one array) or jsonl (one object per line).",
)
@click.option(
    "--what",
    "-w",
    type=click.Choice(["calls", "costs", "alerts", "budgets", "audit"]),
    default="calls",
    show_default=True,
    help="Which records to export.",
)
@click.option("--since", default=None, metavar="T", help="From T (inclusive): 1h, 7d, 2026-11-01, 2026-11-01T09:30Z.")
@click.option("--until", default=None, metavar="T", help="Until T (exclusive); same forms as --since.")
@click.option("--provider", "-p", default=None, help="Only this provider.")
@click.option("--user", "-u", default=None, help="Only this user.")
@click.option(
    "--output",
    "-o",
    default=None,
    metavar="FILE",
    help="Write to FILE instead of stdout (a regular file atomically: a temp file renamed when complete; "
    "a device or a pipe is written into).",
)
@handle_errors
def export_cmd(
    fmt: str, what: str, since: str | None, until: str | None, provider: str | None, user: str | None,
    output: str | None,
) -> None:  # fmt: skip
    """Export calls, costs, alert events, budgets or the audit trail, streaming (flat memory).

    \b
    Examples:
      ax monitor export --since 24h -o calls.csv
      ax monitor export --format jsonl --provider openai --user alice
      ax monitor export --what costs --since 2026-11-01 --until 2026-12-01 -o november.csv
      ax monitor export --what alerts --format json
    \b
    Times are UTC ISO-8601; money is exact dollars as a decimal string
    (empty when the price is unknown). Columns are listed in the README.
    """
    from axtui.cli._common import open_store
    from axtui.config import load_settings
    from axtui.metrics.export import ExportQuery, export, export_to_path
    from axtui.metrics.timespec import parse_time

    now = time.time()
    query = ExportQuery(
        what=what,  # type: ignore[arg-type]
        since=parse_time(since, now, option="--since") if since else None,
        until=parse_time(until, now, option="--until") if until else None,
        provider=provider,
        user=user,
        now=now,
        tz=load_settings().budgets.timezone if what == "budgets" else "UTC",
    )
    store = open_store()
    try:
        if output:
            n = export_to_path(store, output, fmt, query)
            click.echo(f"wrote {n} {_noun(what, n)} to {output}", err=True)
        else:
            _to_stdout(store, fmt, query, export)
    finally:
        store.close()


def _noun(what: str, n: int) -> str:
    single = {"calls": "call", "costs": "cost row", "alerts": "alert event", "budgets": "budget",
              "audit": "audit entry"}[what]
    plural = {"calls": "calls", "costs": "cost rows", "alerts": "alert events", "budgets": "budgets",
              "audit": "audit entries"}[what]
    return single if n == 1 else plural


def _to_stdout(store: Any, fmt: str, query: Any, export: Any) -> None:
    try:
        export(store, sys.stdout, fmt, query)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (head, less) went away: that is how pipelines end, not an error.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0) from None
