"""apis: each stored response keeps its input items (responses.input_items), ids fixed when it is stored

Revision ID: apis_0002
Revises: apis_0001
Create Date: 2026-12-08 00:00:00

They were read from the chain of responses still kept, so deleting (or
outliving) an earlier turn renumbered every later turn's items. Rows stored
before this keep a null and are still read from the chain.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "apis_0002"
down_revision: str | Sequence[str] | None = "apis_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("input_items", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_column("input_items")
