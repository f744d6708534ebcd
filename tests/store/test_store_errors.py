"""Driver errors become store errors that say what to do."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError

from axtui import locations
from axtui.errors import StoreError, StoreLocked
from axtui.store import Store
from axtui.store._store import explain_operational


@pytest.mark.parametrize(
    ("driver_message", "needle", "kind"),
    [
        ("database is locked", "stayed locked", StoreLocked),
        ("database or disk is full", "is full", StoreError),
        ("disk I/O error", "check the free space", StoreError),
        ("file is not a database", "Move the file aside", StoreError),
        ("database disk image is malformed", "Move the file aside", StoreError),
    ],
)
def test_driver_errors_are_explained(driver_message: str, needle: str, kind: type[StoreError]) -> None:
    cls = DatabaseError if "database" in driver_message and "locked" not in driver_message else OperationalError
    err = explain_operational(cls("stmt", {}, sqlite3.DatabaseError(driver_message)), "sqlite:///x.db")
    assert isinstance(err, kind) and needle in err.message and "sqlite:///x.db" in err.message


def test_a_file_that_is_not_a_database_is_refused_and_left_alone() -> None:
    locations.db_path().write_bytes(b"not a database at all\n" * 200)
    with pytest.raises(StoreError, match="not a SQLite database"):
        Store.open()
    assert locations.db_path().read_bytes().startswith(b"not a database at all")


def test_integrity_errors_still_reach_the_caller_that_handles_them() -> None:
    store = Store.open()

    def clash(conn: object) -> None:
        raise IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))

    with pytest.raises(IntegrityError):
        store.run(clash)  # type: ignore[arg-type]
    store.close()
