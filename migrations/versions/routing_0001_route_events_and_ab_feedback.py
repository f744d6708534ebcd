"""routing: failed attempts, circuit changes and A/B feedback

Revision ID: routing_0001
Revises:
Create Date: 2026-11-28 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "routing_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("routing",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "route_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("deployment", sqlmodel.sql.sqltypes.AutoString(length=384), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("error_class", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("retry_after", sa.Float(), nullable=True),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("route_events", schema=None) as batch_op:
        batch_op.create_index("ix_route_events_deployment_ts", ["deployment", "ts"], unique=False)
        batch_op.create_index("ix_route_events_ts", ["ts"], unique=False)

    op.create_table(
        "ab_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("test", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("variant", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("user", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ab_feedback", schema=None) as batch_op:
        batch_op.create_index("ix_ab_feedback_request_id", ["request_id"], unique=False)
        batch_op.create_index("ix_ab_feedback_test_ts", ["test", "ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ab_feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_ab_feedback_test_ts")
        batch_op.drop_index("ix_ab_feedback_request_id")
    op.drop_table("ab_feedback")
    with op.batch_alter_table("route_events", schema=None) as batch_op:
        batch_op.drop_index("ix_route_events_ts")
        batch_op.drop_index("ix_route_events_deployment_ts")
    op.drop_table("route_events")
