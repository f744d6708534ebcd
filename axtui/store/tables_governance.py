"""Teams, their members, and the audit trail of every admin change.

A team groups users (a user is in at most one team, so a call's team is
never ambiguous) and keys; its budget and limits are stored with the
budgets and the rate limits (scope ``team:NAME``), its model allow-list
here. The audit table is append-only: one row per change, with what the
thing looked like before and after (secrets never).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

__all__ = ["AuditRow", "Team", "TeamMember"]


class Team(SQLModel, table=True):
    """One team: its name, the limits it was given and the models it may call."""

    __tablename__ = "teams"

    name: str = Field(primary_key=True, max_length=64)
    budget_nanos: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    period: str | None = Field(default=None, max_length=16)
    hard: bool = False
    rpm: int | None = None
    tpm: int | None = None
    #: Comma-separated globs of the models the team's keys may call; None: any.
    models: str | None = Field(default=None, max_length=1024)
    created: float


class TeamMember(SQLModel, table=True):
    """A user in a team (one team per user)."""

    __tablename__ = "team_members"
    __table_args__ = (Index("ix_team_members_team", "team"),)

    user: str = Field(primary_key=True, max_length=256)
    team: str = Field(max_length=64)
    added: float


class AuditRow(SQLModel, table=True):
    """One admin change: when, who, through what, to what, before and after (JSON)."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_ts", "ts"),)

    id: int | None = Field(default=None, primary_key=True)
    ts: float
    actor: str = Field(max_length=256)
    via: str = Field(max_length=16)
    action: str = Field(max_length=64)
    target: str = Field(max_length=256)
    before: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    after: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
