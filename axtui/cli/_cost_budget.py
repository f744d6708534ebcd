"""``ax cost budget`` and ``ax cost alerts``: budgets that hold, and their alerts."""

from __future__ import annotations

import time
from typing import Any

import click
from rich.table import Table

from axtui.cli._common import EXIT_UPSTREAM, console, dump_json, fit_table, handle_errors, open_store, run_async
from axtui.cli._cost_common import die, fmt_when, load
from axtui.cost.calculator import money
from axtui.money import format_usd

__all__ = ["alerts", "budget", "forecast_line", "status_json"]

_SCOPE_HELP = "What the budget covers: global, provider:NAME, model:NAME, user:NAME or key:NAME."


def forecast_line(st: Any, tz: str) -> str:
    """``$4.20 of $10.00 (42%) this month; at this rate the monthly budget runs out on …``."""
    b = st.budget
    per = "in total" if b.period == "total" else f"this {b.period}"
    head = f"{format_usd(st.spent_nanos, nanos=True)} of {format_usd(b.limit_nanos, nanos=True)} ({st.used * 100:.0f}%) {per}"
    f = st.forecast
    name = "budget" if b.period == "total" else {"day": "daily", "week": "weekly", "month": "monthly"}[b.period] + " budget"
    if f.exhausted:
        tail = "used up" + (", calls are refused" if b.hard else " (soft: calls go on)")
    elif f.runs_out_at is not None:
        tail = f"at this rate the {name} runs out on {fmt_when(f.runs_out_at, tz)}"
    elif f.projected_nanos is not None and f.rate_nanos_per_hour:
        tail = f"at this rate {format_usd(f.projected_nanos, nanos=True)} by the end of the {b.period}"
    else:
        tail = "no recent spending"
    return f"{head}; {tail}"


def status_json(st: Any) -> dict[str, Any]:
    """One budget's standing as JSON-ready data (money as exact decimal strings of dollars)."""
    b = st.budget
    f = st.forecast
    return {
        "id": b.id,
        "scope": str(b.scope),
        "period": b.period,
        "hard": b.hard,
        "limit_usd": money(b.limit_nanos),
        "spent_usd": money(st.spent_nanos),
        "reserved_usd": money(st.reserved_nanos),
        "remaining_usd": money(st.remaining_nanos),
        "used_percent": round(float(st.used * 100), 2),
        "over": st.over,
        "period_start": st.period_start,
        "period_end": st.period_end,
        "rate_usd_per_hour": money(f.rate_nanos_per_hour),
        "projected_usd": None if f.projected_nanos is None else money(f.projected_nanos),
        "runs_out_at": f.runs_out_at,
    }


def _budget_json(b: Any) -> dict[str, Any]:
    return {
        "id": b.id,
        "scope": str(b.scope),
        "period": b.period,
        "limit_usd": money(b.limit_nanos),
        "hard": b.hard,
        "thresholds": list(b.thresholds) if b.thresholds else None,
        "webhook": b.webhook,
        "created_at": b.created_at,
        "updated_at": b.updated_at,
    }


@click.group()
def budget() -> None:
    """Budgets over a scope and a period; hard ones refuse calls that would exceed them."""


@budget.command("set")
@click.argument("amount")
@click.option("--scope", default="global", show_default=True, help=_SCOPE_HELP)
@click.option("--period", type=click.Choice(["day", "week", "month", "total"]), default="month", show_default=True,
              help="Calendar period in budgets.timezone, or total (never resets).")
@click.option("--hard/--soft", default=False, show_default=True,
              help="Hard refuses calls that would exceed it; soft only alerts.")
@handle_errors
def budget_set(amount: str, scope: str, period: str, hard: bool) -> None:
    """Set a budget of AMOUNT dollars (creates it, or changes the one for that scope and period).

    Every gateway on this machine applies it from its next call; gateways
    on other machines (sharing a server database) within budgets.refresh_s
    (2 s by default).

    \b
    Examples:
      ax cost budget set 50 --period month
      ax cost budget set 5 --scope user:alice --period day --hard
    """
    from axtui.cost.budgets import Scope, parse_amount, set_budget

    try:
        nanos = parse_amount(amount)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="AMOUNT") from None
    try:
        parsed = Scope.parse(scope)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scope") from None
    settings = load()
    store = open_store()
    try:
        info, created = set_budget(store, parsed, period, nanos, hard=hard, now=time.time(),
                                   tz=settings.budgets.timezone)
        # A SQLite file is only ever used on this machine, where the change's marker reaches every gateway.
        elsewhere = "" if store.is_sqlite else f", on other machines within {settings.budgets.refresh_s:g} s"
    finally:
        store.close()
    console.print(f"{'created' if created else 'updated'} budget {info.describe()}; running gateways apply it "
                  f"from their next call{elsewhere}")


@budget.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def budget_list(as_json: bool) -> None:
    """Every budget, with this period's spend."""
    from axtui.cost.budgets import budget_status

    settings = load()
    tz = settings.budgets.timezone
    store = open_store()
    try:
        statuses = budget_status(store, time.time(), tz=tz)
    finally:
        store.close()
    if as_json:
        dump_json([{**_budget_json(s.budget), "spent_usd": money(s.spent_nanos)} for s in statuses])
        return
    if not statuses:
        console.print("no budgets; set one with `ax cost budget set AMOUNT [--scope …] [--period …] [--hard]`")
        return
    table = Table(box=None, pad_edge=False)
    for col in ("id", "scope", "period", "limit", "kind", "spent", "alerts at", "webhook"):
        table.add_column(col, justify="right" if col in ("id", "limit", "spent") else "left")
    defaults = ",".join(str(t) for t in settings.budgets.thresholds)
    for s in statuses:
        b = s.budget
        table.add_row(str(b.id), str(b.scope), b.period, format_usd(b.limit_nanos, nanos=True),
                      "hard" if b.hard else "soft", format_usd(s.spent_nanos, nanos=True),
                      ",".join(map(str, b.thresholds)) + "%" if b.thresholds else f"{defaults}% (default)",
                      b.webhook or (f"{settings.budgets.webhook} (default)" if settings.budgets.webhook else "-"))
    console.print(fit_table(table, keep=("id", "scope", "period", "limit", "kind", "spent"),
                            drop=("webhook", "alerts at")))


@budget.command("delete")
@click.argument("budget_id", metavar="ID", type=int)
@handle_errors
def budget_delete(budget_id: int) -> None:
    """Delete budget ID (its alert history stays)."""
    from axtui.cost.budgets import BudgetNotFound, delete_budget

    store = open_store()
    try:
        info = delete_budget(store, budget_id)
    except BudgetNotFound as exc:
        die(str(exc))
    finally:
        store.close()
    console.print(f"deleted budget {info.describe()}")


@budget.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def budget_check(as_json: bool) -> None:
    """Where every budget stands, with projections; exits 1 when any is used up (for cron and CI).

    Alerts due and not yet sent are sent now (log, webhook).
    """
    from axtui.cost.alerts import AlertNotifier, evaluate_alerts
    from axtui.cost.budgets import budget_status

    settings = load()
    tz = settings.budgets.timezone
    now = time.time()
    store = open_store()
    try:
        from axtui.webhooks import webhook_policy

        notifier = AlertNotifier(store, attempts=settings.budgets.webhook_attempts,
                                 policy=webhook_policy(settings.webhooks), log_alerts=False)  # fmt: skip
        fired = run_async(evaluate_alerts(store, settings.budgets, now, notifier))
        statuses = budget_status(store, now, tz=tz)
    finally:
        store.close()
    over = [s for s in statuses if s.over]
    if as_json:
        dump_json({"over": len(over), "budgets": [status_json(s) for s in statuses],
                   "alerts_sent": [a.payload() for a in fired]})
    else:
        if not statuses:
            console.print("no budgets; set one with `ax cost budget set AMOUNT`")
        for s in statuses:
            mark = "[red]OVER[/]" if s.over else ("[yellow]near[/]" if s.used >= 80 / 100 else "[green]ok[/]")
            console.print(f"{mark:<4} {s.budget.describe()}: {forecast_line(s, tz)}")
        for a in fired:
            console.print(f"alert: {a.message}")
    if over:
        raise SystemExit(EXIT_UPSTREAM)


@click.group()
def alerts() -> None:
    """Budget alerts: thresholds and webhook."""


@alerts.command("configure")
@click.option("--at", "at", default=None, help="Thresholds in percent of the budget, like 50,80,100.")
@click.option("--webhook", default=None, help="POST each alert as JSON to this http(s) URL.")
@click.option("--no-webhook", is_flag=True, help="Stop sending alerts to a webhook.")
@click.option("--budget", "budget_id", type=int, default=None,
              help="Configure this budget only (default: the defaults every budget uses).")
@handle_errors
def alerts_configure(at: str | None, webhook: str | None, no_webhook: bool, budget_id: int | None) -> None:
    """Set the alert thresholds and webhook, for one budget or as the defaults.

    \b
    Examples:
      ax cost alerts configure --at 50,80,100 --webhook https://hooks.example.com/ax
      ax cost alerts configure --budget 3 --at 90
    """
    from axtui.config import load_settings, save_settings
    from axtui.cost.budgets import BudgetNotFound, parse_thresholds, update_budget

    thresholds = None
    if at is not None:
        try:
            thresholds = parse_thresholds(at)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--at") from None
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        raise click.BadParameter(f"{webhook!r} is not an http:// or https:// URL", param_hint="--webhook")
    if webhook is not None and no_webhook:
        raise click.BadParameter("give --webhook or --no-webhook, not both", param_hint="--no-webhook")
    if budget_id is not None:
        changes: dict[str, Any] = {}
        if thresholds is not None:
            changes["thresholds"] = thresholds
        if webhook is not None or no_webhook:
            changes["webhook"] = webhook
        store = open_store()
        try:
            info = update_budget(store, budget_id, now=time.time(), **changes)
        except BudgetNotFound as exc:
            die(str(exc))
        finally:
            store.close()
        at_text = ",".join(map(str, info.thresholds)) + "%" if info.thresholds else "the defaults"
        console.print(f"budget {info.describe()}: alerts at {at_text}, webhook {info.webhook or 'the default'}")
        return
    settings = load_settings()
    before = {"thresholds": list(settings.budgets.thresholds), "webhook": settings.budgets.webhook}
    if thresholds is not None:
        settings.budgets.thresholds = list(thresholds)
    if webhook is not None or no_webhook:
        settings.budgets.webhook = webhook
    if thresholds is not None or webhook is not None or no_webhook:
        path = save_settings(settings)
        _audit_config("budget_alerts.configure", "config:budgets", before,
                      {"thresholds": list(settings.budgets.thresholds), "webhook": settings.budgets.webhook})
        console.print(f"saved to {path}")
    b = settings.budgets
    console.print(f"alerts at {','.join(map(str, b.thresholds))}% of every budget; webhook {b.webhook or 'none'}")


@alerts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="How many, newest first.")
@handle_errors
def alerts_list(as_json: bool, limit: int) -> None:
    """Budget alerts that fired, newest first, with their webhook delivery."""
    from axtui.cost.alerts import alert_events

    settings = load()
    store = open_store()
    try:
        events = alert_events(store, limit=limit)
    finally:
        store.close()
    if as_json:
        dump_json([{**a.payload(), "delivery": a.delivery} for a in events])
        return
    if not events:
        console.print("no budget alerts yet")
    for a in events:
        console.print(f"{fmt_when(a.ts, settings.budgets.timezone)}  {a.message}  [dim](webhook: {a.delivery})[/]")


def _audit_config(action: str, target: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Record a change of the config file's defaults in the audit trail."""
    from axtui.store.audit import record_change

    store = open_store()
    try:
        record_change(store, action, target, before, after)
    finally:
        store.close()
