"""``ax cache``: the response cache's figures and housekeeping, and measuring its matcher.

    ax cache stats [--since 24h] [--json]
    ax cache clear
    ax cache invalidate [--model M] [--provider P] [--user U] [--scope S] [--older-than 1h] [--key K]
    ax cache eval PAIRS.jsonl [--threshold T] [--embedder NAME] [--json]
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from axtui.cli._common import FiniteFloat, console, dump_json, handle_errors, open_store, run_async

if TYPE_CHECKING:
    from axtui.store import Store

__all__ = ["cache"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.IGNORECASE)
_UNIT_S = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}


class Duration(click.ParamType):  # type: ignore[type-arg]
    """A duration such as ``90s``, ``30m``, ``1h``, ``2d``, ``1h30m`` or plain seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION.findall(text)
            if not parts or _DURATION.sub("", text).strip():
                self.fail(f"{value!r} is not a duration; write it like 90s, 30m, 1h, 2d or 1h30m", param, ctx)
            seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
        # float() reads "nan" and "inf" too; neither is a span of time.
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a duration; write it like 90s, 30m, 1h, 2d or 1h30m", param, ctx)
        if seconds < 0:
            self.fail(f"{value!r} is negative; a duration counts back from now, e.g. 24h", param, ctx)
        return seconds


def _check_scope(value: str | None) -> str | None:
    """``global``, ``user:NAME`` or ``key:ID``; anything else matches nothing, so it is refused."""
    if value is None or value == "global":
        return value
    kind, _, name = value.partition(":")
    if kind not in ("user", "key") or not name:
        raise click.BadParameter(f"{value!r} is not a cache scope; write user:NAME, key:ID or global",
                                 param_hint="--scope")
    return value


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@click.group()
def cache() -> None:
    """The response cache: stats, clear, invalidate, eval."""


@cache.command()
@click.option("--since", "since", type=Duration(), default=None, help="Count calls of this recent period only (e.g. 24h).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def stats(since: float | None, as_json: bool) -> None:
    """Hits, misses, hit rate and saved cost (from the call log); entries, bytes, evictions."""
    from axtui.cache import stats as cache_stats

    store = open_store()
    try:
        figures = cache_stats(store, since=time.time() - since if since is not None else None)
    finally:
        store.close()
    if as_json:
        dump_json(figures.as_dict())
        return
    from axtui.money import format_usd

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("hits", f"{figures.hits:,} ({figures.exact_hits:,} exact, {figures.semantic_hits:,} semantic)")
    table.add_row("misses", f"{figures.misses:,}")
    table.add_row("hit rate", f"{figures.hit_rate:.1%}")
    table.add_row("saved", format_usd(figures.saved_usd))
    if figures.mean_similarity is not None:
        table.add_row("mean similarity", f"{figures.mean_similarity:.3f} (semantic hits)")
    table.add_row("entries", f"{figures.entries:,}")
    table.add_row("stored", _size(figures.bytes))
    table.add_row("evictions", f"{figures.evictions:,}")
    table.add_row("expired", f"{figures.expirations:,}")
    table.add_row("invalidated", f"{figures.invalidated:,}")
    if figures.corrupt:
        table.add_row("corrupt removed", f"{figures.corrupt:,}")
    if figures.index_entries is not None and figures.index_saved_at is not None:
        saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(figures.index_saved_at))
        table.add_row("semantic index", f"{figures.index_entries:,} entries, {figures.index_bytes_per_entry:,} B each "
                      f"(saved {saved})")
    console.print(table)
    if figures.by_model:
        per = Table(title="by requested model", title_justify="left")
        per.add_column("model")
        per.add_column("hits", justify="right")
        per.add_column("misses", justify="right")
        per.add_column("hit rate", justify="right")
        for model, row in sorted(figures.by_model.items(), key=lambda kv: -(kv[1]["hits"] + kv[1]["misses"])):
            total = row["hits"] + row["misses"]
            per.add_row(model, f"{row['hits']:,}", f"{row['misses']:,}", f"{row['hits'] / total:.1%}" if total else "-")
        console.print(per)


@cache.command()
@handle_errors
def clear() -> None:
    """Remove every cached answer (running gateways stop serving them from their next call)."""
    from axtui.cache import clear as cache_clear

    store = open_store()
    try:
        removed = cache_clear(store)
        applies = _applies(store)
    finally:
        store.close()
    console.print(f"removed {removed:,} cached {'answer' if removed == 1 else 'answers'}{applies}")


@cache.command()
@click.option("--model", help="Entries for this requested model or alias, or answered by this model.")
@click.option("--provider", help="Entries answered by this provider.")
@click.option("--user", help="Entries stored for this user.")
@click.option("--scope", callback=lambda _ctx, _param, value: _check_scope(value),
              help="Entries of this scope: user:NAME, key:ID or global.")
@click.option("--older-than", "older_than", type=Duration(), help="Entries stored longer ago than this (e.g. 1h).")
@click.option("--key", help="The entry with this cache key (or key prefix, 8 hex digits at least).")
@handle_errors
def invalidate(
    model: str | None,
    provider: str | None,
    user: str | None,
    scope: str | None,
    older_than: float | None,
    key: str | None,
) -> None:
    """Remove the cached answers that match every filter given."""
    from axtui.cache import invalidate as cache_invalidate

    store = open_store()
    try:
        removed = cache_invalidate(
            store, model=model, provider=provider, user=user, scope=scope, older_than_s=older_than, key=key
        )
        applies = _applies(store)
    finally:
        store.close()
    console.print(f"removed {removed:,} cached {'answer' if removed == 1 else 'answers'}{applies}")


def _applies(store: Store) -> str:
    """When running gateways stop serving what was removed."""
    # A SQLite file is only ever used on this machine, where the change's marker reaches every gateway.
    elsewhere = "" if store.is_sqlite else ", on other machines within a second"
    return f"; running gateways stop serving them from their next call{elsewhere}"


@cache.command(name="eval")
@click.argument("pairs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--threshold", type=FiniteFloat(0, 1, min_open=True), default=None,
              help="Similarity a hit needs (default: the configured [cache] threshold).")
@click.option("--embedder", default=None,
              help="builtin, provider (the configured embedding model), or any embedding model the gateway serves "
                   "(default: the configured embedder).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def eval_(pairs: Path, threshold: float | None, embedder: str | None, as_json: bool) -> None:
    """Measure semantic matching on labelled pairs: precision, recall, false hits, a threshold sweep.

    PAIRS is JSON Lines, one {"a": "...", "b": "...", "same": true|false} a line.
    """
    from axtui.cache import embedder_model, evaluate, make_embedder, read_pairs
    from axtui.config import load_settings
    from axtui.errors import ConfigError

    settings = load_settings()
    labelled = read_pairs(pairs)
    configured = embedder_model(settings.cache)
    if embedder == "provider" and configured is None:
        raise ConfigError('--embedder provider uses the cache setting embedder_model, which is not set; name a model instead, '
                          "like --embedder text-embedding-3-small")
    name: str = configured if configured is not None and embedder == "provider" else (
        embedder or configured or "builtin"
    )
    t = threshold if threshold is not None else settings.cache.threshold

    async def run() -> Any:
        if name == "builtin":
            return await evaluate(labelled, make_embedder(name, None), threshold=t)
        from axtui.engine.gateway import Gateway

        async with await Gateway.open(settings) as gateway:

            async def embed(texts: list[str], model: str, caller: Any) -> list[list[float]]:
                return (await gateway.embed(texts, model, caller)).vectors

            gateway.catalog.resolve_embedding(name)  # an unknown model fails here, listing the served ones
            return await evaluate(labelled, make_embedder(name, embed), threshold=t)

    report = run_async(run())
    if as_json:
        dump_json(report.as_dict())
        return
    _print_report(report)


def _print_report(report: Any) -> None:
    s = report.summary
    same = sum(r.pair.same for r in report.results)
    console.print(
        f"embedder [bold]{report.embedder}[/] · {len(report.results)} pairs ({same} same, "
        f"{len(report.results) - same} different) · threshold {report.threshold:g}"
    )
    colour = "green" if s.false_hits == 0 else "red"
    console.print(
        f"precision [bold]{s.precision:.3f}[/]   recall [bold]{s.recall:.3f}[/]   "
        f"false hits [bold {colour}]{s.false_hits}[/] (without guards: {s.false_hits_without_guards})"
    )
    best = report.suggested_threshold()
    if best is None:
        console.print("[red]every threshold swept gives false hits: this embedder is not safe on these pairs[/]")
    else:
        console.print(f"suggested threshold: [bold]{best:g}[/] (the best recall with no false hit)")
    table = Table(title="threshold sweep", title_justify="left")
    for col in ("threshold", "precision", "recall", "hits", "false hits", "without guards"):
        table.add_column(col, justify="right")
    for row in report.sweep:
        mark = "bold" if row.threshold == report.threshold else ""
        table.add_row(f"{row.threshold:g}", f"{row.precision:.3f}", f"{row.recall:.3f}", str(row.hits),
                      str(row.false_hits), str(row.false_hits_without_guards), style=mark)
    console.print(table)
    wrong = report.false_hits()
    if wrong:
        console.print(f"[red]false hits at {report.threshold:g}:[/]")
        for r in wrong:
            console.print(f"  line {r.pair.line}: {r.similarity:.3f}  {r.pair.label(r.pair.a)!r} ~ {r.pair.label(r.pair.b)!r}")
    missed = report.missed()
    if missed:
        console.print(f"missed at {report.threshold:g} ({len(missed)}; the closest first):")
        for r in sorted(missed, key=lambda r: -r.similarity)[:10]:
            why = f" [{r.guard}]" if r.guard else ""
            console.print(f"  line {r.pair.line}: {r.similarity:.3f}{why}  {r.pair.label(r.pair.a)!r} ~ {r.pair.label(r.pair.b)!r}")
