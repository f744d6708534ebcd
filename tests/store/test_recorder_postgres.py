"""The quarantine on PostgreSQL, which enforces what SQLite lets through (skipped without AX_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from axtui.errors import StoreError
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


def _read_only(dbapi_conn: Any, _record: Any) -> None:
    # As on a hot standby, or for a user whose transactions are read-only.
    with dbapi_conn.cursor() as cur:
        cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    dbapi_conn.commit()


def test_records_a_read_only_postgresql_refuses_wait_for_it_instead_of_being_dropped(pg: Store) -> None:
    event.listen(pg.engine, "connect", _read_only)
    pg.engine.dispose()
    rec = Recorder(pg, flush_interval_ms=10)
    try:
        rec.record(CallRecord(ts=1_750_000_000.0, user="alice", requested_model="m", request_id="kept"))
        deadline = time.monotonic() + 10
        while rec.last_error is None and rec.dropped == 0:
            assert time.monotonic() < deadline, "the recorder never tried to write"
            time.sleep(0.01)
        assert (rec.dropped, rec.quarantined) == (0, 0)
        assert rec.last_error is not None and "takes no writes" in rec.last_error
        with pytest.raises(StoreError, match=r"takes no writes .* point AX_DATABASE_URL at the primary"):
            pg.check_writable()  # a gateway refuses to serve on it
    finally:
        event.remove(pg.engine, "connect", _read_only)
        pg.engine.dispose()
    assert rec.flush(10)  # writable again: written
    rec.close()
    count = pg.run(lambda c: c.execute(select(func.count()).select_from(Call.__table__)).scalar_one())  # type: ignore[attr-defined]
    assert count == 1
