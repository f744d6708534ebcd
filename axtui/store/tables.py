"""The call log: one row per call, failed ones too.

Subsystems keep their own tables in sibling modules named ``tables_*.py``
(the store imports every one of them, so the metadata is complete), each
with its own Alembic branch in ``migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

__all__ = ["Call"]


class Call(SQLModel, table=True):
    """One recorded call (`axtui.types.CallRecord` as a row).

    ``ts`` is epoch seconds (UTC) when the call started. Money is integer
    nano-dollars; ``cost_nanos`` is NULL when the price is unknown, which is
    not the same as free. ``tags`` is comma-separated.
    """

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_ts", "ts"),
        Index("ix_calls_user_ts", "user", "ts"),
        Index("ix_calls_provider_ts", "provider", "ts"),
        Index("ix_calls_model_ts", "model", "ts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(default="", max_length=64)
    ts: float
    user: str = Field(max_length=256)
    key: str | None = Field(default=None, max_length=64)
    tags: str = Field(default="", max_length=1024)
    endpoint: str = Field(default="chat", max_length=16)
    requested_model: str = Field(max_length=256)
    provider: str | None = Field(default=None, max_length=128)
    model: str | None = Field(default=None, max_length=256)
    deployment: str | None = Field(default=None, max_length=384)
    status: str = Field(max_length=16)
    error_class: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    http_status: int | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    usage_estimated: bool = False
    cost_nanos: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    saved_nanos: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    cache: str = Field(default="miss", max_length=16)
    similarity: float | None = None
    attempts: int = 0
    route: str | None = Field(default=None, max_length=64)
    rule: str | None = Field(default=None, max_length=128)
    variant: str | None = Field(default=None, max_length=128)
    region: str | None = Field(default=None, max_length=64)
    prompt_hash: str | None = Field(default=None, max_length=64)
    stream: bool = False
    prompt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
