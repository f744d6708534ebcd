"""Keys, teams and the audit trail on PostgreSQL (CI starts one; skipped without AX_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from axtui.clock import FakeClock
from axtui.governance.teams import add_user, create_team, delete_team
from axtui.server.keys import create_key, rotate_key, verify_key
from axtui.store import Store
from axtui.store.audit import list_audit


@pytest.fixture
def pg() -> Iterator[Store]:
    url = os.environ.get("AX_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL: set AX_TEST_POSTGRES_URL (CI starts one)")
    store = Store.open(url)
    with store.connect() as conn:
        for table in ("audit", "team_members", "teams", "gateway_keys", "cost_budgets", "ratelimit_limits"):
            conn.execute(text(f"DELETE FROM {table}"))
    yield store
    store.close()


def test_keys_teams_and_audit_on_postgresql(pg: Store) -> None:
    clock = FakeClock()
    create_team(pg, "red", budget_nanos=10**10, period="week", rpm=10, models="gpt-4o*", actor="ops", via="cli",
                clock=clock)
    add_user(pg, "red", "alice", actor="ops", via="cli", clock=clock)
    old, info = create_key(pg, "alice", models="gpt-4o-mini", tags="a,b", clock=clock)
    assert info.team == "red" and info.team_models == ("gpt-4o*",)
    new, _ = rotate_key(pg, info.id, grace_s=60, clock=clock)
    found = verify_key(pg, old)
    assert found is not None and found.grace_until == clock.now() + 60
    assert verify_key(pg, new) is not None
    assert {e.action for e in list_audit(pg)} == {"budget.set", "ratelimit.set", "team.create", "team.add_user"}
    delete_team(pg, "red", actor="ops", via="cli", clock=clock)
    assert "team.delete" in {e.action for e in list_audit(pg)}
