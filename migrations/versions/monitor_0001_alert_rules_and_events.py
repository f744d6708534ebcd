"""monitor: alert rules and alert events

Revision ID: monitor_0001
Revises:
Create Date: 2026-11-27 23:52:23.574183
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "monitor_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("monitor",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "monitor_alert_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("rule_name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
        sa.Column("severity", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("labels", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("delivery", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivery_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("monitor_alert_events", schema=None) as batch_op:
        batch_op.create_index("ix_monitor_alert_events_rule_ts", ["rule_id", "ts"], unique=False)
        batch_op.create_index("ix_monitor_alert_events_ts", ["ts"], unique=False)

    op.create_table(
        "monitor_alert_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
        sa.Column("severity", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("webhook", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("state_since", sa.Float(), nullable=True),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("last_fired_at", sa.Float(), nullable=True),
        sa.Column("last_resolved_at", sa.Float(), nullable=True),
        sa.Column("silenced_until", sa.Float(), nullable=True),
        sa.Column("acknowledged_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rule", name="uq_monitor_alert_rules_rule"),
    )


def downgrade() -> None:
    op.drop_table("monitor_alert_rules")
    with op.batch_alter_table("monitor_alert_events", schema=None) as batch_op:
        batch_op.drop_index("ix_monitor_alert_events_ts")
        batch_op.drop_index("ix_monitor_alert_events_rule_ts")
    op.drop_table("monitor_alert_events")
