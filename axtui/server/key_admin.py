"""Key administration the CLI and the admin API share: each change stored, limited and audited.

`create`, `update`, `rotate` and `revoke` write the key, apply its
limits where every process reads them (`axtui.server.key_limits`), and
record the change in the audit trail. A new secret is returned once and
never audited.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.errors import InvalidRequest
from axtui.governance.policy import parse_duration, parse_expiry
from axtui.money import nanos_to_usd
from axtui.server import keys as k
from axtui.server.key_limits import apply_key_limits, budget_timezone
from axtui.store import Store, audit

__all__ = ["KeyChanges", "create", "key_json", "parse_changes", "revoke", "rotate", "update"]

#: Changes as people type them: ``models``, ``expires`` (``30d``, a date, ``never``), ``budget`` (``25``)…
KeyChanges = Mapping[str, Any]


def key_json(info: k.KeyInfo) -> dict[str, Any]:
    """A key as plain JSON (never its secret)."""
    return {
        "id": info.id,
        "prefix": info.prefix,
        "user": info.user,
        "name": info.name,
        "team": info.own_team,
        "effective_team": info.team,
        "models": list(info.models) if info.models is not None else None,
        "expires": info.expires,
        "rpm": info.rpm,
        "tpm": info.tpm,
        "budget_usd": None if info.budget_nanos is None else str(nanos_to_usd(info.budget_nanos)),
        "tags": list(info.tags),
        "trusted": info.trusted,
        "created": info.created,
        "revoked": info.revoked,
        "grace_until": info.prev_until,
        "active": info.active,
    }


def parse_changes(raw: KeyChanges, now: float) -> dict[str, Any]:
    """Store columns from people's values: ``budget`` → ``budget_nanos``, ``expires`` → epoch seconds.

    Raises:
        InvalidRequest: an amount, an expiry or a field that cannot be read; the message names it.
    """
    from axtui.cost.budgets import parse_amount

    out: dict[str, Any] = {}
    for field, value in raw.items():
        if value is None:
            continue
        if field == "budget":
            try:
                out["budget_nanos"] = parse_amount(str(value))
            except ValueError as exc:
                raise InvalidRequest(f"--budget: {exc}", param="budget") from None
        elif field == "expires":
            if isinstance(value, (int, float)):
                out["expires"] = float(value)
            elif str(value).strip().lower() in ("never", ""):
                out["expires"] = None
            else:
                try:
                    out["expires"] = parse_expiry(str(value), now)
                except ValueError as exc:
                    raise InvalidRequest(str(exc), param="expires") from None
        elif field in ("models", "tags") and isinstance(value, (list, tuple)):
            out[field] = ",".join(str(v) for v in value)
        else:
            out[field] = value
    return out


def create(
    store: Store, user: str, raw: KeyChanges, *, actor: str, via: audit.Via, clock: Clock = SYSTEM_CLOCK
) -> tuple[str, k.KeyInfo, list[str]]:
    """Make a key with the policy in ``raw``; returns the key (shown once), its info and the limits applied.

    Raises:
        InvalidRequest: a bad user, value or team.
    """
    values = parse_changes(raw, clock.now())
    unknown = set(values) - k.UPDATABLE
    if unknown:
        raise InvalidRequest(f"a key has no field {sorted(unknown)[0]!r}", param=sorted(unknown)[0])
    tz = budget_timezone() if values.get("budget_nanos") is not None else None
    secret, info = k.create_key(store, user, clock=clock, **values)
    applied = apply_key_limits(store, info, tz=tz, clock=clock)
    audit.record(store, actor=actor, via=via, action="key.create", target=f"key:{info.id}", after=key_json(info),
                 clock=clock)
    return secret, info, applied


def update(
    store: Store, ident: str, raw: KeyChanges, *, actor: str, via: audit.Via, clock: Clock = SYSTEM_CLOCK
) -> tuple[k.KeyInfo, list[str]]:
    """Change a key's policy (and its limits); returns it and the limits applied.

    Raises:
        InvalidRequest: no such key, a revoked one, nothing to change, or a bad value.
    """
    values = parse_changes(raw, clock.now())
    if not values and not any(f in raw for f in ("expires", "team", "models", "tags")):
        raise InvalidRequest("nothing to change; give --models, --expires, --team, --rpm, --tpm, --budget or --tags")
    tz = budget_timezone() if values.get("budget_nanos") is not None else None
    before, after = k.update_key(store, ident, values)
    changed = frozenset({"rate"} if {"rpm", "tpm"} & set(values) else set()) | (
        {"budget"} if "budget_nanos" in values else set())
    applied = apply_key_limits(store, after, tz=tz, clock=clock, changed=changed) if changed else []
    audit.record(store, actor=actor, via=via, action="key.update", target=f"key:{after.id}",
                 before=key_json(before), after=key_json(after), clock=clock)
    return after, applied


def rotate(
    store: Store, ident: str, grace: str | float | None, *, actor: str, via: audit.Via, clock: Clock = SYSTEM_CLOCK
) -> tuple[str, k.KeyInfo]:
    """Give a key a new secret; the old one works for ``grace`` (``1h``, seconds; None: not at all).

    Raises:
        InvalidRequest: no such key, a revoked one, or a grace that cannot be read.
    """
    if grace is None:
        grace_s = 0.0
    elif isinstance(grace, (int, float)):
        grace_s = float(grace)
        if not 0 <= grace_s < math.inf:
            raise InvalidRequest(f"grace {grace!r} is not a time; give seconds, 0 or more, or a duration (1h, 7d)",
                                 param="grace")
    else:
        try:
            grace_s = parse_duration(grace)
        except ValueError as exc:
            raise InvalidRequest(f"--grace: {exc}", param="grace") from None
    before = k.find_key(store, ident)
    secret, info = k.rotate_key(store, ident, grace_s=grace_s, clock=clock)
    audit.record(store, actor=actor, via=via, action="key.rotate", target=f"key:{info.id}",
                 before=key_json(before) if before else None, after=key_json(info), clock=clock)
    return secret, info


def revoke(store: Store, ident: str, *, actor: str, via: audit.Via, clock: Clock = SYSTEM_CLOCK) -> k.KeyInfo:
    """Revoke a key (kept for the record).

    Raises:
        InvalidRequest: no such key.
    """
    before = k.find_key(store, ident)
    info = k.revoke_key(store, ident, clock=clock)
    if before is None or before.active:
        audit.record(store, actor=actor, via=via, action="key.revoke", target=f"key:{info.id}",
                     before=key_json(before) if before else None, after=key_json(info), clock=clock)
    return info
