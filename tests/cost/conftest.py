"""Fixtures for the cost tests: a migrated store and a way to record calls with their rollups."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import insert

from axtui.cost.rollups import write_rollups
from axtui.cost.sheet import PriceSheet
from axtui.store import Call, Store
from axtui.store.recorder import record_to_row
from axtui.types import CallRecord


@pytest.fixture
def store() -> Iterator[Store]:
    """A migrated SQLite store in the test's AX_HOME."""
    s = Store.open()
    yield s
    s.close()


@pytest.fixture(scope="session")
def sheet() -> PriceSheet:
    """The shipped price sheet, without imported prices or overrides."""
    return PriceSheet.load(include_user=False)


def record_calls(store: Store, records: Sequence[CallRecord]) -> None:
    """Write calls and their rollups in one transaction, as the recorder's hook does."""

    def work(conn):  # type: ignore[no-untyped-def]
        if records:
            conn.execute(insert(Call.__table__), [record_to_row(r) for r in records])
        write_rollups(conn, records)

    store.run(work)
