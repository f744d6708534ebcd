"""cost: budgets, their shared counters, alert events and spend rollups (minute, hour, day)

Revision ID: cost_0001
Revises:
Create Date: 2026-11-27 23:51:29.178954
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'cost_0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('cost',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cost_budget_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('budget_id', sa.Integer(), nullable=False),
    sa.Column('period_start', sa.BigInteger(), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=False),
    sa.Column('ts', sa.Float(), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('spent_nanos', sa.BigInteger(), nullable=False),
    sa.Column('limit_nanos', sa.BigInteger(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('delivery', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('delivery_error', sa.Text(), nullable=True),
    sa.Column('delivered_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('budget_id', 'period_start', 'threshold', name='uq_cost_budget_alerts_once')
    )
    with op.batch_alter_table('cost_budget_alerts', schema=None) as batch_op:
        batch_op.create_index('ix_cost_budget_alerts_ts', ['ts'], unique=False)

    op.create_table('cost_budget_windows',
    sa.Column('budget_id', sa.Integer(), nullable=False),
    sa.Column('period_start', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('spent_nanos', sa.BigInteger(), nullable=False),
    sa.Column('reserved_nanos', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('budget_id', 'period_start')
    )
    op.create_table('cost_budgets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('scope_value', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('limit_nanos', sa.BigInteger(), nullable=False),
    sa.Column('hard', sa.Boolean(), nullable=False),
    sa.Column('thresholds', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('webhook', sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('scope_kind', 'scope_value', 'period', name='uq_cost_budgets_scope_period')
    )
    op.create_table('cost_rollup_day',
    sa.Column('dim', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('bucket', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cached_input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cache_write_tokens', sa.BigInteger(), nullable=False),
    sa.Column('output_tokens', sa.BigInteger(), nullable=False),
    sa.Column('reasoning_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cost_nanos', sa.BigInteger(), nullable=False),
    sa.Column('priced_calls', sa.Integer(), nullable=False),
    sa.Column('unknown_price_calls', sa.Integer(), nullable=False),
    sa.Column('cache_hits', sa.Integer(), nullable=False),
    sa.Column('saved_nanos', sa.BigInteger(), nullable=False),
    sa.Column('latency_ms_sum', sa.Float(), nullable=False),
    sa.Column('ttft_ms_sum', sa.Float(), nullable=False),
    sa.Column('ttft_calls', sa.Integer(), nullable=False),
    sa.Column('lat_00', sa.Integer(), nullable=False),
    sa.Column('lat_01', sa.Integer(), nullable=False),
    sa.Column('lat_02', sa.Integer(), nullable=False),
    sa.Column('lat_03', sa.Integer(), nullable=False),
    sa.Column('lat_04', sa.Integer(), nullable=False),
    sa.Column('lat_05', sa.Integer(), nullable=False),
    sa.Column('lat_06', sa.Integer(), nullable=False),
    sa.Column('lat_07', sa.Integer(), nullable=False),
    sa.Column('lat_08', sa.Integer(), nullable=False),
    sa.Column('lat_09', sa.Integer(), nullable=False),
    sa.Column('lat_10', sa.Integer(), nullable=False),
    sa.Column('lat_11', sa.Integer(), nullable=False),
    sa.Column('lat_12', sa.Integer(), nullable=False),
    sa.Column('lat_13', sa.Integer(), nullable=False),
    sa.Column('lat_14', sa.Integer(), nullable=False),
    sa.Column('lat_15', sa.Integer(), nullable=False),
    sa.Column('lat_16', sa.Integer(), nullable=False),
    sa.Column('lat_17', sa.Integer(), nullable=False),
    sa.Column('lat_18', sa.Integer(), nullable=False),
    sa.Column('lat_19', sa.Integer(), nullable=False),
    sa.Column('lat_20', sa.Integer(), nullable=False),
    sa.Column('lat_21', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('dim', 'bucket', 'value', 'provider'),
    sqlite_with_rowid=False,
    )
    op.create_table('cost_rollup_hour',
    sa.Column('dim', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('bucket', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cached_input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cache_write_tokens', sa.BigInteger(), nullable=False),
    sa.Column('output_tokens', sa.BigInteger(), nullable=False),
    sa.Column('reasoning_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cost_nanos', sa.BigInteger(), nullable=False),
    sa.Column('priced_calls', sa.Integer(), nullable=False),
    sa.Column('unknown_price_calls', sa.Integer(), nullable=False),
    sa.Column('cache_hits', sa.Integer(), nullable=False),
    sa.Column('saved_nanos', sa.BigInteger(), nullable=False),
    sa.Column('latency_ms_sum', sa.Float(), nullable=False),
    sa.Column('ttft_ms_sum', sa.Float(), nullable=False),
    sa.Column('ttft_calls', sa.Integer(), nullable=False),
    sa.Column('lat_00', sa.Integer(), nullable=False),
    sa.Column('lat_01', sa.Integer(), nullable=False),
    sa.Column('lat_02', sa.Integer(), nullable=False),
    sa.Column('lat_03', sa.Integer(), nullable=False),
    sa.Column('lat_04', sa.Integer(), nullable=False),
    sa.Column('lat_05', sa.Integer(), nullable=False),
    sa.Column('lat_06', sa.Integer(), nullable=False),
    sa.Column('lat_07', sa.Integer(), nullable=False),
    sa.Column('lat_08', sa.Integer(), nullable=False),
    sa.Column('lat_09', sa.Integer(), nullable=False),
    sa.Column('lat_10', sa.Integer(), nullable=False),
    sa.Column('lat_11', sa.Integer(), nullable=False),
    sa.Column('lat_12', sa.Integer(), nullable=False),
    sa.Column('lat_13', sa.Integer(), nullable=False),
    sa.Column('lat_14', sa.Integer(), nullable=False),
    sa.Column('lat_15', sa.Integer(), nullable=False),
    sa.Column('lat_16', sa.Integer(), nullable=False),
    sa.Column('lat_17', sa.Integer(), nullable=False),
    sa.Column('lat_18', sa.Integer(), nullable=False),
    sa.Column('lat_19', sa.Integer(), nullable=False),
    sa.Column('lat_20', sa.Integer(), nullable=False),
    sa.Column('lat_21', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('dim', 'bucket', 'value', 'provider'),
    sqlite_with_rowid=False,
    )
    op.create_table('cost_rollup_minute',
    sa.Column('dim', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('bucket', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cached_input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cache_write_tokens', sa.BigInteger(), nullable=False),
    sa.Column('output_tokens', sa.BigInteger(), nullable=False),
    sa.Column('reasoning_tokens', sa.BigInteger(), nullable=False),
    sa.Column('cost_nanos', sa.BigInteger(), nullable=False),
    sa.Column('priced_calls', sa.Integer(), nullable=False),
    sa.Column('unknown_price_calls', sa.Integer(), nullable=False),
    sa.Column('cache_hits', sa.Integer(), nullable=False),
    sa.Column('saved_nanos', sa.BigInteger(), nullable=False),
    sa.Column('latency_ms_sum', sa.Float(), nullable=False),
    sa.Column('ttft_ms_sum', sa.Float(), nullable=False),
    sa.Column('ttft_calls', sa.Integer(), nullable=False),
    sa.Column('lat_00', sa.Integer(), nullable=False),
    sa.Column('lat_01', sa.Integer(), nullable=False),
    sa.Column('lat_02', sa.Integer(), nullable=False),
    sa.Column('lat_03', sa.Integer(), nullable=False),
    sa.Column('lat_04', sa.Integer(), nullable=False),
    sa.Column('lat_05', sa.Integer(), nullable=False),
    sa.Column('lat_06', sa.Integer(), nullable=False),
    sa.Column('lat_07', sa.Integer(), nullable=False),
    sa.Column('lat_08', sa.Integer(), nullable=False),
    sa.Column('lat_09', sa.Integer(), nullable=False),
    sa.Column('lat_10', sa.Integer(), nullable=False),
    sa.Column('lat_11', sa.Integer(), nullable=False),
    sa.Column('lat_12', sa.Integer(), nullable=False),
    sa.Column('lat_13', sa.Integer(), nullable=False),
    sa.Column('lat_14', sa.Integer(), nullable=False),
    sa.Column('lat_15', sa.Integer(), nullable=False),
    sa.Column('lat_16', sa.Integer(), nullable=False),
    sa.Column('lat_17', sa.Integer(), nullable=False),
    sa.Column('lat_18', sa.Integer(), nullable=False),
    sa.Column('lat_19', sa.Integer(), nullable=False),
    sa.Column('lat_20', sa.Integer(), nullable=False),
    sa.Column('lat_21', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('dim', 'bucket', 'value', 'provider'),
    sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table('cost_rollup_minute')
    op.drop_table('cost_rollup_hour')
    op.drop_table('cost_rollup_day')
    op.drop_table('cost_budgets')
    op.drop_table('cost_budget_windows')
    with op.batch_alter_table('cost_budget_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_cost_budget_alerts_ts')

    op.drop_table('cost_budget_alerts')
