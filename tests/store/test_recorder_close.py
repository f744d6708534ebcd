"""A recorder that cannot write before the process ends says how many records are lost, never nothing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pytest
from sqlalchemy.engine import Connection

from axtui.store import Store
from axtui.store.recorder import Recorder
from axtui.types import CallRecord


def _rec(i: int) -> CallRecord:
    return CallRecord(ts=1_750_000_000.0 + i, user="u", requested_model="m")


def test_records_still_unwritten_at_close_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    store = Store.open()
    release = threading.Event()

    def stuck(conn: Connection, records: Sequence[CallRecord]) -> None:
        release.wait(10)  # a database that does not answer while the process ends

    rec = Recorder(store, flush_interval_ms=10, hooks=[stuck])
    for i in range(3):
        rec.record(_rec(i))
    with caplog.at_level(logging.ERROR, logger="axtui.store.recorder"):
        rec.close(timeout=0.2)
    release.set()
    assert "3 call record(s) could not be written and are lost" in caplog.text
    store.close()


def test_a_clean_close_reports_nothing(caplog: pytest.LogCaptureFixture) -> None:
    store = Store.open()
    rec = Recorder(store, flush_interval_ms=10)
    for i in range(3):
        rec.record(_rec(i))
    with caplog.at_level(logging.ERROR, logger="axtui.store.recorder"):
        rec.close()
    assert "lost" not in caplog.text
    store.close()
