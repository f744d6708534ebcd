"""Gateway API keys: who may call `ax serve`, stored hashed.

A key is shown once when it is made and never stored: the row keeps a
random per-key salt and the SHA-256 of salt and secret. The key's public
id is part of the key itself (``axk_<id>_<secret>``), so a presented key is
found by id and checked in constant time.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index
from sqlmodel import Field, SQLModel

__all__ = ["GatewayKey"]


class GatewayKey(SQLModel, table=True):
    """One gateway key (the hash of it, and what it may do).

    ``rpm`` and ``budget_nanos`` are the limits it was created with (the
    rate limiter and the budgets hold the live state); ``trusted`` lets the
    key name its end users in the OpenAI ``user`` field. ``created`` and
    ``revoked`` are epoch seconds; a revoked key is kept for the record.
    """

    __tablename__ = "gateway_keys"
    __table_args__ = (Index("ix_gateway_keys_user", "user"),)

    id: str = Field(primary_key=True, max_length=32)
    salt: str = Field(max_length=64)
    digest: str = Field(max_length=128)
    user: str = Field(max_length=256)
    name: str = Field(default="", max_length=256)
    rpm: int | None = None
    budget_nanos: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    trusted: bool = False
    created: float
    revoked: float | None = None
