"""The governance API: ``/api/keys``, ``/api/teams`` and ``/api/audit``, for the admin key only.

A key's secret is in the answer to its creation or rotation, and never
again. Every change goes through the same functions as the CLI
(`axtui.server.key_admin`, `axtui.governance.teams`), so it is stored,
limited and audited alike; its actor is ``admin``. An unknown key or
team is a 404. A change to a key takes effect in this worker at once and
in the others within ``server.key_cache_s`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field, StrictBool

from axtui.server.constraints import END_USER, ApiBody
from axtui.server.deps import gateway_of, require_admin, server_state
from axtui.server.errors import HTTPProblem

__all__ = ["governance_router"]

_KEY_ID = r"^[0-9a-f]{12}$"
_TEAM = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_USER = r"^[^\s,\x00-\x1f\x7f-\x9f]{1,256}$"
_GLOBS = r"^[A-Za-z0-9._:/@*?\[\],-]*$"
_KeyId = Annotated[str, Path(pattern=_KEY_ID, description="The key's id (12 hex digits)")]
_TeamName = Annotated[str, Path(pattern=_TEAM)]
ACTOR = "admin"


class KeyPolicy(ApiBody):
    """What a key may do; fields left out stay as they are (on creation: none)."""

    name: str | None = Field(default=None, max_length=256)
    team: str | None = Field(default=None, max_length=64, description='A team (`""` takes the key out of its team)')
    models: str | None = Field(default=None, max_length=1024, pattern=_GLOBS,
                               description='Globs of the models it may call, e.g. "gpt-4o*,fast" (`""`: any)')
    expires: str | float | None = Field(default=None, description="30d, 12h, a date, epoch seconds, or never")
    rpm: int | None = Field(default=None, ge=1, le=1_000_000_000)
    tpm: int | None = Field(default=None, ge=1, le=10_000_000_000)
    budget: str | None = Field(default=None, max_length=32, description="Dollars per month (a hard budget)")
    tags: str | None = Field(default=None, max_length=1024, description="Comma-separated tags added to its calls")


class KeyIn(KeyPolicy):
    """A new key for ``user``."""

    user: str = Field(pattern=END_USER)
    trusted: StrictBool = False


class KeyOut(BaseModel):
    """A key, never its secret."""

    model_config = {"extra": "allow"}

    id: str
    prefix: str
    user: str
    active: bool


class KeyWithSecret(KeyOut):
    """A key and its secret: shown in this answer only."""

    key: str = Field(description="The whole key; only its hash is kept")
    applied: list[str] = Field(default_factory=list, description="The limits applied")


class RotateIn(ApiBody):
    """How long the old secret keeps working (``1h``, seconds; null: not at all)."""

    grace: str | float | None = None


class TeamIn(ApiBody):
    """A new team."""

    name: str = Field(pattern=_TEAM)
    budget: str | None = Field(default=None, max_length=32, description="Dollars per period")
    period: Literal["day", "week", "month", "total"] | None = None
    hard: StrictBool = False
    rpm: int | None = Field(default=None, ge=1, le=1_000_000_000)
    tpm: int | None = Field(default=None, ge=1, le=10_000_000_000)
    models: str | None = Field(default=None, max_length=1024, pattern=_GLOBS)


class TeamOut(BaseModel):
    """A team and its members."""

    model_config = {"extra": "allow"}

    name: str
    members: list[str]


class MemberIn(ApiBody):
    """A user to add to a team."""

    user: str = Field(pattern=_USER)


class AuditOut(BaseModel):
    """One admin change."""

    id: int
    ts: float
    actor: str
    via: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _store(request: Request) -> Any:
    return gateway_of(request).store


def _forget(request: Request, key_id: str) -> None:
    auth = server_state(request).auth
    if auth is not None:
        auth.forget(key_id)


def _budget(text: str | None) -> int | None:
    from axtui.cost.budgets import parse_amount
    from axtui.errors import InvalidRequest

    if text is None:
        return None
    try:
        return parse_amount(text)
    except ValueError as exc:
        raise InvalidRequest(f"budget: {exc}", param="budget") from None


async def _existing_key(request: Request, key_id: str) -> None:
    """404 when no key has ``key_id``."""
    from axtui.server.keys import find_key

    if await asyncio.to_thread(find_key, _store(request), key_id) is None:
        raise HTTPProblem(404, f"no key has id {key_id!r}; GET /api/keys lists them",
                          error_type="invalid_request_error", code="not_found")


async def _existing_team(request: Request, name: str) -> None:
    """404 when no team is named ``name``."""
    from axtui.governance.teams import get_team

    if await asyncio.to_thread(get_team, _store(request), name) is None:
        raise HTTPProblem(404, f"no team is named {name!r}; GET /api/teams lists them",
                          error_type="invalid_request_error", code="not_found")


def governance_router() -> APIRouter:
    """The keys, teams and audit routes."""
    router = APIRouter(dependencies=[Depends(require_admin)])

    @router.get("/api/keys", response_model=list[KeyOut], tags=["Keys"], summary="List keys")
    async def list_keys(request: Request, active: bool = False) -> list[dict[str, Any]]:
        """Every key (``active``: leave revoked ones out), with its policy; never a secret."""
        from axtui.server.key_admin import key_json
        from axtui.server.keys import list_keys as stored

        def read() -> list[dict[str, Any]]:
            from axtui.governance.standing import Standing, standing_json, standings

            infos = stored(_store(request), include_revoked=not active)
            standing = standings(_store(request), "key", time.time())
            return [{**key_json(i), **standing_json(standing.get(i.id, Standing()))} for i in infos]

        return await asyncio.to_thread(read)

    @router.post("/api/keys", response_model=KeyWithSecret, status_code=201, tags=["Keys"], summary="Create a key")
    async def create_key(request: Request, body: KeyIn) -> dict[str, Any]:
        """Make a key; the answer holds its secret, shown this once."""
        from axtui.server.key_admin import create, key_json

        policy = body.model_dump(exclude={"user"}, exclude_none=True)
        secret, info, applied = await asyncio.to_thread(
            lambda: create(_store(request), body.user, policy, actor=ACTOR, via="api"))
        return {"key": secret, **key_json(info), "applied": applied}

    @router.patch("/api/keys/{key_id}", response_model=KeyOut, tags=["Keys"], summary="Change a key's policy")
    async def update_key(request: Request, key_id: _KeyId, body: KeyPolicy) -> dict[str, Any]:
        """Change what a key may do; fields left out stay as they are."""
        from axtui.server.key_admin import key_json, update

        await _existing_key(request, key_id)
        changes = body.model_dump(exclude_unset=True)
        if changes.get("expires") is None and "expires" in changes:
            changes["expires"] = "never"
        info, _ = await asyncio.to_thread(lambda: update(_store(request), key_id, changes, actor=ACTOR, via="api"))
        _forget(request, key_id)
        return key_json(info)

    @router.post("/api/keys/{key_id}/rotate", response_model=KeyWithSecret, tags=["Keys"], summary="Rotate a key")
    async def rotate_key(request: Request, key_id: _KeyId, body: RotateIn) -> dict[str, Any]:
        """A new secret for the key (shown this once); the old one works until ``grace`` ends."""
        from axtui.server.key_admin import key_json, rotate

        await _existing_key(request, key_id)
        secret, info = await asyncio.to_thread(
            lambda: rotate(_store(request), key_id, body.grace, actor=ACTOR, via="api"))
        _forget(request, key_id)
        return {"key": secret, **key_json(info)}

    @router.delete("/api/keys/{key_id}", response_model=KeyOut, tags=["Keys"], summary="Revoke a key")
    async def revoke_key(request: Request, key_id: _KeyId) -> dict[str, Any]:
        """Revoke the key (kept for the record); this worker refuses it at once."""
        from axtui.server.key_admin import key_json, revoke

        await _existing_key(request, key_id)
        info = await asyncio.to_thread(lambda: revoke(_store(request), key_id, actor=ACTOR, via="api"))
        _forget(request, key_id)
        return key_json(info)

    @router.get("/api/teams", response_model=list[TeamOut], tags=["Teams"], summary="List teams")
    async def list_teams(request: Request) -> list[dict[str, Any]]:
        """Every team with its members, budget, limits and allowed models."""
        from axtui.governance.teams import list_teams as stored

        def read() -> list[dict[str, Any]]:
            from axtui.governance.standing import Standing, standing_json, standings

            infos = stored(_store(request))
            standing = standings(_store(request), "team", time.time())
            return [{**t.to_json(), **standing_json(standing.get(t.name, Standing()))} for t in infos]

        return await asyncio.to_thread(read)

    @router.post("/api/teams", response_model=TeamOut, status_code=201, tags=["Teams"], summary="Create a team")
    async def create_team(request: Request, body: TeamIn) -> dict[str, Any]:
        """Make a team; its budget and limits become ``team:NAME`` scopes."""
        from axtui.governance.teams import create_team as create

        budget = _budget(body.budget)
        info = await asyncio.to_thread(lambda: create(
            _store(request), body.name, budget_nanos=budget, period=body.period, hard=body.hard, rpm=body.rpm,
            tpm=body.tpm, models=body.models, actor=ACTOR, via="api"))
        return info.to_json()

    @router.post("/api/teams/{name}/members", response_model=TeamOut, tags=["Teams"], summary="Add a member")
    async def add_member(request: Request, name: _TeamName, body: MemberIn) -> dict[str, Any]:
        """Put a user in the team (a user is in one team at most)."""
        from axtui.governance.teams import add_user

        await _existing_team(request, name)
        info = await asyncio.to_thread(lambda: add_user(_store(request), name, body.user, actor=ACTOR, via="api"))
        _forget_all(request)
        return info.to_json()

    @router.delete("/api/teams/{name}/members/{user}", response_model=TeamOut, tags=["Teams"],
                   summary="Remove a member")
    async def remove_member(request: Request, name: _TeamName, user: Annotated[str, Path(pattern=_USER)]
                            ) -> dict[str, Any]:
        """Take a user out of the team."""
        from axtui.governance.teams import remove_user

        await _existing_team(request, name)
        info = await asyncio.to_thread(lambda: remove_user(_store(request), name, user, actor=ACTOR, via="api"))
        _forget_all(request)
        return info.to_json()

    @router.delete("/api/teams/{name}", response_model=TeamOut, tags=["Teams"], summary="Delete a team")
    async def delete_team(request: Request, name: _TeamName) -> dict[str, Any]:
        """Delete a team, its budget and its limits (refused while active keys name it)."""
        from axtui.governance.teams import delete_team as delete

        await _existing_team(request, name)
        info = await asyncio.to_thread(lambda: delete(_store(request), name, actor=ACTOR, via="api"))
        _forget_all(request)
        return info.to_json()

    @router.get("/api/audit", response_model=list[AuditOut], tags=["Audit"], summary="The audit trail")
    async def audit_trail(
        request: Request,
        since: Annotated[str | None, Query(description="From: 1h, 7d, or a date")] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[dict[str, Any]]:
        """Admin changes, newest first: when, who, via what, what, before and after (secrets never)."""
        from axtui.metrics.timespec import parse_time
        from axtui.store.audit import list_audit

        gateway = gateway_of(request)
        since_ts = parse_time(since, gateway.clock.now(), option="since") if since else None
        entries = await asyncio.to_thread(list_audit, _store(request), since=since_ts, limit=limit)
        return [e.to_json() for e in entries]

    return router


def _forget_all(request: Request) -> None:
    """Membership changes a key's team: every cached key is looked up again."""
    auth = server_state(request).auth
    if auth is not None:
        auth.forget()
