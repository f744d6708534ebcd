"""``ax cost``: spending summaries, breakdowns, estimates, prices (budgets in `_cost_budget`)."""

from __future__ import annotations

import json
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from axtui.cli._common import (
    EXIT_UPSTREAM,
    EXIT_USAGE,
    FiniteFloat,
    console,
    dump_json,
    fit_table,
    handle_errors,
    open_store,
)
from axtui.cli._cost_budget import alerts, budget, forecast_line, status_json
from axtui.cli._cost_common import die, escape, fmt_tokens, fmt_when, load, parse_when, per_million
from axtui.cli._cost_whatif import whatif
from axtui.money import format_usd

__all__ = ["BREAKDOWN_BY", "cost"]


@click.group()
def cost() -> None:
    """Spending: summary, breakdown, estimate, whatif, budget, alerts, prices.

    Every call is priced from the usage its provider reported; reports read
    rollups kept as calls are recorded, so they answer at once over
    millions of calls.
    """


cost.add_command(budget)
cost.add_command(alerts)
cost.add_command(whatif)


# -- summary -------------------------------------------------------------------------------


@cost.command()
@click.option("--time", "hours", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Hours back from now to cover.  [default: 24]")
@click.option("--since", default=None, help="Start instead of --time: 24h, 7d, today, 2026-11-01, …")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (money as exact decimal strings).")
@handle_errors
def summary(hours: float | None, since: str | None, as_json: bool) -> None:
    """Total spend, calls, tokens, cache savings, top models and a projection.

    \b
    Examples:
      ax cost summary
      ax cost summary --since 7d
      ax cost summary --time 168 --json
    """
    from axtui.cost.budgets import budget_status
    from axtui.cost.reports import summary as make_summary

    settings = load()
    tz = settings.budgets.timezone
    now = time.time()
    if hours is not None and since is not None:
        raise click.UsageError("give either --time HOURS or --since WHEN, not both")
    if since is not None:
        start = parse_when(since, now, tz, "--since")
        heading = None
    else:
        hours = 24.0 if hours is None else hours
        # More hours than have passed since 1970 mean everything recorded.
        start = max(0.0, now - hours * 3600)
        heading = f"Spend over the last {hours:g} h"
    store = open_store()
    try:
        s = make_summary(store, start, now, tz=tz)
        statuses = budget_status(store, now, tz=tz)
    finally:
        store.close()
    if as_json:
        data = s.to_json()
        data["budgets"] = [status_json(st) for st in statuses]
        dump_json(data)
        return
    t = s.totals
    if heading is None:
        console.print(f"[bold]Spend since {fmt_when(s.since, tz)}[/]")
    else:
        console.print(f"[bold]{heading}[/] (since {fmt_when(s.since, tz)})")
    per_call = s.cost_per_call_usd
    rows: list[tuple[str, str]] = [
        ("total", f"{format_usd(s.total_nanos, nanos=True)} over {t.calls:,} calls"
                  + (f" ({format_usd(per_call)} a priced call)" if per_call is not None else "")),
        ("tokens", f"{fmt_tokens(t.input_tokens)} in ({fmt_tokens(t.cached_input_tokens)} cached) · "
                   f"{fmt_tokens(t.output_tokens)} out"),
        ("cache", f"{t.cache_hits:,} answers from the cache saved {format_usd(t.saved_nanos, nanos=True)}"),
    ]
    if t.errors or t.refused:
        rows.append(("failures", f"{t.errors:,} errors · {t.refused:,} refused by limits or budgets"))
    if t.unknown_price_calls:
        rows.append(("[yellow]unknown price[/]",
                     f"[yellow]{t.unknown_price_calls:,} calls[/] are not in the total: add their prices under "
                     "\\[prices] in the config or with `ax cost prices import`"))
    p = s.projection
    rows.append(("projection", f"{format_usd(p.rate_nanos_per_hour, nanos=True)}/h → today "
                               f"{format_usd(p.end_of_day_nanos, nanos=True)}, this month "
                               f"{format_usd(p.end_of_month_nanos, nanos=True)}"))
    for label, text in rows:
        console.print(f"  {label:<14} {text}" if "[" not in label else f"  {label}  {text}")
    if s.top_models:
        table = Table(title="Top models", title_justify="left", box=None, pad_edge=False)
        for col, justify in (("provider", "left"), ("model", "left"), ("cost", "right"), ("calls", "right")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for m in s.top_models:
            flag = " [yellow]*[/]" if m.unknown_price_calls else ""
            table.add_row(m.provider or "(none)", m.model or "(none)", format_usd(m.cost_nanos, nanos=True) + flag,
                          f"{m.calls:,}")
        console.print(fit_table(table, keep=("provider", "model", "cost", "calls")))
    for st in statuses:
        console.print(f"  budget {st.budget.describe()}: {forecast_line(st, tz)}")


# -- breakdown -----------------------------------------------------------------------------


#: What ``--by`` takes: `axtui.cost.reports.BREAKDOWNS`, named here so that ``--help`` need not load the store.
BREAKDOWN_BY: tuple[str, ...] = ("provider", "model", "user", "key", "team", "tag", "day", "week", "month")

_BREAKDOWN_HELP = f"""Spend grouped by {", ".join(BREAKDOWN_BY[:-1])} or {BREAKDOWN_BY[-1]}.

    The rows add up exactly to the total. Times are whole minutes in the
    configured time zone (budgets.timezone).

    \b
    Examples:
      ax cost breakdown --by model
      ax cost breakdown --by user --provider openai --since 7d
      ax cost breakdown --by day --since 2026-11-01 --json
    """


@cost.command(help=_BREAKDOWN_HELP)
@click.option("--provider", default=None, help="Only this provider's calls.")
@click.option("--by", "by", type=click.Choice(BREAKDOWN_BY), default="provider", show_default=True,
              help="What to group by.")
@click.option("--since", default="30d", show_default=True, help="Start: 24h, 7d, today, 2026-11-01, …")
@click.option("--until", default="now", show_default=True, help="End: now, yesterday, 2026-11-27T12:00, …")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (money as exact decimal strings).")
@handle_errors
def breakdown(provider: str | None, by: str, since: str, until: str, as_json: bool) -> None:
    """Print spend grouped by ``by`` (the help the user sees is `_BREAKDOWN_HELP`)."""
    from axtui.cost.reports import breakdown as make_breakdown

    settings = load()
    tz = settings.budgets.timezone
    now = time.time()
    lo = parse_when(since, now, tz, "--since")
    hi = parse_when(until, now, tz, "--until")
    if hi <= lo:
        raise click.BadParameter(f"--until ({until}) must be after --since ({since})", param_hint="--until")
    store = open_store()
    try:
        b = make_breakdown(store, by, lo, hi, provider=provider, tz=tz)
    finally:
        store.close()
    if as_json:
        dump_json(b.to_json())
        return
    where = f" on {provider}" if provider else ""
    table = Table(title=f"Spend by {by}{where}, {fmt_when(lo, tz)} → {fmt_when(hi, tz)}", title_justify="left",
                  box=None, pad_edge=False, show_footer=True)
    total = b.total
    cols = [
        (by, "left", "total"),
        ("cost", "right", format_usd(total.cost_nanos, nanos=True) + (" *" if total.unknown_price_calls else "")),
        ("share", "right", "100%" if total.cost_nanos else ""),
        ("calls", "right", f"{total.calls:,}"),
        ("in", "right", fmt_tokens(total.input_tokens)),
        ("out", "right", fmt_tokens(total.output_tokens)),
        ("cache hits", "right", f"{total.cache_hits:,}"),
    ]
    for name, justify, footer in cols:
        table.add_column(name, justify=justify, footer=footer)  # type: ignore[arg-type]
    for row in b.rows:
        t = row.totals
        share = f"{Decimal(t.cost_nanos) * 100 / total.cost_nanos:.1f}%" if total.cost_nanos else ""
        flag = " [yellow]*[/]" if t.unknown_price_calls else ""
        table.add_row(row.key or "(none)", format_usd(t.cost_nanos, nanos=True) + flag, share, f"{t.calls:,}",
                      fmt_tokens(t.input_tokens), fmt_tokens(t.output_tokens), f"{t.cache_hits:,}")
    console.print(fit_table(table, keep=(by, "cost", "share", "calls"), drop=("cache hits", "in", "out")))
    if not b.rows:
        console.print("  no calls in that range")
    if total.unknown_price_calls:
        console.print(f"  [yellow]*[/] {total.unknown_price_calls:,} calls had no known price and are not in the "
                      "cost; add their prices under \\[prices] in the config or with `ax cost prices import`")


# -- estimate ------------------------------------------------------------------------------


@cost.command()
@click.argument("model")
@click.option("--input", "input_tokens", type=click.IntRange(min=0), required=True,
              help="Prompt tokens, cached and cache-written ones included.")
@click.option("--output", "output_tokens", type=click.IntRange(min=0), required=True,
              help="Output tokens, reasoning included.")
@click.option("--cached-input", type=click.IntRange(min=0), default=0, help="Of --input: read from the prompt cache.")
@click.option("--cache-write", type=click.IntRange(min=0), default=0, help="Of --input: written to the prompt cache.")
@click.option("--cache-write-1h", type=click.IntRange(min=0), default=0,
              help="Of --cache-write: kept for an hour (Anthropic bills it higher).")
@click.option("--reasoning", type=click.IntRange(min=0), default=0, help="Of --output: spent thinking.")
@click.option("--batch", is_flag=True, help="Priced as a batch API call (the provider's batch discount).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (cost_usd as an exact decimal string).")
@handle_errors
def estimate(model: str, input_tokens: int, output_tokens: int, cached_input: int, cache_write: int,
             cache_write_1h: int, reasoning: int, batch: bool, as_json: bool) -> None:
    """What a call of this size costs on MODEL (a model, alias or provider/model).

    \b
    Examples:
      ax cost estimate gpt-4o --input 12345 --cached-input 2000 --output 800
      ax cost estimate claude-sonnet-4-5 --input 50000 --cache-write 40000 --output 1000 --json
    """
    from axtui.cost.calculator import itemize, money
    from axtui.cost.sheet import PriceSheet
    from axtui.engine.compose import build_catalog
    from axtui.errors import InvalidRequest, UnknownModel
    from axtui.types import Usage

    if cached_input + cache_write > input_tokens:
        raise click.BadParameter("--cached-input and --cache-write are parts of --input, so together they cannot "
                                 f"exceed it ({cached_input} + {cache_write} > {input_tokens})", param_hint="--input")
    if cache_write_1h > cache_write:
        raise click.BadParameter("--cache-write-1h is part of --cache-write and cannot exceed it",
                                 param_hint="--cache-write-1h")
    if reasoning > output_tokens:
        raise click.BadParameter("--reasoning is part of --output and cannot exceed it", param_hint="--reasoning")
    settings = load()
    sheet = PriceSheet.load(settings.prices)
    usage = Usage(input_tokens, output_tokens, cached_input, cache_write, cache_write_1h, reasoning)
    try:
        targets = [(d.id, sheet.lookup(d)) for d in build_catalog(settings).resolve(model)]
    except (UnknownModel, InvalidRequest):  # InvalidRequest: an embedding model, priced by its name
        targets = [(model, sheet.price_for(model))]
    priced = [(name, p) for name, p in targets if p is not None]
    if not priced:
        die(f"no price is known for {model!r}; add one under [prices] in the config "
             f"(e.g. [prices.\"{model}\"] input = 1.0, output = 2.0) or import LiteLLM's cost map with "
             "`ax cost prices import FILE`")
    results = [(name, p, itemize(p, usage, batch=batch)) for name, p in priced]
    if as_json:
        first = results[0][2]
        dump_json({
            "model": model,
            "cost_usd": money(first.total_usd),
            "batch": batch,
            "deployments": [
                {"deployment": name, "price": p.model, "origin": p.origin, "cost_usd": money(bill.total_usd),
                 "tier_above_tokens": bill.tier_above,
                 "lines": [{"kind": ln.kind, "tokens": ln.tokens, "per_million_usd": money(ln.per_million),
                            "cost_usd": money(ln.usd)} for ln in bill.lines]}
                for name, p, bill in results
            ],
            "unpriced": [name for name, p in targets if p is None],
        })
        return
    for name, price, bill in results:
        tier = f", long-context rates (prompt over {bill.tier_above:,} tokens)" if bill.tier_above else ""
        console.print(f"[bold]{name}[/] ({price.origin} price of {price.model}{tier}): "
                      f"[bold]{format_usd(bill.total_usd)}[/]  (exactly ${bill.total_usd.normalize():f})")
        for ln in bill.lines:
            console.print(f"  {ln.kind:<15} {ln.tokens:>12,} × {per_million(ln.per_million)}/M = ${ln.usd.normalize():f}")
        if bill.discount_usd:
            console.print(f"  {'batch discount':<15} −${bill.discount_usd.normalize():f}")
    for name, missing in targets:
        if missing is None:
            console.print(f"[yellow]{name}: no known price[/]")


# -- prices --------------------------------------------------------------------------------


@cost.group()
def prices() -> None:
    """The price sheet: list it, import LiteLLM's cost map."""


@prices.command("list")
@click.option("--provider", default=None, help="Only this provider's models.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (prices per million tokens as exact strings).")
@handle_errors
def prices_list(provider: str | None, as_json: bool) -> None:
    """Every known price: shipped, imported and config overrides (dollars per million tokens)."""
    from axtui.cost.sheet import PriceSheet, price_to_json

    settings = load()
    sheet = PriceSheet.load(settings.prices)
    entries = [p for p in sheet.entries()
               if provider is None or p.provider.lower() == provider.lower() or p.model.startswith(provider + "/")]
    if provider is not None and not entries:
        known = sorted({p.provider for p in sheet.entries() if p.provider})
        die(f"no prices for provider {provider!r}; providers with prices: {', '.join(known)}")
    if as_json:
        dump_json({"retrieved": sheet.info.retrieved, "source": sheet.info.source, "sources": dict(sheet.info.sources),
                   "models": [{**price_to_json(p), "origin": p.origin} for p in entries]})
        return
    table = Table(title=f"Prices, $ per million tokens (shipped sheet read {sheet.info.retrieved})",
                  title_justify="left", box=None, pad_edge=False)
    for col in ("model", "provider", "input", "cached", "write 5m/1h", "output", "context", "max out", "can", "from"):
        table.add_column(col, justify="left" if col in ("model", "provider", "can", "from") else "right")
    for p in entries:
        r = p.rates
        writes = "-" if r.cache_write is None else f"{per_million(r.cache_write)}/{per_million(r.cache_write_1h)}"
        can = "".join(c for c, on in (("T", p.tools), ("V", p.vision), ("J", p.json_mode), ("S", p.streaming)) if on)
        out = per_million(r.output) + (" +tiers" if p.tiers else "")
        table.add_row(p.model, p.provider, per_million(r.input), per_million(r.cached_input), writes, out,
                      f"{p.context_window:,}" if p.context_window else "-",
                      f"{p.max_output:,}" if p.max_output else "-", can, p.origin)
    console.print(fit_table(table, keep=("model", "provider", "input", "cached", "output", "context", "can"),
                            drop=("from", "write 5m/1h", "max out", "context", "can", "cached")))
    shown = {str(c.header) for c in table.columns}
    legend = "can: T tools, V vision, J JSON mode, S streaming · " if "can" in shown else ""
    hidden = "" if "from" in shown else "; widen the terminal for every column"
    console.print(f"  {legend}+tiers: long-context rates apply (`ax cost prices list --json` shows them{hidden})")


def _audit_prices(file: Path, before: Any, after: dict[str, Any]) -> None:
    from axtui.store.audit import record_change

    old = {p.model: p for p in before}
    changed = sorted(m for m, p in after.items() if old.get(m) != p)
    store = open_store()
    try:
        record_change(store, "prices.import", f"prices:{file.name}", {"models": len(old)},
                      {"models": len(after), "changed": changed[:200], "changed_count": len(changed)})
    finally:
        store.close()


@prices.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def prices_import(file: Path) -> None:
    """Import prices from LiteLLM's model_prices_and_context_window.json.

    Valid entries replace the shipped prices of the same model name and are
    kept in the data dir; each invalid entry is reported, and the command
    exits 1 if any was (2 when no entry was valid: the file is not usable).
    """
    from axtui.cost.litellm import parse_litellm
    from axtui.cost.sheet import read_price_file, user_prices_path, write_price_file

    try:
        data = json.loads(file.read_text(encoding="utf-8"), parse_float=Decimal)
    except FileNotFoundError:
        die(f"{file}: no such file; download LiteLLM's model_prices_and_context_window.json and pass its path")
    except (OSError, UnicodeDecodeError) as exc:
        die(f"{file}: cannot be read ({exc})")
    except json.JSONDecodeError as exc:
        die(f"{file}: not valid JSON ({exc}); nothing was imported")
    try:
        result = parse_litellm(data)
    except ValueError as exc:
        die(f"{file}: {exc}; nothing was imported")
    for name, why in result.invalid:
        console.print(f"[red]invalid[/] {escape(name)}: {escape(why)}")
    if result.prices:
        from axtui.cost.sheet import PriceSheet

        shipped = PriceSheet.load(include_user=False)
        path = user_prices_path()
        _, existing = read_price_file(path, "imported")
        merged = {p.model: p for p in existing}
        merged.update({p.model: p for p in result.prices})
        write_price_file(path, merged.values(), source=f"imported from {file.name} (LiteLLM cost map)",
                         retrieved=date.today().isoformat())
        _audit_prices(file, existing, merged)
        replaced = sum(1 for p in result.prices if shipped.get(p.model) is not None)
        console.print(f"imported {len(result.prices):,} prices into {path} ({replaced:,} replace shipped ones)")
    else:
        console.print("no valid prices found; nothing was imported")
    if result.skipped:
        console.print(f"skipped {len(result.skipped):,} entries that are not priced per token (images, audio, …)")
    if result.invalid:
        count = f"{len(result.invalid):,} {'entry was' if len(result.invalid) == 1 else 'entries were'} invalid"
        die(f"{count} (listed above); fix them in {file} and import again",
            EXIT_UPSTREAM if result.prices else EXIT_USAGE)

