"""cache: response cache entries and counters

Revision ID: cache_0001
Revises:
Create Date: 2026-11-28 00:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'cache_0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('cache',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cache_counters',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('cache_entries',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('partition', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('user', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('served_model', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=True),
    sa.Column('last_hit_at', sa.Float(), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('cost_nanos', sa.BigInteger(), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('turns', sa.Integer(), nullable=False),
    sa.Column('embedder', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=True),
    sa.Column('guards', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('cache_entries', schema=None) as batch_op:
        batch_op.create_index('ix_cache_entries_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_cache_entries_expires_at', ['expires_at'], unique=False)
        batch_op.create_index('ix_cache_entries_last_hit_at', ['last_hit_at'], unique=False)
        batch_op.create_index('ix_cache_entries_partition', ['partition'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cache_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_cache_entries_partition')
        batch_op.drop_index('ix_cache_entries_last_hit_at')
        batch_op.drop_index('ix_cache_entries_expires_at')
        batch_op.drop_index('ix_cache_entries_created_at')

    op.drop_table('cache_entries')
    op.drop_table('cache_counters')
