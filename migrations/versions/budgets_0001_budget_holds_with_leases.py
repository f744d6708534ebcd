"""cost: leased holds on budget windows, so a process that dies gives its reserved room back

Revision ID: budgets_0001
Revises: cost_0001
Create Date: 2026-12-06 18:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'budgets_0001'
down_revision: str | Sequence[str] | None = 'cost_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cost_budget_holds',
    sa.Column('budget_id', sa.Integer(), nullable=False),
    sa.Column('period_start', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('held_nanos', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('budget_id', 'period_start', 'holder')
    )
    op.create_index('ix_cost_budget_holds_expires_at', 'cost_budget_holds', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_cost_budget_holds_expires_at', table_name='cost_budget_holds')
    op.drop_table('cost_budget_holds')
