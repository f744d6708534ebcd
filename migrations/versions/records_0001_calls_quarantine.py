"""records: calls_quarantine, the call records the database refused

Revision ID: records_0001
Revises:
Create Date: 2026-12-06 18:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "records_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("records",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calls_quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("call_ts", sa.Float(), nullable=False),
        sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("calls_quarantine", schema=None) as batch_op:
        batch_op.create_index("ix_calls_quarantine_ts", ["ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("calls_quarantine", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_quarantine_ts")
    op.drop_table("calls_quarantine")
