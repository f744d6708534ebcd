"""Reading the quarantine: call records the database refused (see `tables_quarantine`).

`quarantine_summary` is what a screen or an API shows (how many, the
newest reasons); `quarantined` lists the records themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from axtui.store._store import Store
from axtui.store.tables_quarantine import CallQuarantine

__all__ = ["QuarantineSummary", "QuarantinedRecord", "quarantine_summary", "quarantined"]

_Q = CallQuarantine.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """One refused record: when, which call, why, and the row ax tried to write."""

    id: int
    ts: float
    call_ts: float
    request_id: str
    reason: str
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class QuarantineSummary:
    """How many records are in quarantine, and when the newest arrived (None: none)."""

    count: int
    newest_ts: float | None
    newest_reason: str | None


def quarantine_summary(store: Store) -> QuarantineSummary:
    """The count and the newest reason, in one short read."""

    def read(conn: Connection) -> QuarantineSummary:
        count = int(conn.execute(select(func.count()).select_from(_Q)).scalar_one())
        newest = conn.execute(select(_Q.c.ts, _Q.c.reason).order_by(_Q.c.id.desc()).limit(1)).first()
        if newest is None:
            return QuarantineSummary(count, None, None)
        return QuarantineSummary(count, float(newest[0]), str(newest[1]))

    return store.run(read)


def quarantined(store: Store, *, limit: int = 100) -> list[QuarantinedRecord]:
    """The newest ``limit`` quarantined records, newest first."""

    def read(conn: Connection) -> list[QuarantinedRecord]:
        out = []
        for row in conn.execute(select(_Q).order_by(_Q.c.id.desc()).limit(limit)):
            m = row._mapping
            try:
                record = json.loads(m["record"])
            except ValueError:
                record = {"raw": m["record"]}
            out.append(QuarantinedRecord(m["id"], m["ts"], m["call_ts"], m["request_id"], m["reason"], record))
        return out

    return store.run(read)
