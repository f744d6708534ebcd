"""``ax route``: explain a routing choice, deployment health, rules, A/B tests."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

from axtui.cli._common import FiniteFloat, console, dump_json, fit_table, handle_errors, run_async

if TYPE_CHECKING:
    from rich.table import Table

_STATE_STYLE = {"closed": "green", "half_open": "yellow", "open": "bold red"}


def _table(title: str | None = None) -> Table:
    """A compact table: no side borders, one space between columns (fits 80 columns)."""
    from rich import box
    from rich.table import Table

    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), show_edge=False,
                 pad_edge=False)


def _ms(value: float | None) -> str:
    """A duration in ms, short: 4.2ms, 889ms, 2.47s, 16.8s."""
    if value is None:
        return "–"
    if value < 10:
        return f"{value:.1f}ms"
    if value < 1000:
        return f"{value:.0f}ms"
    return f"{value / 1000:.2f}s" if value < 10_000 else f"{value / 1000:.1f}s"


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _state(snap: Any) -> str:
    label = snap.state.replace("_", "-") if snap.state != "half_open" else "half"
    return f"[{_STATE_STYLE[snap.state]}]{label}[/]"


def _snapshot_json(snap: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {**asdict(snap), "available": snap.available}


@click.group()
def route() -> None:
    """Routing: why a call goes where it goes, deployment health, rules, A/B tests.

    \b
    Examples:
      ax route explain smart --user alice --tokens 20000
      ax route status
      ax route rules
      ax route ab report checkout-model
    """


@route.command()
@click.argument("model")
@click.option("--user", "-u", default="anonymous", show_default=True, help="Who calls (rules and A/B tests look at it).")
@click.option("--key", default=None, help="The gateway key id the call comes with.")
@click.option("--tag", "tags", multiple=True, help="A tag of the call (repeat for several).")
@click.option("--tokens", "-t", type=click.IntRange(min=0), default=None,
              help="Prompt size in tokens [default: 500, assumed].")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="The output limit the call sets.")
@click.option("--tools", is_flag=True, help="The call has tools.")
@click.option("--images", is_flag=True, help="The call has images.")
@click.option("--json-mode", is_flag=True, help="The call asks for JSON output.")
@click.option("--strategy", "-s", default=None, help="Force a strategy, as `ax sim load --strategy` does.")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@handle_errors
def explain(model: str, user: str, key: str | None, tags: tuple[str, ...], tokens: int | None,
            max_tokens: int | None, tools: bool, images: bool, json_mode: bool, strategy: str | None,
            as_json: bool) -> None:
    """Which deployment would serve a call of MODEL, the fallbacks, and why.

    The health shown is what the store remembers of the last minutes
    (recent calls and failed attempts), as a gateway starting now would see it.

    \b
    Examples:
      ax route explain gpt-4o
      ax route explain smart --user alice --tokens 150000 --max-tokens 4000
      ax route explain fast --images --strategy cost --json
    """
    result = run_async(_explain(model, user, key, tags, tokens, max_tokens, tools, images, json_mode, strategy))
    if as_json:
        dump_json(result.as_dict())
    else:
        _print_explanation(result)


async def _explain(model: str, user: str, key: str | None, tags: tuple[str, ...], tokens: int | None,
                   max_tokens: int | None, tools: bool, images: bool, json_mode: bool, strategy: str | None) -> Any:
    from axtui.engine.compose import build_gateway
    from axtui.errors import ConfigError
    from axtui.routing.explain import explain as explain_route
    from axtui.routing.router import HealthRouter

    gateway = await build_gateway(record=False)
    try:
        router = gateway.router
        if not isinstance(router, HealthRouter):
            raise ConfigError("this gateway's router cannot explain its choices (routing is switched off)")
        return explain_route(router, model, user=user, key=key, tags=tags, tokens=tokens, output_tokens=max_tokens,
                             tools=tools, images=images, json_mode=json_mode, strategy=strategy)
    finally:
        await gateway.aclose()


def _print_explanation(x: Any) -> None:
    from rich.markup import escape

    from axtui.money import format_usd

    who = f"user {x.caller.user}" + (f", key {x.caller.key}" if x.caller.key else "")
    who += f", tags {', '.join(x.caller.tags)}" if x.caller.tags else ""
    size = x.requirements.describe() + (" (assumed; pass --tokens N)" if x.assumed_tokens else "")
    console.print(f"[bold]{escape(x.model)}[/] for {escape(who)}: {escape(size)}")
    if x.ab is not None:
        console.print(f"A/B test [bold]{escape(x.ab.test)}[/]: variant [bold]{escape(x.ab.variant)}[/] "
                      f"({x.ab.percent:g}% of users; this user hashes to {x.ab.bucket:.1f} of 100) → model "
                      f"[bold]{escape(x.ab.model)}[/]")
    if x.rule_checks:
        for i, c in enumerate(x.rule_checks, 1):
            mark = "[green]✓[/]" if c.matched else "[dim]✗[/]"
            console.print(f"rule {i} {mark} {escape(c.rule)}: {escape(c.why)}")
    else:
        console.print("rules: none configured" if x.rule is None else "")
    if x.rule is None and x.rule_checks:
        console.print("no rule matched: default routing")
    region = ""
    if x.required_region:
        region = f"; stays in region {x.required_region} (required)"
    elif x.preferred_region:
        region = f"; prefers region {x.preferred_region}"
    if x.strategy:
        console.print(f"strategy: [bold]{x.strategy}[/]{region}; up to {x.max_attempts} attempts")
    table = _table()
    for col, just in (("#", "right"), ("deployment", "left"), ("region", "left"), ("circuit", "left"),
                      ("p95", "right"), ("calls", "right"), ("errors", "right"), ("cost/call", "right"),
                      ("from", "left")):
        table.add_column(col, justify=just, no_wrap=col == "deployment")  # type: ignore[arg-type]
    for c in x.candidates:
        h = c.health
        pos = "–" if c.position is None else str(c.position + 1)
        name = escape(c.deployment)
        name = f"[bold]{name}[/]" if c.position == 0 else (name if c.position is not None else f"[dim]{name}[/]")
        errors = f"{h.error_rate:.0%}" if h.calls else "–"
        table.add_row(pos, name, escape(c.region or "–"), _state(h), _ms(h.latency_p95_ms or h.latency_ewma_ms),
                      str(h.calls), errors,
                      format_usd(c.estimate_nanos, nanos=True) if c.estimate_nanos is not None else "unknown",
                      c.cost_source)
    console.print(fit_table(table, keep=("#", "deployment", "circuit", "p95", "cost/call"),
                            drop=("region", "calls", "errors", "from")))
    console.print("why:")
    for c in x.candidates:
        pos = "–" if c.position is None else str(c.position + 1)
        console.print(f"  {pos} {escape(c.deployment)}: {escape(c.reason)}")
    if x.error:
        console.print(f"[bold red]no route:[/] {escape(x.error)}")


@route.command()
@click.option("--since", type=FiniteFloat(min=1), default=None,
              help="Look back this many seconds [default: a few health windows].")
@click.option("--json", "as_json", is_flag=True, help="Print the health table as JSON.")
@handle_errors
def status(since: float | None, as_json: bool) -> None:
    """Each deployment's health: circuit, calls, errors, latency, tokens per second.

    Built from the call log and the failed attempts the gateways recorded,
    so it shows what any process sees (nothing is in flight here).

    \b
    Examples:
      ax route status
      ax route status --since 3600 --json
    """
    from axtui.clock import SYSTEM_CLOCK
    from axtui.config import load_settings
    from axtui.engine.compose import build_catalog, effective_providers
    from axtui.routing.history import health_from_store
    from axtui.store import Store

    settings = effective_providers(load_settings())
    catalog = build_catalog(settings)
    routing = settings.routing
    if since is not None:
        # The counts, rates and latencies cover the window asked for, not the router's own.
        routing = routing.model_copy(update={"window_s": since})
    store = Store.open()
    try:
        snaps = health_from_store(store, catalog, routing, SYSTEM_CLOCK, since)
    finally:
        store.close()
    if as_json:
        dump_json({"window_s": routing.window_s, "deployments": [_snapshot_json(s) for s in snaps]})
        return
    from rich.markup import escape

    table = _table(f"deployment health (last {_ago(routing.window_s)})")
    # A narrow terminal gets the columns that matter most; 429s and TTFT move to the notes.
    wide = console.width >= 110
    cols = [("deployment", "left"), ("circuit", "left"), ("calls", "right"), ("errors", "right")]
    cols += [("429s", "right")] if wide else []
    cols += [("p50", "right"), ("p95", "right")]
    cols += [("ttft p95", "right")] if wide else []
    cols += [("tok/s", "right"), ("last", "right")]
    for col, just in cols:
        table.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    notes: list[str] = []
    for s in snaps:
        parts: list[str] = []
        if s.state == "open":
            parts.append(f"circuit open: {s.state_reason}; next probe in {s.retry_in_s:.0f}s")
        elif s.state == "half_open":
            parts.append(f"half-open: {s.state_reason}")
        if s.cooldown_s > 0:
            parts.append(f"resting after an upstream 429, {s.cooldown_s:.0f}s left")
        if not wide and s.rate_limited:
            parts.append(f"{s.rate_limited} upstream 429s")
        if s.errors and s.last_error:
            parts.append(f"last error: {s.last_error[:160]}")
        if parts:
            notes.append(f"  {escape(s.deployment)}: {escape('; '.join(parts))}")
        row = [escape(s.deployment), _state(s), str(s.calls), f"{s.error_rate:.0%}" if s.calls else "–"]
        row += [str(s.rate_limited) if s.rate_limited else "–"] if wide else []
        row += [_ms(s.latency_p50_ms), _ms(s.latency_p95_ms)]
        row += [_ms(s.ttft_p95_ms)] if wide else []
        row += [f"{s.tokens_per_s:,.0f}" if s.tokens_per_s else "–", _ago(s.last_seen_s)]
        table.add_row(*row)
    console.print(fit_table(table, keep=("deployment", "circuit", "calls", "errors", "p50", "p95"),
                            drop=("tok/s", "last", "p50")))
    if notes:
        console.print("notes:")
        for line in notes:
            console.print(line)


@route.command()
@click.option("--json", "as_json", is_flag=True, help="Print the rules and A/B tests as JSON.")
@handle_errors
def rules(as_json: bool) -> None:
    """The routing rules in the order they are checked, and the A/B tests.

    The first rule that matches a call decides its route. Edit them under
    [[routing.rules]] and [[routing.ab_tests]] in the config file.
    """
    from rich.markup import escape

    from axtui.config import load_settings
    from axtui.routing.explain import describe_rule

    routing = load_settings().routing
    if as_json:
        dump_json({
            "strategy": routing.strategy,
            "rules": [r.model_dump(mode="json") for r in routing.rules],
            "ab_tests": [t.model_dump(mode="json") for t in routing.ab_tests],
        })
        return
    console.print(f"default strategy: [bold]{routing.strategy}[/]")
    if not routing.rules:
        console.print("no routing rules: every call uses the default strategy over its model's deployments")
    for i, r in enumerate(routing.rules, 1):
        when, then = describe_rule(r)
        console.print(f"{i}. [bold]{escape(r.name)}[/]: when {escape(when)} → {escape(then)}")
    for t in routing.ab_tests:
        splits = escape(", ".join(f"{v.name} {v.percent:g}% → {v.model}" for v in t.variants))
        state = "" if t.enabled else " [dim](disabled)[/]"
        console.print(f"A/B [bold]{escape(t.name)}[/] on {escape(t.model)}: {splits}{state}")


@route.group()
def ab() -> None:
    """A/B tests: results per variant, and feedback on answers."""


@ab.command()
@click.argument("name")
@click.option("--since", "since_hours", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Only calls of the last HOURS hours [default: all].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def report(name: str, since_hours: float | None, as_json: bool) -> None:
    """Results of A/B test NAME per variant: calls, errors, latency, cost, feedback.

    \b
    Examples:
      ax route ab report checkout-model
      ax route ab report checkout-model --since 24 --json
    """
    from axtui.config import load_settings
    from axtui.routing.abreport import ab_report
    from axtui.store import Store

    routing = load_settings().routing
    since = time.time() - since_hours * 3600 if since_hours else None
    store = Store.open()
    try:
        rep = ab_report(store, name, routing, since)
    finally:
        store.close()
    if as_json:
        dump_json(rep.as_dict())
        return
    _print_report(rep)


def _print_report(rep: Any) -> None:
    from rich.markup import escape

    from axtui.money import format_usd

    state = "" if rep.enabled else (" (disabled)" if rep.configured else " (no longer configured)")
    title = f"A/B test {rep.test}" + (f" on {rep.model}" if rep.model else "") + state
    console.print(escape(title))
    for v in rep.variants:
        split = f"{v.percent:g}% of users" if v.percent is not None else "no longer configured"
        console.print(f"  {escape(v.variant)}: {escape(v.model or '?')}, {split}")
    table = _table()
    for col, just in (("variant", "left"), ("calls", "right"), ("users", "right"), ("errors", "right"),
                      ("p50", "right"), ("p95", "right"), ("cost", "right"), ("per call", "right"),
                      ("feedback", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for v in rep.variants:
        per_call = v.cost_per_call_usd
        fb = f"{v.feedback_mean:.2f} ({v.feedback_count})" if v.feedback_count else "–"
        table.add_row(
            escape(v.variant), str(v.calls), str(v.users), f"{v.error_rate:.1%}" if v.calls else "–",
            _ms(v.latency_p50_ms), _ms(v.latency_p95_ms),
            format_usd(v.cost_usd) if v.ok > v.unpriced_calls else ("unknown" if v.ok else "–"),
            format_usd(per_call) if per_call is not None else "–", fb,
        )
    console.print(fit_table(table, keep=("variant", "calls", "cost", "per call", "p95", "errors"),
                            drop=("users", "p50", "feedback")))
    if not rep.calls:
        console.print("no calls recorded under this test yet")


@ab.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print the tests as JSON.")
@handle_errors
def list_tests(as_json: bool) -> None:
    """The configured A/B tests and their splits."""
    from rich.markup import escape

    from axtui.config import load_settings

    tests = load_settings().routing.ab_tests
    if as_json:
        dump_json([t.model_dump(mode="json") for t in tests])
        return
    if not tests:
        console.print("no A/B tests; add one to the config file as a routing.ab_tests entry", markup=False)
    for t in tests:
        splits = escape(", ".join(f"{v.name} {v.percent:g}% → {v.model}" for v in t.variants))
        console.print(f"[bold]{escape(t.name)}[/] on {escape(t.model)}: {splits}"
                      + ("" if t.enabled else " [dim](disabled)[/]"))


@ab.command()
@click.argument("request_id")
@click.argument("score")
@click.option("--comment", "-m", default=None, help="What the user said.")
@handle_errors
def feedback(request_id: str, score: str, comment: str | None) -> None:
    """Record a user's verdict on the answer to call REQUEST_ID: up, down, or 0..1.

    \b
    Examples:
      ax route ab feedback chatcmpl-ax3f2a... up
      ax route ab feedback chatcmpl-ax3f2a... 0.25 -m "too long"
    """
    from axtui.errors import InvalidRequest
    from axtui.routing.abreport import parse_score, record_feedback
    from axtui.store import Store

    try:
        value = parse_score(score)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="score") from None
    store = Store.open()
    try:
        test, variant = record_feedback(store, request_id, value, comment)
    finally:
        store.close()
    console.print(f"feedback {value:g} recorded for A/B test {test}, variant {variant}", markup=False)
