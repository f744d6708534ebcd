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

    ``rpm``, ``tpm`` and ``budget_nanos`` are the limits it was given (the
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
    #: The team the key's calls count for (its budget, limits and model allow-list).
    team: str | None = Field(default=None, max_length=64)
    #: Comma-separated globs of the models the key may call; None: any.
    models: str | None = Field(default=None, max_length=1024)
    #: Epoch seconds after which the key no longer opens the gateway.
    expires: float | None = None
    tpm: int | None = None
    #: Comma-separated tags added to every call made with the key.
    tags: str | None = Field(default=None, max_length=1024)
    #: The secret before the last rotation, which works until ``prev_until``.
    prev_salt: str | None = Field(default=None, max_length=64)
    prev_digest: str | None = Field(default=None, max_length=128)
    prev_until: float | None = None
