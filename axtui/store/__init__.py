"""The store: SQLModel tables over SQLite (WAL) or PostgreSQL, migrated by Alembic.

`Store.open()` gives a migrated database; `Recorder` writes call records to
it in batches from a background thread.
"""

from axtui.store._store import Store, load_tables
from axtui.store.tables import Call

__all__ = ["Call", "Store", "load_tables"]
