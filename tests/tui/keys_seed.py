"""Gateway keys and a team on top of the seeded store, with ids the same on every run (for snapshots)."""

from __future__ import annotations

import itertools
import types

import pytest

from axtui.cost.budgets import parse_amount
from axtui.governance.teams import add_user, create_team
from axtui.server import key_admin

from .seed import Seeded


def seed_keys(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, str]]:
    """Team ``red`` (alice, bob; $40 a month) and keys ``laptop``, ``ci`` and ``old`` (revoked): name -> (id, secret).

    Key ids and secrets come from a counter, so pictures of the screen are the same on every run.
    """
    import axtui.server.keys as keys_module

    counter = itertools.count(1)
    fake = types.SimpleNamespace(token_hex=lambda n: f"{next(counter):0{2 * n}x}",
                                 token_urlsafe=lambda n: f"secret{next(counter):038d}")
    monkeypatch.setattr(keys_module, "secrets", fake)
    store, clock = seeded.store, seeded.clock
    create_team(store, "red", budget_nanos=parse_amount("40"), period="month", rpm=600, actor="test",
                via="cli", clock=clock)
    for user in ("alice", "bob"):
        add_user(store, "red", user, actor="test", via="cli", clock=clock)
    made: dict[str, tuple[str, str]] = {}
    for user, name, policy in (
        ("alice", "laptop", {"team": "red", "models": "gpt-4o*,claude-*", "expires": "30d"}),
        ("bob", "ci", {"rpm": 60, "tpm": 20000, "budget": "10"}),
        ("carol", "old", {}),
    ):
        secret, info, _ = key_admin.create(store, user, {**policy, "name": name}, actor="test", via="cli",
                                           clock=clock)
        made[name] = (info.id, secret)
    key_admin.revoke(store, made["old"][0], actor="test", via="cli", clock=clock)
    return made
