"""Gateway keys: made, listed, revoked and checked against the store.

A key reads ``axk_<id>_<secret>``: ``id`` is 12 hex digits, public, and
names the key everywhere (call records, budgets, limits); ``secret`` is 32
random bytes in URL-safe base64. Only a per-key random salt and
``sha256(salt + secret)`` are stored; the key is printed once, when made.
Secrets are random and long, so one fast hash is enough (a slow KDF guards
short human passwords, which these are not).

A key may carry a policy: a team, a model allow-list (globs), an expiry,
tags added to its calls, and rpm/tpm/budget limits (kept with the rate
limits and budgets, see `axtui.server.key_limits`). Rotating a key gives
it a new secret; the old one keeps working until the grace ends.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.errors import InvalidRequest
from axtui.governance.policy import ModelPolicy, format_globs, parse_globs
from axtui.server.constraints import END_USER
from axtui.store import Store
from axtui.store.markers import ChangeMarker
from axtui.store.tables_governance import Team, TeamMember
from axtui.store.tables_keys import GatewayKey

__all__ = [
    "KEY_PREFIX",
    "KeyInfo",
    "create_key",
    "display_prefix",
    "find_key",
    "hash_secret",
    "key_marker",
    "list_keys",
    "parse_key",
    "revoke_key",
    "rotate_key",
    "update_key",
    "verify_key",
]

KEY_PREFIX = "axk_"
_ID_HEX = 12
_KEY_RE = re.compile(r"^axk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,128})$")
#: A key's user: as an end user's name, without the slash that writes a trusted key's end users (acme/alice).
_USER_RE = re.compile(END_USER)


@dataclass(slots=True, frozen=True)
class KeyInfo:
    """What the gateway knows about one key (never its secret)."""

    id: str
    user: str
    name: str = ""
    rpm: int | None = None
    budget_nanos: int | None = None
    trusted: bool = False
    created: float = 0.0
    revoked: float | None = None
    #: The key's own team; `team` is the one its calls count for (this, else its user's).
    own_team: str | None = None
    team: str | None = None
    models: tuple[str, ...] | None = None
    team_models: tuple[str, ...] | None = None
    expires: float | None = None
    tpm: int | None = None
    tags: tuple[str, ...] = ()
    #: When the secret before the last rotation stops working (None: no grace running).
    prev_until: float | None = None
    #: Set when the key was presented with its old secret: when that stops working.
    grace_until: float | None = None

    @property
    def active(self) -> bool:
        """Whether the key still opens the gateway (expiry aside, which needs a clock)."""
        return self.revoked is None

    def expired(self, now: float) -> bool:
        """Whether the key, or the old secret it was presented with, has run out at ``now``."""
        return (self.expires is not None and now >= self.expires) or (
            self.grace_until is not None and now >= self.grace_until
        )

    @property
    def policy(self) -> ModelPolicy:
        """The model allow-lists that apply to the key's calls."""
        return ModelPolicy(self.models, self.team_models, self.team)

    @property
    def prefix(self) -> str:
        """The start of the key, enough to recognise it, nothing secret."""
        return display_prefix(self.id)


def display_prefix(key_id: str) -> str:
    """``axk_<id>…``: how a key is shown once it has been handed out."""
    return f"{KEY_PREFIX}{key_id}…"


def hash_secret(salt: str, secret: str) -> str:
    """The stored digest of a key's secret: SHA-256 over salt and secret."""
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def parse_key(raw: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, or None."""
    m = _KEY_RE.match(raw)
    return (m.group(1), m.group(2)) if m else None


def _info(row: GatewayKey, session: Session | None = None) -> KeyInfo:
    team, team_models = row.team, None
    if session is not None:
        if team is None:
            member = session.get(TeamMember, row.user)
            team = member.team if member is not None else None
        team_row = session.get(Team, team) if team is not None else None
        team_models = parse_globs(team_row.models) if team_row is not None else None
    return KeyInfo(
        id=row.id,
        user=row.user,
        name=row.name,
        rpm=row.rpm,
        budget_nanos=row.budget_nanos,
        trusted=row.trusted,
        created=row.created,
        revoked=row.revoked,
        own_team=row.team,
        team=team,
        models=parse_globs(row.models),
        team_models=team_models,
        expires=row.expires,
        tpm=row.tpm,
        tags=tuple(t for t in (row.tags or "").split(",") if t),
        prev_until=row.prev_until,
    )


#: Characters that are no text: a terminal that prints them may move, recolour or retitle (ESC, BEL, C1 codes).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _check_policy(values: Mapping[str, Any]) -> None:
    for field in ("rpm", "tpm"):
        value = values.get(field)
        if value is not None and value <= 0:
            raise InvalidRequest(f"--{field} {value} must be a positive number per minute", param=field)
    if values.get("budget_nanos") is not None and values["budget_nanos"] <= 0:
        raise InvalidRequest("--budget must be more than zero dollars", param="budget")
    if values.get("models") is not None:
        try:
            parse_globs(values["models"])
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="models") from None
    tags = values.get("tags")
    if tags and (len(tags) > 1024 or any(not t or " " in t or _CONTROL.search(t) for t in tags.split(","))):
        raise InvalidRequest("--tags: give comma-separated tags without spaces or control characters, 1024 "
                             "characters at most", param="tags")
    bad = _CONTROL.search(values.get("name") or "")
    if bad is not None:
        # A name is printed in terminals (`ax keys list`, the dashboard): an escape sequence would run there.
        raise InvalidRequest(f"--name holds the control character {bad.group()!r}; give a label of plain text",
                             param="name")


def _check_team(session: Session, team: str | None) -> None:
    if team is not None and session.get(Team, team) is None:
        raise InvalidRequest(f"no team is named {team!r}; `ax teams create {team}` makes it", param="team")


def create_key(
    store: Store,
    user: str,
    *,
    name: str = "",
    rpm: int | None = None,
    budget_nanos: int | None = None,
    trusted: bool = False,
    team: str | None = None,
    models: str | None = None,
    expires: float | None = None,
    tpm: int | None = None,
    tags: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> tuple[str, KeyInfo]:
    """Make a key for ``user``; returns the key (shown once) and its info.

    Args:
        store: where keys live.
        user: the user the key's calls count for.
        name: a label.
        rpm: requests per minute (stored with the key; `apply_key_limits` makes it a limit).
        budget_nanos: a monthly hard budget (likewise).
        trusted: the key may name its end users.
        team: the team the key's calls count for (it must exist).
        models: comma-separated globs of the models it may call.
        expires: epoch seconds after which it is refused.
        tpm: tokens per minute.
        tags: comma-separated tags added to its calls.
        clock: for the creation time.

    Raises:
        InvalidRequest: the user is empty or has spaces, commas or slashes, a limit is not positive, a glob or
            tag is malformed, or the team does not exist.
    """
    if not _USER_RE.match(user):
        raise InvalidRequest(
            f"user {user!r} is not a valid name; use 1 to 256 characters without spaces, commas, slashes or control characters "
            "(a slash names a trusted key's end user, as in acme/alice)", param="user"
        )
    _check_policy({"rpm": rpm, "tpm": tpm, "budget_nanos": budget_nanos, "models": models, "tags": tags,
                   "name": name})
    key_id = secrets.token_hex(_ID_HEX // 2)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    row = GatewayKey(
        id=key_id,
        salt=salt,
        digest=hash_secret(salt, secret),
        user=user,
        name=name[:256],
        rpm=rpm,
        budget_nanos=budget_nanos,
        trusted=trusted,
        created=clock.now(),
        team=team or None,
        models=format_globs(parse_globs(models)),
        expires=expires,
        tpm=tpm,
        tags=tags or None,
    )
    with store.session() as session:
        _check_team(session, row.team)
        session.add(row)
        session.flush()
        return f"{KEY_PREFIX}{key_id}_{secret}", _info(row, session)


def list_keys(store: Store, *, include_revoked: bool = True) -> list[KeyInfo]:
    """Every key, oldest first, each with the monthly budget in force (``ax cost budget`` may have changed it)."""
    from axtui.server.key_limits import budgets_in_force

    stmt = select(GatewayKey).order_by(GatewayKey.created)  # type: ignore[arg-type]
    if not include_revoked:
        stmt = stmt.where(GatewayKey.revoked.is_(None))  # type: ignore[union-attr]
    with store.session() as session:
        infos = [_info(row, session) for row in session.scalars(stmt)]
    budgets = budgets_in_force(store)
    return [replace(i, budget_nanos=budgets.get(i.id)) for i in infos]


def _normalise_id(ident: str) -> str:
    ident = ident.strip().rstrip("…").removesuffix("...")
    if ident.startswith(KEY_PREFIX):
        parsed = parse_key(ident)
        ident = parsed[0] if parsed else ident.removeprefix(KEY_PREFIX).split("_", 1)[0]
    return ident


def find_key(store: Store, ident: str) -> KeyInfo | None:
    """A key by id (or by its shown prefix, or the whole key)."""
    with store.session() as session:
        row = session.get(GatewayKey, _normalise_id(ident))
        return _info(row, session) if row is not None else None


def key_marker(store: Store) -> ChangeMarker:
    """The marker every revocation, update and rotation of a key moves (`axtui.store.markers`):
    gateways on this machine check a cached key again before its next request."""
    return ChangeMarker(store, "keys", "server.key_cache_s")


def revoke_key(store: Store, ident: str, *, clock: Clock = SYSTEM_CLOCK) -> KeyInfo:
    """Revoke a key by id; revoking twice keeps the first time.

    Raises:
        InvalidRequest: no key has that id; the message says how to list them.
    """
    key_id = _normalise_id(ident)
    with store.session() as session:
        session.execute(
            update(GatewayKey)
            .where(GatewayKey.id == key_id, GatewayKey.revoked.is_(None))  # type: ignore[arg-type, union-attr]
            .values(revoked=clock.now())
        )
        row = session.get(GatewayKey, key_id)
        if row is None:
            raise _no_such_key(ident)
        info = _info(row, session)
    key_marker(store).moved()
    return info


def _no_such_key(ident: str) -> InvalidRequest:
    return InvalidRequest(f"no key has id {ident!r}; `ax keys list` shows every key's id", param="id")


#: What `update_key` may change, by column.
UPDATABLE = frozenset({"name", "team", "models", "expires", "rpm", "tpm", "budget_nanos", "tags", "trusted"})


def update_key(store: Store, ident: str, changes: Mapping[str, Any]) -> tuple[KeyInfo, KeyInfo]:
    """Change a key's policy; returns the key before and after.

    ``changes`` maps columns of `UPDATABLE` to new values; None clears
    ``team``, ``models``, ``expires`` and ``tags``.

    Raises:
        InvalidRequest: no such key, a revoked key, an unknown field, a bad value, or an unknown team.
    """
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise InvalidRequest(f"a key has no field {sorted(unknown)[0]!r} to change; change "
                             f"{', '.join(sorted(UPDATABLE))}", param=sorted(unknown)[0])
    _check_policy(changes)
    with store.session() as session:
        row = session.get(GatewayKey, _normalise_id(ident))
        if row is None:
            raise _no_such_key(ident)
        if row.revoked is not None:
            raise InvalidRequest(f"key {row.id} is revoked; make a new one with `ax keys create`", param="id")
        before = _info(row, session)
        values = dict(changes)
        if "models" in values:
            values["models"] = format_globs(parse_globs(values["models"]))
        for field in ("team", "tags", "name"):
            if field in values and values[field] == "":
                values[field] = None if field != "name" else ""
        if "team" in values:
            _check_team(session, values["team"])
        for field, value in values.items():
            setattr(row, field, value)
        session.add(row)
        session.flush()
        after = _info(row, session)
    key_marker(store).moved()
    return before, after


def rotate_key(
    store: Store, ident: str, *, grace_s: float = 0.0, clock: Clock = SYSTEM_CLOCK
) -> tuple[str, KeyInfo]:
    """Give a key a new secret; the old one keeps working for ``grace_s`` seconds.

    Returns the new key (shown once) and its info.

    Raises:
        InvalidRequest: no such key, a revoked key, or a negative grace.
    """
    if grace_s < 0:
        raise InvalidRequest("--grace must not be negative", param="grace")
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    with store.session() as session:
        row = session.get(GatewayKey, _normalise_id(ident))
        if row is None:
            raise _no_such_key(ident)
        if row.revoked is not None:
            raise InvalidRequest(f"key {row.id} is revoked; make a new one with `ax keys create`", param="id")
        if grace_s > 0:
            row.prev_salt, row.prev_digest, row.prev_until = row.salt, row.digest, clock.now() + grace_s
        else:
            row.prev_salt = row.prev_digest = row.prev_until = None
        row.salt, row.digest = salt, hash_secret(salt, secret)
        session.add(row)
        session.flush()
        info = _info(row, session)
    key_marker(store).moved()
    return f"{KEY_PREFIX}{info.id}_{secret}", info


def verify_key(store: Store, raw: str) -> KeyInfo | None:
    """The key's info when ``raw`` is a valid key (revoked ones included), else None."""
    parsed = parse_key(raw)
    if parsed is None:
        return None
    key_id, secret = parsed
    with store.session() as session:
        row = session.get(GatewayKey, key_id)
        if row is None:
            return None
        if hmac.compare_digest(row.digest, hash_secret(row.salt, secret)):
            return _info(row, session)
        if (
            row.prev_digest is not None
            and row.prev_salt is not None
            and row.prev_until is not None
            and hmac.compare_digest(row.prev_digest, hash_secret(row.prev_salt, secret))
        ):
            # The secret before a rotation: good until its grace ends (the caller checks the time).
            return replace(_info(row, session), grace_until=row.prev_until)
        return None
