"""``ax cost whatif``: replay recorded calls under another routing, price or cache policy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from axtui.cli._common import console, dump_json, handle_errors, open_store
from axtui.cli._cost_common import escape, fmt_when, load, parse_when
from axtui.money import format_usd

__all__ = ["whatif"]

_TOP = 10


@click.command()
@click.option("--since", default="7d", show_default=True, help="Replay calls from: 24h, 7d, 2026-11-01, …")
@click.option("--until", default="now", show_default=True, help="… up to: now, yesterday, 2026-11-27T12:00, …")
@click.option("--strategy", default=None, help="Route every call by this strategy (cost, balanced, latency, …).")
@click.option("--rules", "rules", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="A TOML file with a [routing] table (strategy, rules, max_p95_ms, …) to route by.")
@click.option("--prices", "prices", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="A price file (ax's JSON or LiteLLM's cost map) replacing the shipped prices.")
@click.option("--cache", type=click.Choice(["on", "off"]), default=None,
              help="Response cache on (exact repeats become hits) or off (every hit goes upstream).")
@click.option("--threshold", type=float, default=None,
              help="Least similarity a semantic hit keeps (hits below it go upstream).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (money in nano-dollars and dollars).")
@handle_errors
def whatif(since: str, until: str, strategy: str | None, rules: Path | None, prices: Path | None,
           cache: str | None, threshold: float | None, as_json: bool) -> None:
    """Replay recorded calls under another policy: spend, savings and p95 beside the real ones.

    Each recorded call is routed again, in time order, with each
    deployment's health as it was recorded; a call whose policy did not
    change keeps its recorded route. A call moved elsewhere takes that
    deployment's recorded tokens per call for its size and the latency of
    the recorded call there nearest in time.

    \b
    Examples:
      ax cost whatif --strategy cost
      ax cost whatif --since 24h --strategy balanced --json
      ax cost whatif --prices new-prices.json --cache on
      ax cost whatif --rules cheaper-rules.toml --threshold 0.95
    """
    from axtui.cost.whatif import load_policy
    from axtui.cost.whatif import whatif as replay
    from axtui.engine.compose import build_catalog

    settings = load()
    tz = settings.budgets.timezone
    now = time.time()
    lo = parse_when(since, now, tz, "--since")
    hi = parse_when(until, now, tz, "--until")
    if hi <= lo:
        raise click.BadParameter(f"--until ({until}) must be after --since ({since})", param_hint="--until")
    policy = load_policy(settings, strategy=strategy, rules=rules, prices=prices,
                         cache=cache,  # type: ignore[arg-type]
                         threshold=threshold)
    described = {k: str(v) for k, v in (("strategy", strategy), ("rules", rules), ("prices", prices),
                                         ("cache", cache), ("threshold", threshold)) if v is not None}
    store = open_store()
    try:
        result = replay(store, settings, build_catalog(settings), policy, lo, hi, described=described)
    finally:
        store.close()
    if as_json:
        dump_json(result.as_dict())
        return
    what = ", ".join(f"{k} {v}" for k, v in described.items()) or "the routing configured now"
    console.print(f"[bold]What if[/] {escape(what)}: {result.calls:,} calls, {fmt_when(lo, tz)} → {fmt_when(hi, tz)}")
    r = result.report
    _groups("total", {"all calls": r.total})
    _groups("by model asked for", r.by_model)
    _groups("by user", r.by_user)
    if r.moves:
        console.print("moved: " + ", ".join(f"{escape(a)} → {escape(b)} {n:,}" for (a, b), n in
                                             sorted(r.moves.items(), key=lambda t: -t[1])[:_TOP]))
    if r.new_hits or r.lost_hits:
        console.print(f"cache: {r.new_hits:,} new hits, {r.lost_hits:,} hits lost")
    for note in r.notes:
        console.print(f"  note: {escape(note)}")


def _ms(value: float | None) -> str:
    return "–" if value is None else (f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.0f}ms")


def _groups(title: str, groups: dict[str, Any]) -> None:
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    for col, just in (("", "left"), ("calls", "right"), ("moved", "right"), ("recorded", "right"),
                      ("what if", "right"), ("saved", "right"), ("p95", "right"), ("what if p95", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    ranked = sorted(groups.items(), key=lambda t: -t[1].recorded_nanos)
    for name, g in ranked[:_TOP]:
        share = f" ({g.savings_nanos / g.recorded_nanos:.0%})" if g.recorded_nanos else ""
        table.add_row(escape(name), f"{g.calls:,}", f"{g.moved:,}", format_usd(g.recorded_nanos, nanos=True),
                      format_usd(g.replayed_nanos, nanos=True),
                      ("-" if g.savings_nanos < 0 else "") + format_usd(abs(g.savings_nanos), nanos=True) + share,
                      _ms(g.p95("recorded")), _ms(g.p95("replayed")))
    console.print(table)
    if len(ranked) > _TOP:
        console.print(f"  … and {len(ranked) - _TOP:,} more (--json lists every one)")
