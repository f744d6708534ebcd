"""monitor: when an evaluator last looked at each alert rule

Revision ID: cli_0001
Revises: monitor_0001
Create Date: 2026-12-06 19:00:00

A rule's stored state is only as fresh as the last evaluation: once every
process that evaluated it has exited, ``firing`` would otherwise read as
current forever.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "cli_0001"
down_revision: str | Sequence[str] | None = "monitor_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("monitor_alert_rules") as batch:
        batch.add_column(sa.Column("evaluated_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("monitor_alert_rules") as batch:
        batch.drop_column("evaluated_at")
