"""keys: gateway API keys, stored hashed

Revision ID: keys_0001
Revises:
Create Date: 2026-11-28 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "keys_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("keys",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_keys",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("salt", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("user", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("rpm", sa.Integer(), nullable=True),
        sa.Column("budget_nanos", sa.BigInteger(), nullable=True),
        sa.Column("trusted", sa.Boolean(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("revoked", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("gateway_keys", schema=None) as batch_op:
        batch_op.create_index("ix_gateway_keys_user", ["user"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gateway_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_keys_user")
    op.drop_table("gateway_keys")
