"""Call records the database refused, kept with the reason.

A record that cannot be written (a value out of the column's range, a
constraint it breaks, a batch hook that fails on it) is not a reason to
stop recording: the recorder writes the rest of its batch row by row and
keeps each refused record here, whole, as JSON, with the database's
reason. ``ax`` never reads these back into the call log by itself; an
operator can (``SELECT record FROM calls_quarantine``).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

__all__ = ["CallQuarantine"]


class CallQuarantine(SQLModel, table=True):
    """One call record the database refused.

    ``ts`` is when it was quarantined (epoch seconds), ``call_ts`` when the
    call started; ``record`` is the row ax tried to write, as JSON.
    """

    __tablename__ = "calls_quarantine"
    __table_args__ = (Index("ix_calls_quarantine_ts", "ts"),)

    id: int | None = Field(default=None, primary_key=True)
    ts: float
    call_ts: float
    request_id: str = Field(default="", max_length=64)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    record: str = Field(sa_column=Column(Text, nullable=False))
