"""ratelimit: per-subject limits, their change counter, and the store backend's state

Revision ID: ratelimit_0001
Revises:
Create Date: 2026-11-28 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'ratelimit_0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('ratelimit',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ratelimit_limits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('requests', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('tokens', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('algorithm', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('burst', sa.BigInteger(), nullable=True),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('scope', 'subject', name='uq_ratelimit_limits_subject')
    )
    op.create_table('ratelimit_state',
    sa.Column('state_key', sqlmodel.sql.sqltypes.AutoString(length=600), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('level', sa.Float(), nullable=False),
    sa.Column('prev_count', sa.BigInteger(), nullable=False),
    sa.Column('curr_count', sa.BigInteger(), nullable=False),
    sa.Column('log', sa.LargeBinary(), nullable=True),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('state_key')
    )
    op.create_index('ix_ratelimit_state_expires_at', 'ratelimit_state', ['expires_at'], unique=False)
    op.create_index('ix_ratelimit_state_subject', 'ratelimit_state', ['scope', 'subject'], unique=False)
    op.create_table('ratelimit_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('ratelimit_version')
    op.drop_index('ix_ratelimit_state_subject', table_name='ratelimit_state')
    op.drop_index('ix_ratelimit_state_expires_at', table_name='ratelimit_state')
    op.drop_table('ratelimit_state')
    op.drop_table('ratelimit_limits')
