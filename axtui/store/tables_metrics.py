"""Per-second metrics rollups, for live views over several processes.

Every process's recorder adds, in each batch's transaction, one
``metrics_second`` row per second, dimension and key seen in the batch
(dimension ``all`` with an empty key is every call). Rows are only ever
inserted, never updated, so replicas writing the same second never
contend; a reader sums the rows of a second. Latency and TTFT are
mergeable log-bucket histograms in text form
(`axtui.histogram.LogHistogram.to_text`).

Rows are kept ``metrics.second_retention_s`` (an hour by default): long
enough for any live window; history comes from the per-minute and per-hour
cost rollups.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, Text
from sqlmodel import Field, SQLModel

__all__ = ["MetricsSecond"]

# SQLite only makes INTEGER PRIMARY KEY the fast rowid alias; PostgreSQL
# needs 64 bits because ids grow by a few hundred a second, for years.
_ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class MetricsSecond(SQLModel, table=True):
    """Counts, tokens, spend and latency histograms of one second for one key."""

    __tablename__ = "metrics_second"
    __table_args__ = (Index("ix_metrics_second_sec", "sec"),)

    id: int | None = Field(default=None, sa_column=Column(_ID_TYPE, primary_key=True, autoincrement=True))
    sec: int = Field(sa_column=Column(BigInteger, nullable=False))
    dim: str = Field(max_length=12)
    key: str = Field(default="", max_length=384)
    requests: int = 0
    ok: int = 0
    errors: int = 0
    rate_limited: int = 0
    budget_refused: int = 0
    cancelled: int = 0
    cache_hits: int = 0
    input_tokens: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    output_tokens: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    cost_nanos: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    unknown_cost: int = 0
    latency: str = Field(default="", sa_column=Column(Text, nullable=False))
    ttft: str = Field(default="", sa_column=Column(Text, nullable=False))
    last_seen: float | None = None
