"""Alembic environment for ax.

ax runs migrations itself (`Store.open`, `ax db upgrade`), handing over an
open connection and the models' metadata in ``config.attributes``. Each
subsystem keeps its tables on its own branch (``branch_labels``), all
starting from the base revision, and `upgrade heads` applies every branch.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

config = context.config
connection = config.attributes.get("connection")
metadata = config.attributes.get("metadata", SQLModel.metadata)

if connection is None:
    raise SystemExit("run migrations through `ax db upgrade`, which opens the database for Alembic")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
