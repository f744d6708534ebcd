"""metrics: per-second rollups for live views over several processes

Revision ID: metrics_0001
Revises:
Create Date: 2026-11-27 23:52:23.574183
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "metrics_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("metrics",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metrics_second",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("sec", sa.BigInteger(), nullable=False),
        sa.Column("dim", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=384), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("rate_limited", sa.Integer(), nullable=False),
        sa.Column("budget_refused", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Integer(), nullable=False),
        sa.Column("cache_hits", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("unknown_cost", sa.Integer(), nullable=False),
        sa.Column("latency", sa.Text(), nullable=False),
        sa.Column("ttft", sa.Text(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("metrics_second", schema=None) as batch_op:
        batch_op.create_index("ix_metrics_second_sec", ["sec"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("metrics_second", schema=None) as batch_op:
        batch_op.drop_index("ix_metrics_second_sec")
    op.drop_table("metrics_second")
