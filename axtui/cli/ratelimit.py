"""``ax ratelimit``: see, set and reset rate limits, and edit their defaults."""

from __future__ import annotations

from typing import Any

import click

from axtui.cli._common import FiniteFloat, console, dump_json, fit_table, handle_errors, run_async
from axtui.errors import InvalidRequest

__all__ = ["ratelimit"]

_SCOPES = click.Choice(["user", "key", "provider", "global"])
_ALGORITHMS = click.Choice(["token-bucket", "sliding-window"])


@click.group()
def ratelimit() -> None:
    """Rate limits: status, set, reset, delete, config.

    A limit is written 60/minute, 1000/hour, 100000/day (or 10/30seconds).
    Defaults per scope live in the config ([ratelimit]); limits set for one
    user, key or provider live in the database, so every ax process on this
    machine (and every replica, with Redis) enforces them.
    """


@ratelimit.command()
@click.option("--user", "-u", default=None, help="Only the limits that apply to this user (global and theirs).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def status(user: str | None, as_json: bool) -> None:
    """Each limit, how much of it is used, what is left, and when it is full again.

    \b
    Examples:
      ax ratelimit status
      ax ratelimit status --user alice --json
    """
    run_async(_status(user, as_json))


async def _status(user: str | None, as_json: bool) -> None:
    from axtui.ratelimit.factory import effective_backend, open_limiter

    settings = _settings()
    backend, _ = effective_backend(settings.ratelimit)
    async with open_limiter(settings) as limiter:
        rows = await limiter.status(user=user)
    if as_json:
        dump_json({"backend": backend, "limits": [r.to_dict() for r in rows]})
        return
    if not rows:
        who = f"user {user!r}" if user else "any caller"
        console.print(f"No rate limit applies to {who}. Set one with [bold]ax ratelimit set alice 60/minute[/] "
                      "or a default with [bold]ax ratelimit config --user-requests 60/minute[/].")
        return
    from rich import box
    from rich.table import Table

    from axtui.ratelimit.parse import format_refill

    table = Table(title=f"Rate limits ({backend} backend)", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True, padding=(0, 1))
    widest = max(len(r.label) for r in rows)
    table.add_column("Subject", min_width=min(widest, 16), overflow="fold")  # fit_table keeps it whole
    for name in ("Unit", "Limit", "Used", "Left", "Refill", "Algorithm"):
        # Everything but the subject (long user names) stays on one line.
        table.add_column(name, justify="left" if name in ("Unit", "Algorithm") else "right", no_wrap=True)
    for r in rows:
        algorithm = "bucket" if r.algorithm == "token-bucket" else "window"
        if r.burst is not None and r.burst != r.amount:
            algorithm += f", burst {r.burst:,}"
        table.add_row(
            r.label, r.unit, r.limit,
            "—" if r.used is None else f"{r.used:,}",
            "—" if r.remaining is None else f"{r.remaining:,}",
            "—" if r.reset_after is None else format_refill(r.reset_after),
            algorithm,
        )
    console.print(fit_table(table, keep=("Subject", "Unit", "Limit", "Used", "Left", "Refill"),
                            drop=("Algorithm", "Refill", "Used")))
    if any(r.subject == "*" for r in rows):
        console.print("[dim]user:* and key:* are the defaults each user and each key gets (ax ratelimit config).[/]")
    if backend == "memory":
        console.print("[dim]The memory backend keeps counters inside each ax process; this command's own are shown. "
                      "Use the store or Redis backend to share them.[/]")
    if user is not None and not any(r.scope == "user" for r in rows):
        console.print(f"[dim]No limit of its own applies to user {user!r}.[/]")


# A negative limit (-3/minute) reaches the limit's own check instead of reading as an option.
@ratelimit.command(name="set", context_settings={"ignore_unknown_options": True})
@click.argument("subject")
@click.argument("limit")
@click.option("--tokens", default=None, metavar="LIMIT", help="A token limit too, e.g. 100000/minute.")
@click.option("--scope", type=_SCOPES, default=None, help="What SUBJECT names (default: user, or SCOPE:NAME).")
@click.option("--algorithm", type=_ALGORITHMS, default=None, help="Default: the configured one (token-bucket).")
@click.option("--burst", type=int, default=None, metavar="N", help="Token bucket: how many requests may go at once "
              "(default: the limit itself).")
@click.option("--json", "as_json", is_flag=True, help="Print the stored limit as JSON.")
@handle_errors
def set_limit(
    subject: str, limit: str, tokens: str | None, scope: str | None, algorithm: str | None, burst: int | None,
    as_json: bool,
) -> None:
    """Give SUBJECT a limit of its own, replacing the default for its scope.

    SUBJECT is a user (alice), or SCOPE:NAME (key:k_1, provider:openai), or
    global. LIMIT is the request limit; `unlimited` lifts the default and
    `default` keeps it (to set only --tokens). Options left out keep what
    was set before.

    \b
    Examples:
      ax ratelimit set alice 60/minute --tokens 100000/minute
      ax ratelimit set alice 10/minute --algorithm sliding-window
      ax ratelimit set openai 500/minute --scope provider --tokens 200000/minute
      ax ratelimit set global 1000/minute --burst 100
    """
    run_async(_set(subject, limit, tokens, scope, algorithm, burst, as_json))


async def _set(
    subject: str, limit: str, tokens: str | None, scope: str | None, algorithm: str | None, burst: int | None,
    as_json: bool,
) -> None:
    from axtui.ratelimit.factory import open_limiter
    from axtui.ratelimit.rules import describe_subject

    settings = _settings()
    async with open_limiter(settings) as limiter:
        stored = await limiter.set_limit(subject, limit, tokens, scope=scope, algorithm=algorithm, burst=burst)
        subj = (stored.scope, stored.subject)
        rows = await limiter.status(subjects=[subj])
    if as_json:
        dump_json({"stored": stored.to_dict(), "limits": [r.to_dict() for r in rows]})
        return
    label = describe_subject(subj)
    if not rows:
        console.print(f"{label}: stored — no limit applies to it now (unlimited)")
    for r in rows:
        extra = f", burst {r.burst:,}" if r.burst is not None and r.burst != r.amount else ""
        console.print(f"{label}: {r.limit} {r.unit} ({r.algorithm}{extra}) — {r.remaining:,} left now")
    console.print(f"[dim]Stored in the database; running ax processes on this machine apply it from their next "
                  f"request, on other machines within {settings.ratelimit.poll_s:g}s.[/]")


@ratelimit.command()
@click.argument("subject")
@click.option("--scope", type=_SCOPES, default=None, help="What SUBJECT names (default: user, or SCOPE:NAME).")
@handle_errors
def reset(subject: str, scope: str | None) -> None:
    """Forget what SUBJECT has used: its full quota is available again.

    \b
    Examples:
      ax ratelimit reset alice
      ax ratelimit reset provider:openai
    """
    run_async(_reset(subject, scope))


async def _reset(subject: str, scope: str | None) -> None:
    from axtui.ratelimit.factory import effective_backend, open_limiter
    from axtui.ratelimit.rules import describe_subject

    settings = _settings()
    backend, _ = effective_backend(settings.ratelimit)
    async with open_limiter(settings) as limiter:
        subj = await limiter.reset(subject, scope=scope)
    console.print(f"{describe_subject(subj)}: usage reset; its full quota is available again")
    if backend == "memory":
        console.print("[dim]The memory backend keeps counters inside each ax process: a running `ax serve` keeps "
                      "its own; restart it (or use the store backend) to reset those.[/]")


@ratelimit.command()
@click.argument("subject")
@click.option("--scope", type=_SCOPES, default=None, help="What SUBJECT names (default: user, or SCOPE:NAME).")
@handle_errors
def delete(subject: str, scope: str | None) -> None:
    """Remove SUBJECT's own limit; the defaults for its scope apply again.

    \b
    Example:
      ax ratelimit delete alice
    """
    run_async(_delete(subject, scope))


async def _delete(subject: str, scope: str | None) -> None:
    from axtui.ratelimit.factory import open_limiter
    from axtui.ratelimit.rules import describe_subject, parse_subject

    try:
        subj = parse_subject(subject, scope)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    async with open_limiter(_settings()) as limiter:
        gone = await limiter.delete_limit(subj)
    label = describe_subject(subj)
    console.print(f"{label}: limit removed; the defaults apply" if gone else f"{label} had no limit of its own")


_DEFAULT_FIELDS = ("global_requests", "global_tokens", "user_requests", "user_tokens", "key_requests", "key_tokens")


@ratelimit.command()
@click.option("--backend", type=click.Choice(["store", "memory", "redis", "auto"]), default=None,
              help="Where counters live (auto: redis when a Redis URL is set, else store).")
@click.option("--redis-url", default=None, help="Redis for the redis backend (AX_REDIS_URL wins); `none` to clear.")
@click.option("--algorithm", type=_ALGORITHMS, default=None, help="The default algorithm.")
@click.option("--global-requests", default=None, metavar="LIMIT", help="For all calls together.")
@click.option("--global-tokens", default=None, metavar="LIMIT")
@click.option("--user-requests", default=None, metavar="LIMIT", help="For each user.")
@click.option("--user-tokens", default=None, metavar="LIMIT")
@click.option("--key-requests", default=None, metavar="LIMIT", help="For each API key.")
@click.option("--key-tokens", default=None, metavar="LIMIT")
@click.option("--provider-requests", multiple=True, metavar="NAME=LIMIT", help="For one provider (repeatable).")
@click.option("--provider-tokens", multiple=True, metavar="NAME=LIMIT")
@click.option("--poll", "poll_s", type=FiniteFloat(min=0.01, max=300), default=None,
              help="Seconds between running engines' checks for per-subject limits changed on other machines.")
@click.option("--json", "as_json", is_flag=True, help="Print the effective configuration as JSON.")
@handle_errors
def config(as_json: bool, **changes: Any) -> None:
    """Show the effective rate-limit configuration, or change its defaults.

    A LIMIT of `unlimited` (or `none`) removes that default. Nothing is
    written unless every value is valid.

    \b
    Examples:
      ax ratelimit config
      ax ratelimit config --user-requests 60/minute --user-tokens 100000/minute
      ax ratelimit config --provider-requests openai=500/minute --algorithm sliding-window
      ax ratelimit config --backend redis --redis-url redis://127.0.0.1:6379/0
    """
    from axtui.config import load_settings, save_settings

    settings = load_settings()
    edits = {k: v for k, v in changes.items() if v not in (None, ())}
    if edits:
        before = settings.ratelimit.model_dump(mode="json")
        settings.ratelimit = _edited(settings.ratelimit, edits)
        path = save_settings(settings)
        _audit_config(before, settings.ratelimit.model_dump(mode="json"))
        if not as_json:
            console.print(f"Saved to {path}")
    run_async(_show_config(settings, as_json))


def _audit_config(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Record a change of the default limits in the audit trail (a Redis URL's password never)."""
    from axtui.cli._common import open_store
    from axtui.store.audit import record_change

    store = open_store()
    try:
        record_change(store, "ratelimit.config", "config:ratelimit", before, after)
    finally:
        store.close()


def _edited(current: Any, edits: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from axtui.config import RateLimitConfig
    from axtui.ratelimit.parse import parse_limit_value

    data = current.model_dump()
    for name, value in edits.items():
        if name in _DEFAULT_FIELDS:
            data[name] = _limit_or_none(name, value, parse_limit_value)
        elif name in ("provider_requests", "provider_tokens"):
            table = dict(data[name])
            for item in value:
                provider, sep, text = item.partition("=")
                if not sep or not provider.strip():
                    raise InvalidRequest(f"--{name.replace('_', '-')} {item!r}: write NAME=LIMIT, "
                                         "e.g. openai=500/minute (or openai=unlimited to remove it)")
                limit = _limit_or_none(f"{name} {provider}", text, parse_limit_value)
                if limit is None:
                    table.pop(provider.strip(), None)
                else:
                    table[provider.strip()] = limit
            data[name] = table
        elif name == "backend":
            data["backend"] = None if value == "auto" else value
        elif name == "redis_url":
            data["redis_url"] = None if value.strip().lower() in ("none", "") else value.strip()
        else:
            data[name] = value
    try:
        edited = RateLimitConfig.model_validate(data)
    except ValidationError as exc:
        from axtui.validation import field_problems, problems_text

        problems = problems_text(field_problems(exc), most=None)
        raise InvalidRequest(f"nothing was saved: {problems}") from None
    from axtui.ratelimit.factory import effective_backend

    effective_backend(edited)  # a redis backend without a URL is refused before anything is written
    return edited


def _limit_or_none(name: str, text: str, parse: Any) -> str | None:
    try:
        value = parse(text)
    except ValueError as exc:
        raise InvalidRequest(f"--{name.split(' ')[0].replace('_', '-')}: {exc}; nothing was saved") from None
    if value in ("unlimited", "default"):
        return None
    return str(value.text)


async def _show_config(settings: Any, as_json: bool) -> None:
    from axtui import locations
    from axtui.ratelimit.backends.redis import redact_url
    from axtui.ratelimit.factory import effective_backend

    rl = settings.ratelimit
    backend, url = effective_backend(rl)
    stored = await _stored_limits()
    data = {
        "config_file": str(locations.config_path()),
        "backend": backend,
        "backend_setting": rl.backend or "auto",
        "redis_url": redact_url(url) if url else None,
        "algorithm": rl.algorithm,
        "defaults": {name: getattr(rl, name) for name in _DEFAULT_FIELDS},
        "provider_requests": dict(rl.provider_requests),
        "provider_tokens": dict(rl.provider_tokens),
        "poll_s": rl.poll_s,
        "stored_limits": [s.to_dict() for s in stored],
    }
    if as_json:
        dump_json(data)
        return
    console.print(f"[bold]Rate limits[/] ({data['config_file']})")
    how = "" if rl.backend else " (auto)"
    console.print(f"  backend     {backend}{how}" + (f"  {data['redis_url']}" if backend == "redis" else ""))
    console.print(f"  algorithm   {rl.algorithm}")
    for scope in ("global", "user", "key"):
        req, tok = getattr(rl, f"{scope}_requests"), getattr(rl, f"{scope}_tokens")
        each = "" if scope == "global" else " each"
        console.print(f"  {scope + each:<11} requests {req or 'unlimited'}, tokens {tok or 'unlimited'}")
    for name in sorted(set(rl.provider_requests) | set(rl.provider_tokens)):
        console.print(f"  provider {name}: requests {rl.provider_requests.get(name, 'unlimited')}, "
                      f"tokens {rl.provider_tokens.get(name, 'unlimited')}")
    if stored:
        console.print(f"  {len(stored)} per-subject limit(s) in the database (see `ax ratelimit status`)")
    else:
        console.print("  no per-subject limits (set one with `ax ratelimit set alice 60/minute`)")


async def _stored_limits() -> list[Any]:
    import asyncio

    from axtui.ratelimit.rules import StoredLimit
    from axtui.store.tables_ratelimit import read_limits

    def read() -> list[StoredLimit]:
        from axtui.store import Store

        store = Store.open()
        try:
            return [StoredLimit(r.scope, r.subject, r.requests, r.tokens, r.algorithm, r.burst, r.updated_at)
                    for r in read_limits(store)]
        finally:
            store.close()

    return await asyncio.to_thread(read)


def _settings() -> Any:
    from axtui.config import load_settings

    return load_settings()



