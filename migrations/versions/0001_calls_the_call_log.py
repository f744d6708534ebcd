"""calls: the call log

Revision ID: 0001
Revises:
Create Date: 2026-11-27 23:42:29.604376
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('calls',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('ts', sa.Float(), nullable=False),
    sa.Column('user', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('tags', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('endpoint', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('requested_model', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
    sa.Column('deployment', sqlmodel.sql.sqltypes.AutoString(length=384), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('error_class', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('latency_ms', sa.Float(), nullable=False),
    sa.Column('ttft_ms', sa.Float(), nullable=True),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('cached_input_tokens', sa.Integer(), nullable=False),
    sa.Column('cache_write_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('reasoning_tokens', sa.Integer(), nullable=False),
    sa.Column('usage_estimated', sa.Boolean(), nullable=False),
    sa.Column('cost_nanos', sa.BigInteger(), nullable=True),
    sa.Column('saved_nanos', sa.BigInteger(), nullable=True),
    sa.Column('cache', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('similarity', sa.Float(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('route', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('variant', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('prompt_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('stream', sa.Boolean(), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.create_index('ix_calls_model_ts', ['model', 'ts'], unique=False)
        batch_op.create_index('ix_calls_provider_ts', ['provider', 'ts'], unique=False)
        batch_op.create_index('ix_calls_ts', ['ts'], unique=False)
        batch_op.create_index('ix_calls_user_ts', ['user', 'ts'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index('ix_calls_user_ts')
        batch_op.drop_index('ix_calls_ts')
        batch_op.drop_index('ix_calls_provider_ts')
        batch_op.drop_index('ix_calls_model_ts')

    op.drop_table('calls')
