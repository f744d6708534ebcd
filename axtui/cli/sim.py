"""``ax sim``: the simulated provider fleet, over HTTP, and load through ax."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import click
from rich.markup import escape

from axtui.cli._common import (
    EXIT_REFUSED,
    EXIT_UPSTREAM,
    FiniteFloat,
    check_bind,
    console,
    dump_json,
    err_console,
    fail,
    handle_errors,
    run_async,
)
from axtui.money import format_usd


@click.group()
def sim() -> None:
    """The simulated provider fleet: serve it, drive load through ax."""


@sim.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=8790, show_default=True, help="Port to bind.")
@click.option("--profile", default="demo", show_default=True, help="Fleet profile: demo, fast, flaky, degraded.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for latencies, faults and answers.")
@handle_errors
def serve(host: str, port: int, profile: str, seed: int) -> None:
    """Serve the simulated fleet over real HTTP in the OpenAI, Anthropic and Gemini wire formats.

    \b
    OpenAI:    POST /v1/chat/completions, /v1/responses, /v1/embeddings, GET /v1/models
    Anthropic: POST /v1/messages
    Gemini:    POST /v1beta/models/MODEL:generateContent (and :streamGenerateContent?alt=sse)
    Azure:     POST /azure/openai/deployments/DEPLOYMENT/chat/completions?api-version=…, /azure/openai/v1/responses
               (api-key header)
    Vertex:    POST /vertex/v1/projects/P/locations/L/publishers/google/models/MODEL:generateContent (bearer)
    Bedrock:   POST /bedrock/model/MODEL_ID/converse (and /converse-stream), SigV4 with the test
               credentials AKIAAXSIMULATED00001 / ax-sim-bedrock-secret-access-key
    Faults on demand: send the header X-Sim-Fault: 500 | 503 | 401 | 429 | timeout | malformed | cut
    (the clouds also take 403, and Bedrock throttling)
    One provider's latency and faults: prefix the path, e.g. /azure/v1/chat/completions

    \b
    Example:
      ax sim serve --port 8790 --profile flaky
    """
    from axtui.providers.sim.profiles import get_profile
    from axtui.providers.sim.server import run

    get_profile(profile)  # an unknown profile fails here, with the list of known ones
    check_bind(host, port)
    console.print(f"simulated fleet ({profile}) on http://{host}:{port}  (Ctrl+C stops)")
    try:
        run_async(run(host=host, port=port, profile=profile, seed=seed))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        from axtui.errors import ConfigError

        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port") from None


@sim.command()
@click.option("--rps", type=FiniteFloat(min=0.1, max=5000), default=20.0, show_default=True, help="Calls per second.")
@click.option("--duration", type=FiniteFloat(min=0.1, max=7 * 86_400), default=10.0, show_default=True,
              help="Seconds to send for.")
@click.option("--wait", "wait_s", type=FiniteFloat(min=0, max=3600), default=30.0, show_default=True,
              help="Seconds to wait, once sending is over, for the answers still coming; the rest count as errors.")
@click.option("--users", type=click.IntRange(1, 10_000), default=5, show_default=True, help="Distinct users calling.")
@click.option("--seed", type=int, default=None,
              help="Seed of the workload, to repeat a run exactly.  [default: a new one each run, printed]")
@click.option("--target", default=None, help="A running gateway's URL (e.g. http://127.0.0.1:8787); default: in-process.")
@click.option("--strategy", default=None, help="Override the routing strategy (latency, cost, round-robin, …).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the summary.")
@handle_errors
def load(rps: float, duration: float, wait_s: float, users: int, seed: int | None, target: str | None,
         strategy: str | None, as_json: bool) -> None:
    """Drive a realistic workload through ax and summarise what happened.

    Several users and models; popular prompts repeated (Zipf), paraphrases
    and near-misses of them, short and long prompts, some streaming. Calls
    are sent for --duration seconds; then the answers still coming are
    waited for (up to --wait seconds, said when it starts). Each run draws
    a new seed, so a second run is not all cache hits; --seed repeats one.

    \b
    Examples:
      ax sim load --rps 50 --duration 4
      ax sim load --rps 200 --duration 30 --strategy cost --json
      ax sim load --target http://127.0.0.1:8787 --rps 100
    """
    if target is not None:
        _check_target(target)
    if seed is None:
        import random

        seed = random.SystemRandom().randrange(1, 1_000_000)
    summary = run_async(_load(rps, duration, wait_s, users, seed, target, strategy, as_json))
    summary["seed"] = seed
    if as_json:
        dump_json(summary)
    else:
        _print_summary(summary)
    _fail_when_nothing_served(summary)


def _check_target(target: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(
            f"{target!r} is not a gateway URL; write it like http://127.0.0.1:8787 (where `ax serve` listens)",
            param_hint="--target",
        )


def _fail_when_nothing_served(s: dict[str, Any]) -> None:
    """A run in which no call was served failed; say why, with the exit code of its commonest reason."""
    if not s["calls"] or s["ok"]:
        return
    reasons: dict[str, int] = s.get("reasons") or {}
    why = next(iter(reasons), "no reason was given")
    refused = s["rate_limited"] + s["budget_refused"]
    code = EXIT_REFUSED if refused == s["calls"] else EXIT_UPSTREAM
    hint = ""
    if why.startswith(("HTTP 401", "HTTP 403")):
        hint = "; ax sim load --target sends the gateway key in AX_API_KEY (`ax keys create --user NAME` makes one)"
    fail(f"none of the {s['calls']} calls was served; the commonest reason ({reasons.get(why, 0)}x): {why}{hint}",
         code)


async def _load(rps: float, duration: float, wait_s: float, users: int, seed: int, target: str | None,
                strategy: str | None, as_json: bool) -> dict[str, object]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from axtui.engine import Gateway
    from axtui.engine.load import LoadSummary, run_load, workload_models
    from axtui.providers.sim.workload import Workload

    total = max(1, round(rps * duration))
    gateway = None if target else await Gateway.open(announce_demo=True)
    served = None if gateway is None else [*gateway.catalog.models(), *gateway.catalog.aliases]
    workload = Workload(seed=seed, users=users, models=workload_models(served))
    if gateway is not None:
        from axtui.metrics import attach_monitoring

        # Alert rules are evaluated while the load runs, as in a gateway.
        attach_monitoring(gateway)
        if strategy:
            _check_strategy(gateway, strategy)
    progress = Progress(
        TextColumn("[bold]load"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=err_console,
        disable=as_json,
        transient=True,
    )
    task = progress.add_task("calls", total=total, stats="")

    def on_progress(s: LoadSummary, sent: int) -> None:
        stats = f"ok {s.ok}  err {s.errors}  limited {s.rate_limited}  cached {s.cache_hits}  p50 {s.quantile(0.5):.0f} ms"
        progress.update(task, completed=s.calls, stats=stats)

    def on_waiting(in_flight: int, sending_s: float) -> None:
        if not as_json:
            progress.console.print(f"sent {total:,} calls in {sending_s:.1f} s; waiting up to {wait_s:g} s for the "
                                   f"{in_flight:,} answer{'s' if in_flight != 1 else ''} still coming (--wait)")

    try:
        with progress:
            summary = await run_load(workload, rps=rps, duration=duration, gateway=gateway, target=target,
                                     strategy=strategy, progress=on_progress, wait_s=wait_s, waiting=on_waiting)
    finally:
        if gateway is not None:
            await gateway.aclose()
    return summary.as_dict()


def _check_strategy(gateway: object, strategy: str) -> None:
    known = getattr(getattr(gateway, "router", None), "strategies", None)
    if known is not None and strategy not in known:
        from axtui.errors import ConfigError

        raise ConfigError(f"unknown routing strategy {strategy!r}; choose one of: {', '.join(sorted(known))}")


def _print_summary(s: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="ax sim load", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [
        ("calls", s["calls"]), ("served", s["ok"]), ("errors", s["errors"]), ("rate limited", s["rate_limited"]),
        ("budget refused", s["budget_refused"]), ("cache hits", f"{s['cache_hits']} ({float(s['hit_rate']):.0%})"),
        ("upstream calls", s["upstream_calls"]), ("p50 latency", f"{s['p50_ms']} ms"),
        ("p95 latency", f"{s['p95_ms']} ms"), ("cost", format_usd(Decimal(s["cost_usd"]))),
        ("wall time", f"{s['elapsed_s']} s: {s['sending_s']} s sending, {s['waiting_s']} s waiting for answers"),
        ("seed", f"{s['seed']} (--seed repeats this run)"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    by_provider = s.get("by_provider") or {}
    if by_provider:
        table.add_row("by provider", ", ".join(f"{k} {v}" for k, v in by_provider.items()))
    console.print(table)
    reasons = s.get("reasons") or {}
    for reason, count in reasons.items():
        console.print(f"not served ({count}x): {escape(str(reason))}", soft_wrap=True)
