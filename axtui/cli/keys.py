"""``ax keys``: the gateway's API keys (create, list, revoke)."""

from __future__ import annotations

import time
from typing import Any

import click

from axtui.cli._common import console, dump_json, err_console, fit_table, handle_errors


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else ""


def _key_json(info: Any) -> dict[str, Any]:
    from axtui.money import nanos_to_usd

    return {
        "id": info.id,
        "prefix": info.prefix,
        "user": info.user,
        "name": info.name,
        "rpm": info.rpm,
        "budget_usd": None if info.budget_nanos is None else str(nanos_to_usd(info.budget_nanos)),
        "trusted": info.trusted,
        "created": info.created,
        "revoked": info.revoked,
        "active": info.active,
    }


@click.group()
def keys() -> None:
    """Gateway API keys: create, list, revoke.

    Keys are stored hashed; a key is shown once, when it is made. Calls made
    with a key are limited, budgeted and cached as its user.
    """


@keys.command()
@click.option("--user", "-u", required=True, help="The user the key's calls count for (limits, budgets, cache).")
@click.option("--name", "-n", default="", help="A label to recognise the key by.")
@click.option("--rpm", type=click.IntRange(max=1_000_000_000), default=None, help="Requests per minute this key may make.")
@click.option("--budget", default=None, help="Dollars this key may spend per month (a hard budget), e.g. 25 or 12.50.")
@click.option("--trusted", is_flag=True,
              help="Let the key name its end users in the OpenAI `user` field; they are then limited too.")
@click.option("--json", "as_json", is_flag=True, help="Print the key and its details as JSON.")
@handle_errors
def create(user: str, name: str, rpm: int | None, budget: str | None, trusted: bool, as_json: bool) -> None:
    """Make a key for USER and print it (once: only its hash is kept).

    \b
    Examples:
      ax keys create --user alice --name laptop
      ax keys create --user team-a --rpm 60 --budget 25
      ax keys create --user app --trusted        # the app names its end users
    """
    from axtui.cost.budgets import parse_amount
    from axtui.errors import InvalidRequest
    from axtui.server.key_limits import apply_key_limits, check_key_limits
    from axtui.server.keys import create_key
    from axtui.store import Store

    budget_nanos = None
    if budget is not None:
        try:
            budget_nanos = parse_amount(budget)  # the same amounts `ax cost budget set` takes
        except ValueError as exc:
            raise InvalidRequest(f"--budget: {exc}", param="budget") from None
    if rpm is not None and rpm <= 0:
        raise InvalidRequest(f"--rpm {rpm}: give a positive number of requests per minute, e.g. --rpm 60")
    check_key_limits(rpm, budget_nanos)
    store = Store.open()
    try:
        raw, info = create_key(store, user, name=name, rpm=rpm, budget_nanos=budget_nanos, trusted=trusted)
        applied = apply_key_limits(store, info)
    finally:
        store.close()
    if as_json:
        dump_json({"key": raw, **_key_json(info), "applied": applied})
        return
    console.print(f"[bold]{raw}[/]", markup=True, soft_wrap=True)
    err_console.print(
        f"key {info.id} for user {info.user!r}{' (trusted)' if trusted else ''}; this is the only time it is shown. "
        "Send it as 'Authorization: Bearer <key>'.",
        markup=False,
    )
    for line in applied:
        err_console.print(line, markup=False)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per key).")
@click.option("--active", is_flag=True, help="Leave revoked keys out.")
@handle_errors
def list_(as_json: bool, active: bool) -> None:
    """Every key: id, prefix, user, name, limits, and whether it is revoked."""
    from rich.table import Table

    from axtui.money import format_usd
    from axtui.server.keys import list_keys
    from axtui.store import Store

    store = Store.open()
    try:
        infos = list_keys(store, include_revoked=not active)
    finally:
        store.close()
    if as_json:
        dump_json([_key_json(i) for i in infos])
        return
    if not infos:
        console.print("no keys yet; make one with `ax keys create --user NAME`")
        return
    table = Table(box=None, header_style="bold")
    # The id is what `ax keys revoke` takes: it is never cut, whatever the width.
    table.add_column("id", no_wrap=True, min_width=12)
    for column in ("prefix", "user", "name", "rpm", "budget", "trusted", "created", "status"):
        table.add_column(column)
    for i in infos:
        table.add_row(
            i.id,
            i.prefix,
            i.user,
            i.name,
            str(i.rpm) if i.rpm else "",
            format_usd(i.budget_nanos, nanos=True) if i.budget_nanos is not None else "",
            "yes" if i.trusted else "",
            _when(i.created),
            "active" if i.active else f"revoked {_when(i.revoked)}",
        )
    console.print(fit_table(table, keep=("id", "prefix", "user", "budget", "created"),
                            drop=("trusted", "prefix", "created", "rpm", "budget")))


@keys.command()
@click.argument("key_id")
@handle_errors
def revoke(key_id: str) -> None:
    """Revoke the key KEY_ID (its id, or the prefix `ax keys list` shows).

    A running server stops accepting it within server.key_cache_s seconds
    (2 by default).
    """
    from axtui.server.keys import revoke_key
    from axtui.store import Store

    store = Store.open()
    try:
        info = revoke_key(store, key_id)
    finally:
        store.close()
    console.print(f"revoked key {info.id} ({info.prefix}) of user {info.user!r}")
