"""The quarantine on PostgreSQL, which enforces what SQLite lets through (skipped without AX_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text

from axtui.store import Call, Store
from axtui.store.quarantine import quarantined
from axtui.store.recorder import Recorder
from axtui.types import CallRecord

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg() -> Iterator[Store]:
    url = os.environ.get("AX_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL: set AX_TEST_POSTGRES_URL (CI starts one)")
    store = Store.open(url)
    with store.connect() as conn:
        for table in ("calls", "calls_quarantine", "cost_rollup_minute", "cost_rollup_hour", "cost_rollup_day"):
            conn.execute(text(f"DELETE FROM {table}"))
    yield store
    store.close()


def test_rows_postgresql_refuses_are_quarantined_and_the_rest_written(pg: Store) -> None:
    rec = Recorder(pg, flush_interval_ms=10)
    for i in range(10):
        rec.record(CallRecord(ts=1_750_000_000.0 + i, user="alice", requested_model="m", request_id=f"ok{i}"))
    rec.record(CallRecord(ts=1.0, user="u" * 300, requested_model="m", request_id="long-user"))  # varchar(256)
    rec.record(CallRecord(ts=2.0, user="bob", requested_model="m", request_id="big", input_tokens=2**40))  # int4
    rec.close()
    count = pg.run(lambda c: c.execute(select(func.count()).select_from(Call.__table__)).scalar_one())  # type: ignore[attr-defined]
    assert count == 10 and rec.quarantined == 2
    reasons = {q.request_id: q.reason for q in quarantined(pg)}
    assert set(reasons) == {"long-user", "big"}
    assert "too long" in reasons["long-user"] and "out of range" in reasons["big"]
