"""The audit trail: every change an admin makes, with who, when, before and after (secrets never).

Every write of keys, teams, budgets, limits, alert rules, routing and
prices calls `record` (or `record_change`, which names who acts from the
context) once per change, whichever front-end asked for it. ``actor`` is
``admin`` for the server's admin API (the admin key has no other name),
or the local OS user for the CLI and the dashboard (`cli_actor`); a
process says which with `set_process_actor`, a request with `acting`. ``before`` and ``after`` are
plain JSON objects; fields that carry secrets (salts, digests, keys,
webhook URLs' paths) are dropped or reduced before they are stored.
"""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import select

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.store import Store
from axtui.store.tables_governance import AuditRow

__all__ = [
    "AuditEntry",
    "Via",
    "act_as",
    "acting",
    "cli_actor",
    "current_actor",
    "list_audit",
    "record",
    "record_change",
    "scrub",
    "set_process_actor",
]

Via = Literal["cli", "api", "dashboard"]

#: Fields never stored, whatever the thing changed.
_SECRET_FIELDS = frozenset({"salt", "digest", "prev_salt", "prev_digest", "key", "secret", "api_key", "token",
                            "password", "authorization"})
_KEY_RE = re.compile(r"axk_[0-9a-f]{12}_[A-Za-z0-9_-]{20,128}")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded change."""

    id: int
    ts: float
    actor: str
    via: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """The entry as plain JSON."""
        return {"id": self.id, "ts": self.ts, "actor": self.actor, "via": self.via, "action": self.action,
                "target": self.target, "before": self.before, "after": self.after}


def cli_actor() -> str:
    """Who runs the CLI: the local OS user."""
    try:
        return getpass.getuser() or "unknown"
    except (KeyError, OSError):
        return "unknown"


_acting: ContextVar[tuple[str, Via] | None] = ContextVar("ax_audit_actor", default=None)
_process_actor: tuple[str, Via] | None = None


def set_process_actor(actor: str, via: Via) -> None:
    """Who this process's changes are by, unless a request says otherwise (`acting`)."""
    global _process_actor
    _process_actor = (actor, via)


@contextmanager
def acting(actor: str, via: Via) -> Iterator[None]:
    """Changes made inside are by ``actor`` through ``via``."""
    token = _acting.set((actor, via))
    try:
        yield
    finally:
        _acting.reset(token)


def act_as(actor: str, via: Via) -> None:
    """Changes made from here on in this task (an API request) are by ``actor`` through ``via``."""
    _acting.set((actor, via))


def current_actor() -> tuple[str, Via]:
    """Who is changing things now: the request's actor, this process's, or the local OS user at the CLI."""
    return _acting.get() or _process_actor or (cli_actor(), "cli")


def _url_host(url: str) -> str:
    """Only the scheme and host of a URL: its user, password, path and query can carry secrets."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "(hidden)"
    if not parts.scheme or not host:
        return "(hidden)"
    port = f":{parts.port}" if parts.port else ""
    rest = "/…" if (parts.path not in ("", "/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{host}{port}{rest}"


def scrub(value: Any) -> Any:
    """``value`` without secrets: secret fields dropped, keys masked, URLs cut to their scheme and host."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if str(k).lower() in _SECRET_FIELDS:
                continue
            name = str(k).lower()
            if (name == "webhook" or name.endswith("url")) and isinstance(v, str):
                out[str(k)] = _url_host(v)
                continue
            out[str(k)] = scrub(v)
        return out
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return _KEY_RE.sub(lambda m: m.group(0)[:16] + "…", value)
    return value


def _dump(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(scrub(value), sort_keys=True, default=str)


def record(
    store: Store,
    *,
    actor: str,
    via: Via,
    action: str,
    target: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Append one change to the audit trail.

    Args:
        store: where the trail lives.
        actor: who made the change (`cli_actor`, ``admin``, an admin key's id).
        via: ``cli``, ``api`` or ``dashboard``.
        action: what was done, ``<thing>.<verb>`` (``key.create``, ``team.add_user``, ``budget.set``…).
        target: what it was done to (``key:<id>``, ``team:red``, ``budget:3``…).
        before: the thing before (None when created).
        after: the thing after (None when deleted).
        clock: for the time.
    """
    row = AuditRow(ts=clock.now(), actor=actor[:256], via=via, action=action[:64], target=target[:256],
                   before=_dump(before), after=_dump(after))
    with store.session() as session:
        session.add(row)


def record_change(
    store: Store,
    action: str,
    target: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """`record` a change by whoever is acting now (`current_actor`)."""
    actor, via = current_actor()
    record(store, actor=actor, via=via, action=action, target=target, before=before, after=after, clock=clock)


def list_audit(store: Store, *, since: float | None = None, limit: int = 1000) -> list[AuditEntry]:
    """Changes from ``since`` (epoch seconds; None: all), newest first, at most ``limit``."""
    stmt = select(AuditRow).order_by(AuditRow.ts.desc(), AuditRow.id.desc())  # type: ignore[attr-defined, union-attr]
    if since is not None:
        stmt = stmt.where(AuditRow.ts >= since)  # type: ignore[arg-type]
    stmt = stmt.limit(limit)
    with store.session() as session:
        return [
            AuditEntry(id=r.id or 0, ts=r.ts, actor=r.actor, via=r.via, action=r.action, target=r.target,
                       before=json.loads(r.before) if r.before else None,
                       after=json.loads(r.after) if r.after else None)
            for r in session.scalars(stmt)
        ]
