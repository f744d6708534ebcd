"""Teams: a name, members, a model allow-list, and a budget and limits that are scopes like any other.

A team's budget is stored with the budgets (scope ``team:NAME``) and its
rpm/tpm with the rate limits (subject ``team:NAME``), so the engine
reserves and admits against them exactly as for a user or a key; the
allow-list is checked with the key's (`axtui.governance.policy`). A call's
team is its key's, else the team of its key's user: a user is in at most
one team, so it is never ambiguous. Every change is audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.errors import InvalidRequest
from axtui.governance.policy import format_globs, parse_globs
from axtui.money import nanos_to_usd
from axtui.server.keys import key_marker
from axtui.store import Store, audit
from axtui.store.tables_governance import Team, TeamMember
from axtui.store.tables_keys import GatewayKey

__all__ = ["TeamInfo", "add_user", "create_team", "delete_team", "get_team", "list_teams", "remove_user"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_USER_RE = re.compile(r"^[^\s,\x00-\x1f\x7f-\x9f]{1,256}$")
_PERIODS = ("day", "week", "month", "total")


@dataclass(frozen=True, slots=True)
class TeamInfo:
    """One team and its members."""

    name: str
    members: tuple[str, ...]
    models: tuple[str, ...] | None
    budget_nanos: int | None
    period: str | None
    hard: bool
    rpm: int | None
    tpm: int | None
    created: float

    def to_json(self) -> dict[str, Any]:
        """The team as plain JSON."""
        return {
            "name": self.name, "members": list(self.members),
            "models": list(self.models) if self.models is not None else None,
            "budget_usd": None if self.budget_nanos is None else str(nanos_to_usd(self.budget_nanos)),
            "period": self.period, "hard": self.hard, "rpm": self.rpm, "tpm": self.tpm, "created": self.created,
        }


def _info(row: Team, members: list[str]) -> TeamInfo:
    return TeamInfo(name=row.name, members=tuple(sorted(members)), models=parse_globs(row.models),
                    budget_nanos=row.budget_nanos, period=row.period, hard=row.hard, rpm=row.rpm, tpm=row.tpm,
                    created=row.created)


def _no_team(name: str) -> InvalidRequest:
    return InvalidRequest(f"no team is named {name!r}; `ax teams list` shows them", param="team")


def get_team(store: Store, name: str) -> TeamInfo | None:
    """A team by name, with its members."""
    with store.session() as session:
        row = session.get(Team, name)
        if row is None:
            return None
        members = list(session.scalars(select(TeamMember.user).where(TeamMember.team == name)))  # type: ignore[call-overload]
        return _info(row, members)


def team_of(store: Store, user: str) -> str | None:
    """The team ``user`` is in, if any: a call made for the user without a key counts for it."""
    with store.session() as session:
        member = session.get(TeamMember, user)
        return member.team if member is not None else None


def list_teams(store: Store) -> list[TeamInfo]:
    """Every team, by name."""
    with store.session() as session:
        rows = list(session.scalars(select(Team).order_by(Team.name)))
        members: dict[str, list[str]] = {}
        for m in session.scalars(select(TeamMember)):
            members.setdefault(m.team, []).append(m.user)
        return [_info(r, members.get(r.name, [])) for r in rows]


def _budget_timezone() -> str:
    from axtui.server.key_limits import budget_timezone

    return budget_timezone()


def _apply_limits(store: Store, info: TeamInfo, clock: Clock, tz: str | None) -> None:
    from axtui.cost.budgets import Scope, set_budget
    from axtui.store.tables_ratelimit import write_limit

    if info.budget_nanos is not None and info.period is not None:
        assert tz is not None, "read with budget_timezone() before anything is written"
        set_budget(store, Scope("team", info.name), info.period, info.budget_nanos, hard=info.hard,
                   now=clock.now(), tz=tz)
    if info.rpm is not None or info.tpm is not None:
        write_limit(store, "team", info.name, requests=f"{info.rpm}/minute" if info.rpm else None,
                    tokens=f"{info.tpm}/minute" if info.tpm else None, algorithm=None, burst=None, now=clock.now())


def create_team(
    store: Store,
    name: str,
    *,
    budget_nanos: int | None = None,
    period: str | None = None,
    hard: bool = False,
    rpm: int | None = None,
    tpm: int | None = None,
    models: str | None = None,
    actor: str,
    via: audit.Via,
    clock: Clock = SYSTEM_CLOCK,
) -> TeamInfo:
    """Make a team; its budget (scope ``team:NAME``) and limits are stored where every process reads them.

    Raises:
        InvalidRequest: a bad name, a name taken, a budget without a period (or the reverse), a limit
            that is not positive, or a malformed glob.
    """
    if not _NAME_RE.match(name):
        raise InvalidRequest(f"team name {name!r} is not valid; use letters, digits, '.', '_' and '-' "
                             "(up to 64, starting with a letter or digit)", param="name")
    if budget_nanos is not None and budget_nanos <= 0:
        raise InvalidRequest("--budget must be more than zero dollars", param="budget")
    if budget_nanos is not None and period is None:
        period = "month"
    if period is not None and period not in _PERIODS:
        raise InvalidRequest(f"--period {period!r}: use day, week, month or total", param="period")
    if period is not None and budget_nanos is None:
        raise InvalidRequest("--period needs --budget", param="period")
    for field, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and value <= 0:
            raise InvalidRequest(f"--{field} {value} must be a positive number per minute", param=field)
    try:
        globs = parse_globs(models)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="models") from None
    tz = _budget_timezone() if budget_nanos is not None else None
    row = Team(name=name, budget_nanos=budget_nanos, period=period, hard=hard, rpm=rpm, tpm=tpm,
               models=format_globs(globs), created=clock.now())
    with store.session() as session:
        if session.get(Team, name) is not None:
            raise InvalidRequest(f"a team named {name!r} exists; `ax teams list` shows it", param="name")
        session.add(row)
        session.flush()
        info = _info(row, [])
    _apply_limits(store, info, clock, tz)
    audit.record(store, actor=actor, via=via, action="team.create", target=f"team:{name}", after=info.to_json(),
                 clock=clock)
    return info


def add_user(store: Store, team: str, user: str, *, actor: str, via: audit.Via,
             clock: Clock = SYSTEM_CLOCK) -> TeamInfo:
    """Put ``user`` in ``team`` (a user is in one team at most).

    Raises:
        InvalidRequest: no such team, a bad user name, or a user already in another team.
    """
    if not _USER_RE.match(user):
        raise InvalidRequest(f"user {user!r} is not a valid name", param="user")
    before = get_team(store, team)
    if before is None:
        raise _no_team(team)
    with store.session() as session:
        member = session.get(TeamMember, user)
        if member is not None and member.team != team:
            raise InvalidRequest(f"user {user!r} is in team {member.team!r}; a user is in one team at most: "
                                 f"`ax teams remove-user {member.team} {user}` first", param="user")
        if member is None:
            session.add(TeamMember(user=user, team=team, added=clock.now()))
    key_marker(store).moved()  # the user's keys now count for the team and follow its allow-list
    after = get_team(store, team)
    assert after is not None
    if after != before:
        audit.record(store, actor=actor, via=via, action="team.add_user", target=f"team:{team}",
                     before=before.to_json(), after=after.to_json(), clock=clock)
    return after


def remove_user(store: Store, team: str, user: str, *, actor: str, via: audit.Via,
                clock: Clock = SYSTEM_CLOCK) -> TeamInfo:
    """Take ``user`` out of ``team``.

    Raises:
        InvalidRequest: no such team, or the user is not in it.
    """
    before = get_team(store, team)
    if before is None:
        raise _no_team(team)
    if user not in before.members:
        raise InvalidRequest(f"user {user!r} is not in team {team!r}; members: "
                             f"{', '.join(before.members) or '(none)'}", param="user")
    with store.session() as session:
        session.execute(delete(TeamMember).where(TeamMember.user == user))  # type: ignore[arg-type]
    key_marker(store).moved()
    after = get_team(store, team)
    assert after is not None
    audit.record(store, actor=actor, via=via, action="team.remove_user", target=f"team:{team}",
                 before=before.to_json(), after=after.to_json(), clock=clock)
    return after


def delete_team(store: Store, name: str, *, actor: str, via: audit.Via, clock: Clock = SYSTEM_CLOCK) -> TeamInfo:
    """Delete a team, its members, its budgets and its limits.

    Raises:
        InvalidRequest: no such team, or active keys still name it (the message lists them).
    """
    from axtui.cost.budgets import delete_budget, list_budgets
    from axtui.store.tables_ratelimit import remove_limit

    before = get_team(store, name)
    if before is None:
        raise _no_team(name)
    with store.session() as session:
        keys = list(session.scalars(
            select(GatewayKey.id).where(GatewayKey.team == name, GatewayKey.revoked.is_(None))  # type: ignore[call-overload, union-attr]
        ))
        if keys:
            raise InvalidRequest(f"keys {', '.join(keys)} belong to team {name!r}; move them "
                                 f"(`ax keys update ID --team OTHER`) or revoke them first", param="team")
        session.execute(delete(TeamMember).where(TeamMember.team == name))  # type: ignore[arg-type]
        session.execute(delete(Team).where(Team.name == name))  # type: ignore[arg-type]
    key_marker(store).moved()
    for budget in list_budgets(store):
        if str(budget.scope) == f"team:{name}":
            delete_budget(store, budget.id)
    remove_limit(store, "team", name)
    audit.record(store, actor=actor, via=via, action="team.delete", target=f"team:{name}", before=before.to_json(),
                 clock=clock)
    return before

