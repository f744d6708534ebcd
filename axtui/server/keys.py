"""Gateway keys: made, listed, revoked and checked against the store.

A key reads ``axk_<id>_<secret>``: ``id`` is 12 hex digits, public, and
names the key everywhere (call records, budgets, limits); ``secret`` is 32
random bytes in URL-safe base64. Only a per-key random salt and
``sha256(salt + secret)`` are stored; the key is printed once, when made.
Secrets are random and long, so one fast hash is enough (a slow KDF guards
short human passwords, which these are not).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.errors import InvalidRequest
from axtui.store import Store
from axtui.store.tables_keys import GatewayKey

__all__ = [
    "KEY_PREFIX",
    "KeyInfo",
    "create_key",
    "display_prefix",
    "find_key",
    "hash_secret",
    "list_keys",
    "parse_key",
    "revoke_key",
    "verify_key",
]

KEY_PREFIX = "axk_"
_ID_HEX = 12
_KEY_RE = re.compile(r"^axk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,128})$")
_USER_RE = re.compile(r"^[^\s,]{1,256}$")


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

    @property
    def active(self) -> bool:
        """Whether the key still opens the gateway."""
        return self.revoked is None

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


def _info(row: GatewayKey) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        user=row.user,
        name=row.name,
        rpm=row.rpm,
        budget_nanos=row.budget_nanos,
        trusted=row.trusted,
        created=row.created,
        revoked=row.revoked,
    )


def create_key(
    store: Store,
    user: str,
    *,
    name: str = "",
    rpm: int | None = None,
    budget_nanos: int | None = None,
    trusted: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> tuple[str, KeyInfo]:
    """Make a key for ``user``; returns the key (shown once) and its info.

    Raises:
        InvalidRequest: the user is empty or has spaces or commas, or a limit is not positive.
    """
    if not _USER_RE.match(user):
        raise InvalidRequest(
            f"user {user!r} is not a valid name; use 1 to 256 characters without spaces or commas", param="user"
        )
    if rpm is not None and rpm <= 0:
        raise InvalidRequest(f"--rpm {rpm} must be a positive number of requests per minute", param="rpm")
    if budget_nanos is not None and budget_nanos <= 0:
        raise InvalidRequest("--budget must be more than zero dollars", param="budget")
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
    )
    with store.session() as session:
        session.add(row)
    return f"{KEY_PREFIX}{key_id}_{secret}", _info(row)


def list_keys(store: Store, *, include_revoked: bool = True) -> list[KeyInfo]:
    """Every key, oldest first."""
    stmt = select(GatewayKey).order_by(GatewayKey.created)  # type: ignore[arg-type]
    if not include_revoked:
        stmt = stmt.where(GatewayKey.revoked.is_(None))  # type: ignore[union-attr]
    with store.session() as session:
        return [_info(row) for row in session.scalars(stmt)]


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
        return _info(row) if row is not None else None


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
            raise InvalidRequest(f"no key has id {ident!r}; `ax keys list` shows every key's id", param="id")
        return _info(row)


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
        if not hmac.compare_digest(row.digest, hash_secret(row.salt, secret)):
            return None
        return _info(row)
