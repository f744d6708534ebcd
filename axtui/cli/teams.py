"""``ax teams``: teams with members, a budget, limits and allowed models.

Every change is recorded in the audit trail (`ax audit`) under the local OS user.
"""

from __future__ import annotations

from typing import Any

import click

from axtui.cli._common import console, dump_json, fit_table, handle_errors


def _store() -> Any:
    from axtui.store import Store

    return Store.open()


@click.group()
def teams() -> None:
    """Teams: a team's budget and limits hold for all its members' calls (scope team:NAME).

    A call counts for its key's team (`ax keys create --team`), else for the
    team of the key's user (`ax teams add-user`). A user is in one team at most.
    """


@teams.command()
@click.argument("name")
@click.option("--budget", default=None, help="Dollars the team may spend per period, e.g. 500.")
@click.option("--period", type=click.Choice(["day", "week", "month", "total"]), default=None,
              help="The budget's period (month by default).")
@click.option("--hard", is_flag=True, help="Refuse calls that would pass the budget (otherwise it only alerts).")
@click.option("--rpm", type=click.IntRange(max=1_000_000_000), default=None, help="Requests per minute for the team.")
@click.option("--tpm", type=click.IntRange(max=10_000_000_000), default=None, help="Tokens per minute for the team.")
@click.option("--models", default=None, help='Globs of the models the team\'s keys may call, e.g. "gpt-4o*,claude-*".')
@click.option("--json", "as_json", is_flag=True, help="Print the team as JSON.")
@handle_errors
def create(name: str, budget: str | None, period: str | None, hard: bool, rpm: int | None, tpm: int | None,
           models: str | None, as_json: bool) -> None:
    """Make the team NAME.

    \b
    Examples:
      ax teams create red --budget 500 --period month --hard --rpm 600
      ax teams create interns --models "gpt-4o-mini,fast"
    """
    from axtui.cost.budgets import parse_amount
    from axtui.errors import InvalidRequest
    from axtui.governance.teams import create_team
    from axtui.store.audit import cli_actor

    budget_nanos = None
    if budget is not None:
        try:
            budget_nanos = parse_amount(budget)
        except ValueError as exc:
            raise InvalidRequest(f"--budget: {exc}", param="budget") from None
    store = _store()
    try:
        info = create_team(store, name, budget_nanos=budget_nanos, period=period, hard=hard, rpm=rpm, tpm=tpm,
                           models=models, actor=cli_actor(), via="cli")
    finally:
        store.close()
    if as_json:
        dump_json(info.to_json())
        return
    console.print(f"team {info.name} made; add people with `ax teams add-user {info.name} USER`", markup=False)


@teams.command("add-user")
@click.argument("team")
@click.argument("user")
@handle_errors
def add_user(team: str, user: str) -> None:
    """Put USER in TEAM: their keys' calls count for the team."""
    from axtui.governance.teams import add_user as add
    from axtui.store.audit import cli_actor

    store = _store()
    try:
        info = add(store, team, user, actor=cli_actor(), via="cli")
    finally:
        store.close()
    console.print(f"team {info.name}: {', '.join(info.members)}", markup=False)


@teams.command("remove-user")
@click.argument("team")
@click.argument("user")
@handle_errors
def remove_user(team: str, user: str) -> None:
    """Take USER out of TEAM."""
    from axtui.governance.teams import remove_user as remove
    from axtui.store.audit import cli_actor

    store = _store()
    try:
        info = remove(store, team, user, actor=cli_actor(), via="cli")
    finally:
        store.close()
    console.print(f"team {info.name}: {', '.join(info.members) or '(no members)'}", markup=False)


@teams.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per team).")
@handle_errors
def list_(as_json: bool) -> None:
    """Every team: members, budget, spend this month (and budget use), limits and allowed models."""
    import time

    from rich.table import Table

    from axtui.governance.standing import Standing, spent_text, standing_json, standings
    from axtui.governance.teams import list_teams
    from axtui.money import format_usd

    store = _store()
    try:
        infos = list_teams(store)
        standing = standings(store, "team", time.time())
    finally:
        store.close()
    if as_json:
        dump_json([{**i.to_json(), **standing_json(standing.get(i.name, Standing()))} for i in infos])
        return
    if not infos:
        console.print("no teams yet; make one with `ax teams create NAME`")
        return
    table = Table(box=None, header_style="bold")
    for column in ("team", "members", "budget", "spent", "rpm", "tpm", "models"):
        table.add_column(column, overflow="fold")
    for i in infos:
        budget = ""
        if i.budget_nanos is not None:
            budget = f"{format_usd(i.budget_nanos, nanos=True)}/{i.period}{' hard' if i.hard else ''}"
        table.add_row(i.name, ", ".join(i.members), budget, spent_text(standing.get(i.name, Standing())),
                      str(i.rpm or ""), str(i.tpm or ""),
                      ",".join(i.models) if i.models else "any")
    # As `ax keys list`: money never wraps, a column nobody has a value in goes, members and models wrap.
    console.print(fit_table(table, keep=("team", "budget", "spent", "rpm", "tpm"), drop=("tpm", "rpm"),
                            drop_empty=True))


@teams.command()
@click.argument("name")
@handle_errors
def delete(name: str) -> None:
    """Delete the team NAME, its budget and its limits (its members stay users)."""
    from axtui.governance.teams import delete_team
    from axtui.store.audit import cli_actor

    store = _store()
    try:
        delete_team(store, name, actor=cli_actor(), via="cli")
    finally:
        store.close()
    console.print(f"team {name} deleted", markup=False)
