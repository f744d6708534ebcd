"""Fixtures for the monitoring tests: a migrated store, a fake clock, calls written like the recorder does."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import insert

from axtui.clock import FakeClock
from axtui.cost.rollups import write_rollups
from axtui.metrics.shared import SecondsHook
from axtui.store import Call, Store
from axtui.store.recorder import record_to_row
from axtui.types import CallRecord


@pytest.fixture
def store() -> Iterator[Store]:
    """A migrated SQLite store in the test's AX_HOME."""
    s = Store.open()
    yield s
    s.close()


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when told."""
    return FakeClock()


def call(ts: float, **kw: Any) -> CallRecord:
    """A call record with sensible defaults."""
    base: dict[str, Any] = dict(
        ts=ts, user="alice", requested_model="fast", status="ok", provider="openai", model="gpt-4o-mini",
        deployment="openai/gpt-4o-mini", latency_ms=120.0, ttft_ms=40.0, input_tokens=100, output_tokens=50,
        cost_nanos=1_500, cache="miss", request_id=f"r-{ts}",
    )  # fmt: skip
    base.update(kw)
    return CallRecord(**base)


def record_calls(store: Store, records: Sequence[CallRecord], *, seconds: bool = False) -> None:
    """Write calls with their cost rollups (and per-second rows), in one transaction, as the recorder does."""
    hook = SecondsHook(retention_s=10**9) if seconds else None

    def work(conn: Any) -> None:
        if records:
            conn.execute(insert(Call.__table__), [record_to_row(r) for r in records])
        write_rollups(conn, records)
        if hook is not None:
            hook(conn, records)

    store.run(work)
