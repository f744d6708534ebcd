"""``ax keys``: the gateway's API keys (create, list, update, rotate, revoke).

Every change is recorded in the audit trail (`ax audit`) under the local OS user.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from axtui.cli._common import console, dump_json, err_console, fit_table, handle_errors

F = TypeVar("F", bound=Callable[..., Any])


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else ""


def _day(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(ts)) if ts else ""


def _policy_options(fn: F) -> F:
    """The options `create` and `update` share."""
    options = [
        click.option("--team", "-t", default=None, help="The team the key's calls count for (`ax teams create`)."),
        click.option("--models", "-m", default=None,
                     help='Globs of the models the key may call, e.g. "gpt-4o*,fast" (an alias only if its '
                          'models are allowed).'),
        click.option("--expires", default=None, help="When the key stops working: 30d, 12h, or a date (2027-01-31)."),
        click.option("--rpm", type=click.IntRange(max=1_000_000_000), default=None,
                     help="Requests per minute this key may make."),
        click.option("--tpm", type=click.IntRange(max=10_000_000_000), default=None,
                     help="Tokens per minute this key may use."),
        click.option("--budget", default=None,
                     help="Dollars this key may spend per month (a hard budget), e.g. 25 or 12.50."),
        click.option("--tags", default=None, help="Tags added to every call made with the key, e.g. app,prod."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _store() -> Any:
    from axtui.store import Store

    return Store.open()


@click.group()
def keys() -> None:
    """Gateway API keys: create, list, update, rotate, revoke.

    Keys are stored hashed; a key is shown once, when it is made or
    rotated. Calls made with a key are limited, budgeted and cached as its
    user (and its team). Every change lands in `ax audit`.
    """


@keys.command()
@click.option("--user", "-u", required=True, help="The user the key's calls count for (limits, budgets, cache).")
@click.option("--name", "-n", default="", help="A label to recognise the key by.")
@_policy_options
@click.option("--trusted", is_flag=True,
              help="Let the key name its end users in the OpenAI `user` field; they are then limited too.")
@click.option("--json", "as_json", is_flag=True, help="Print the key and its details as JSON.")
@handle_errors
def create(user: str, name: str, trusted: bool, as_json: bool, **policy: Any) -> None:
    """Make a key for USER and print it (once: only its hash is kept).

    \b
    Examples:
      ax keys create --user alice --name laptop
      ax keys create --user team-a --rpm 60 --budget 25
      ax keys create --user bob --team red --models "gpt-4o*,fast" --expires 30d
      ax keys create --user app --trusted        # the app names its end users
    """
    from axtui.server.key_admin import create as create_key
    from axtui.server.key_admin import key_json
    from axtui.store.audit import cli_actor

    store = _store()
    try:
        raw, info, applied = create_key(store, user, {**policy, "name": name, "trusted": trusted},
                                        actor=cli_actor(), via="cli")
    finally:
        store.close()
    if as_json:
        dump_json({"key": raw, **key_json(info), "applied": applied})
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
    """Every key: id, user, team, models, limits, spend this month (and budget use), expiry, status."""
    from rich.table import Table

    from axtui.governance.standing import Standing, spent_text, standing_json, standings
    from axtui.money import format_usd
    from axtui.server.key_admin import key_json
    from axtui.server.keys import list_keys

    store = _store()
    try:
        infos = list_keys(store, include_revoked=not active)
        standing = standings(store, "key", time.time())
    finally:
        store.close()
    if as_json:
        dump_json([{**key_json(i), **standing_json(standing.get(i.id, Standing()))} for i in infos])
        return
    if not infos:
        console.print("no keys yet; make one with `ax keys create --user NAME`")
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "status", "user", "name", "team", "models", "rpm", "tpm", "budget", "spent", "expires"):
        table.add_column(column, overflow="fold")
    now = time.time()
    for i in infos:
        if not i.active:
            status = f"revoked {_day(i.revoked)}"
        elif i.expired(now):
            status = "expired"
        else:
            grace = i.prev_until is not None and i.prev_until > now
            status = f"active, old till {time.strftime('%H:%M', time.localtime(i.prev_until))}" if grace else "active"
        table.add_row(
            i.id,
            status,
            i.user + (" (trusted)" if i.trusted else ""),
            i.name,
            i.team or "",
            ",".join(i.models) if i.models else "any",
            str(i.rpm) if i.rpm else "",
            str(i.tpm) if i.tpm else "",
            format_usd(i.budget_nanos, nanos=True) if i.budget_nanos is not None else "",
            spent_text(standing.get(i.id, Standing())),
            _day(i.expires),
        )
    # The id is what `ax keys revoke` takes; money and dates are never wrapped or cut. A status wraps between
    # its words ("revoked" over its date), a very long user name folds. Where 80 columns are too few, the
    # policy columns step aside (--json has them all).
    console.print(fit_table(table, keep=("id", "rpm", "tpm", "budget", "spent", "expires"),
                            drop=("name", "tpm", "rpm", "budget", "team", "models"), drop_empty=True))


@keys.command()
@click.argument("key_id")
@click.option("--name", "-n", default=None, help="A new label.")
@_policy_options
@handle_errors
def update(key_id: str, name: str | None, **policy: Any) -> None:
    """Change the policy of the key KEY_ID.

    --models "", --team "", --tags "" and --expires never clear them. A
    running server applies the change within server.key_cache_s seconds.

    \b
    Examples:
      ax keys update 3f2a9c0d1e4b --models "gpt-4o-mini" --expires 7d
      ax keys update 3f2a9c0d1e4b --rpm 120 --budget 50
    """
    from axtui.server.key_admin import update as update_key
    from axtui.store.audit import cli_actor

    changes = {f: v for f, v in {**policy, "name": name}.items() if v is not None}
    store = _store()
    try:
        info, applied = update_key(store, key_id, changes, actor=cli_actor(), via="cli")
    finally:
        store.close()
    console.print(f"updated key {info.id} of user {info.user!r}", markup=False)
    for line in applied:
        err_console.print(line, markup=False)


@keys.command()
@click.argument("key_id")
@click.option("--grace", default=None, help="How long the old secret keeps working, e.g. 1h (default: not at all).")
@click.option("--json", "as_json", is_flag=True, help="Print the new key and its details as JSON.")
@handle_errors
def rotate(key_id: str, grace: str | None, as_json: bool) -> None:
    """Give the key KEY_ID a new secret and print it (once).

    Its id, user, team, limits and spend stay; the old secret stops at once,
    or when --grace ends.
    """
    from axtui.server.key_admin import key_json
    from axtui.server.key_admin import rotate as rotate_key
    from axtui.store.audit import cli_actor

    store = _store()
    try:
        raw, info = rotate_key(store, key_id, grace, actor=cli_actor(), via="cli")
    finally:
        store.close()
    if as_json:
        dump_json({"key": raw, **key_json(info)})
        return
    console.print(f"[bold]{raw}[/]", markup=True, soft_wrap=True)
    until = f"until {_when(info.prev_until)}" if info.prev_until else "no longer"
    err_console.print(f"key {info.id} rotated; this is the only time the new key is shown. The old one works {until}.",
                      markup=False)


@keys.command()
@click.argument("key_id")
@handle_errors
def revoke(key_id: str) -> None:
    """Revoke the key KEY_ID (its id, or the prefix `ax keys list` shows).

    A running server stops accepting it within server.key_cache_s seconds
    (2 by default).
    """
    from axtui.server.key_admin import revoke as revoke_key
    from axtui.store.audit import cli_actor

    store = _store()
    try:
        info = revoke_key(store, key_id, actor=cli_actor(), via="cli")
    finally:
        store.close()
    console.print(f"revoked key {info.id} ({info.prefix}) of user {info.user!r}")
