"""Driver errors become store errors that say what to do."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

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


def test_statements_run_on_the_driver_fail_as_sqlalchemy_statements_do(monkeypatch: pytest.MonkeyPatch) -> None:
    """A `RawSql` statement's driver error reaches callers as SQLAlchemy's: a lock is retried, then explained."""
    from axtui.store import _store
    from axtui.store.raw import RawSql

    monkeypatch.setattr(_store, "BUSY_TIMEOUT_MS", 20)
    store = Store.open()
    store.run(lambda conn: RawSql("CREATE TABLE t (k TEXT PRIMARY KEY, secret TEXT)").run(conn, {}))
    insert = RawSql("INSERT INTO t (k, secret) VALUES (:k, :secret)")
    store.run(lambda conn: insert.run_many(conn, [{"k": "a", "secret": "sk-hidden-value-1"}]))

    with pytest.raises(IntegrityError) as clash:
        store.run(lambda conn: insert.run(conn, {"k": "a", "secret": "sk-hidden-value-2"}))
    assert "sk-hidden-value" not in str(clash.value)  # the values may be prompts: never in the message

    holder = sqlite3.connect(locations.db_path(), timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreLocked, match="stayed locked"):
            store.run(lambda conn: insert.run_many(conn, [{"k": "b", "secret": "x"}]))
    finally:
        holder.rollback()
        holder.close()
    store.run(lambda conn: insert.run_many(conn, [{"k": "b", "secret": "x"}]))  # the lock gone, it goes through
    assert store.run(lambda conn: RawSql("SELECT count(*) FROM t").run(conn, {})) == (2,)
    store.close()


def test_statements_run_on_the_driver_take_their_parameters_by_name() -> None:
    """`RawSql` hands a row's values to the driver in the statement's order, one name or many, repeated or not."""
    from axtui.store.raw import RawSql

    store = Store.open()
    store.run(lambda conn: RawSql("CREATE TABLE t (k TEXT PRIMARY KEY, a INTEGER, b INTEGER)").run(conn, {}))
    insert = RawSql("INSERT INTO t (b, k, a) VALUES (:b, :k, :a)")
    store.run(lambda conn: insert.run_many(conn, [{"k": "x", "a": 1, "b": 2}, {"a": 3, "b": 4, "k": "y"}]))
    bump = RawSql("UPDATE t SET a = a + :n, b = b + :n RETURNING k, a, b")
    assert sorted(store.run(lambda conn: bump.run_all(conn, {"n": 10}))) == [("x", 11, 12), ("y", 13, 14)]
    one = RawSql("SELECT a FROM t WHERE k = :k")
    assert store.run(lambda conn: one.run(conn, {"k": "y"})) == (13,)
    assert store.run(lambda conn: one.run_all(conn, {"k": "z"})) == []
    store.close()


def test_a_backup_onto_a_full_disk_says_to_free_space_and_leaves_nothing_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from axtui.store import _store

    def full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    store = Store.open()
    backups = tmp_path / "backups"
    backups.mkdir()
    monkeypatch.setattr(_store.shutil, "move", full)
    with pytest.raises(StoreError, match=r"\(No space left on device\); free some space on its disk \(df\)"):
        store.backup(backups / "ax-backup.db")
    assert list(backups.iterdir()) == []
    store.close()
