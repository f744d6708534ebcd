"""Opening the store: engine, pragmas, migrations, sessions, retries.

SQLite (WAL, busy timeout) by default, PostgreSQL by URL. SQLite-only SQL
stays inside this package. Migrations are Alembic's, applied on open.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import logging
import os
import pkgutil
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.pool import NullPool, StaticPool
from sqlmodel import Session, SQLModel

from axtui import locations
from axtui.errors import SchemaTooNew, StoreError, StoreLocked

__all__ = ["Store", "load_tables"]

log = logging.getLogger(__name__)
T = TypeVar("T")

BUSY_TIMEOUT_MS = 5_000
_LOCK_RETRIES = 5


#: PostgreSQL's SQLSTATE for a write in a read-only transaction (a hot standby, a read-only user).
_READ_ONLY_SQLSTATE = "25006"


def _unusable(exc: DatabaseError) -> bool:
    """Whether a driver error means the database cannot be used (locked, damaged, unreachable, full, read-only).

    Its other kinds (integrity and programming errors) are conflicts or bugs
    that callers handle, so they pass through unchanged.
    """
    if type(exc) in (OperationalError, DatabaseError):
        return True
    # PostgreSQL reports a refused write as an internal error; it is the database, not the record.
    return getattr(exc.orig, "sqlstate", None) == _READ_ONLY_SQLSTATE


def load_tables() -> None:
    """Import every ``tables*`` module of this package, so metadata is whole."""
    from axtui import store

    for mod in pkgutil.iter_modules(store.__path__):
        if mod.name.startswith("tables"):
            importlib.import_module(f"axtui.store.{mod.name}")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def explain_operational(exc: DatabaseError, url: str) -> StoreError:
    """Turn a driver error into a store error that says what to do."""
    msg = str(exc.orig) if exc.orig is not None else str(exc)
    low = msg.lower()
    if "file is not a database" in low or "malformed" in low or "not a database" in low:
        return StoreError(
            f"the database {url} is not a SQLite database or is damaged ({msg}); ax will not touch it. "
            "Move the file aside (ax then starts a new one), or point AX_HOME or AX_DATABASE_URL at another database."
        )
    if "locked" in low or "busy" in low:
        return StoreLocked(
            f"the database {url} stayed locked for more than {BUSY_TIMEOUT_MS / 1000:g}s; "
            "another program holds a long write lock on it (a backup or an open SQLite shell?). Close it and retry."
        )
    if "disk is full" in low or "database or disk is full" in low:
        return StoreError(f"the disk holding {url} is full; free some space (or move AX_HOME) and retry")
    if "disk i/o error" in low:
        # SQLite says this when it cannot create its -wal/-shm files on a full disk, too.
        return StoreError(
            f"the database {url} could not be read or written (disk I/O error); check the free space on its disk "
            "(df) and that the file and its folder are intact, then retry"
        )
    if "readonly" in low or "read-only" in low:
        if url.startswith("sqlite"):
            return StoreError(
                f"the database {url} is read-only to ax; check that this user may write both the file and its "
                "folder (SQLite keeps ax.db-wal and ax.db-shm beside it) and that the disk is not mounted read-only"
            )
        return StoreError(
            f"the database {url} takes no writes (a read-only replica, or a user without write rights?); "
            "point AX_DATABASE_URL at the primary, as a user that may write"
        )
    if "unable to open" in low:
        return StoreError(f"cannot open the database {url}; check that its folder exists and is writable")
    return StoreError(f"database error on {url}: {msg}")


class Store:
    """A database with ax's schema, migrated to this ax's revision.

    Use `Store.open` rather than the constructor. ``store.engine`` is the
    SQLAlchemy engine; `session` and `connect` give transactions that commit
    on success and retry when SQLite reports a lock.
    """

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self._closed = False
        self.lock = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        """Whether the store is a SQLite file (or memory)."""
        return self.engine.dialect.name == "sqlite"

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None for a server database or memory."""
        if not self.is_sqlite:
            return None
        db = self.engine.url.database
        return Path(db) if db and db != ":memory:" else None

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> Store:
        """Open (and by default migrate) the store at ``url``.

        Raises:
            SchemaTooNew: the database was migrated by a newer ax; it is left untouched.
            StoreError: the database cannot be opened; the message says why.
        """
        url = url or locations.database_url()
        engine = _make_engine(url)
        store = cls(engine, url)
        try:
            if migrate:
                store.upgrade()
            else:
                store.check_revision()
        except DatabaseError as exc:
            engine.dispose()
            if not _unusable(exc):
                raise
            raise explain_operational(exc, _redact(url)) from None
        except Exception:
            engine.dispose()
            raise
        return store

    def upgrade(self) -> None:
        """Apply every pending migration (all branches); refuse a newer schema.

        A database already at this ax's heads is left alone without loading
        Alembic (the common case, and most of a command's start-up time).
        Processes that start together migrate one at a time.
        """
        if self.revisions() == shipped_heads():
            return
        from alembic import command

        with _migration_lock(self):
            self.check_revision()
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(7414100)"))
                cfg = _alembic_config(conn)
                command.upgrade(cfg, "heads")

    def check_writable(self) -> None:
        """Refuse a database this process may read but not write.

        A statement that would write and changes nothing: SQLite refuses it
        on a read-only file, folder or disk, PostgreSQL on a read-only
        replica. A database locked by another writer passes (it takes
        writes again once the lock is gone).

        Raises:
            StoreError: the database takes no writes; the message says why.
        """
        try:
            with self.engine.begin() as conn:
                conn.execute(text("UPDATE calls SET ts = ts WHERE 1 = 0"))
        except DatabaseError as exc:
            if not _unusable(exc):
                raise
            err = explain_operational(exc, _redact(self.url))
            if not isinstance(err, StoreLocked):
                raise err from None

    def revisions(self) -> set[str]:
        """The revisions the database is at (empty for a new database)."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return set()
            return {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}

    def check_revision(self) -> None:
        """Raise `SchemaTooNew` if the database knows revisions this ax does not."""
        from alembic.script import ScriptDirectory

        with self.engine.connect() as conn:
            script = ScriptDirectory.from_config(_alembic_config(conn))
        known = {rev.revision for rev in script.walk_revisions()}
        unknown = self.revisions() - known
        if unknown:
            raise SchemaTooNew(
                f"the database {_redact(self.url)} was migrated by a newer ax (revision {', '.join(sorted(unknown))}); "
                "this ax will not touch it. Upgrade ax (pip install -U axtui), or point AX_HOME / AX_DATABASE_URL "
                "at another database."
            )

    def _retrying(self, work: Callable[[], T]) -> T:
        delay = 0.05
        for attempt in range(_LOCK_RETRIES):
            try:
                return work()
            except DatabaseError as exc:
                if not _unusable(exc):
                    raise
                err = explain_operational(exc, _redact(self.url))
                if not isinstance(err, StoreLocked) or attempt == _LOCK_RETRIES - 1:
                    raise err from None
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """An ORM session in a transaction: committed on success, rolled back on error."""
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
                session.commit()
        except DatabaseError as exc:
            if not _unusable(exc):
                raise
            raise explain_operational(exc, _redact(self.url)) from None

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A Core connection in a transaction (committed on success)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except DatabaseError as exc:
            if not _unusable(exc):
                raise
            raise explain_operational(exc, _redact(self.url)) from None

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run ``work(conn)`` in a transaction, retrying while the database is locked."""

        def once() -> T:
            with self.engine.begin() as conn:
                return work(conn)

        return self._retrying(once)

    def backup(self, dest: Path) -> Path:
        """An online copy that is consistent while others write (SQLite only).

        Raises:
            StoreError: the store is not a SQLite file.
        """
        src = self.path
        if src is None:
            raise StoreError(
                "ax db backup copies SQLite files; for PostgreSQL use pg_dump on the database in AX_DATABASE_URL"
            )
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / f"ax-backup-{time.strftime('%Y%m%d-%H%M%S')}.db"
        tmp = dest.with_name(dest.name + ".partial")
        try:
            tmp.unlink(missing_ok=True)
            locations.create_private(tmp)  # a copy of every call: as private as the store
            with sqlite3.connect(src, timeout=BUSY_TIMEOUT_MS / 1000) as source, sqlite3.connect(tmp) as target:
                source.backup(target)
            target.close()
            shutil.move(tmp, dest)
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if dest.parent.exists() and not dest.parent.is_dir():
                reason = f"{dest.parent} is a file, not a folder"
            if "full" in reason.lower() or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
                raise StoreError(f"cannot write the backup {dest} ({reason}); free some space on its disk (df), "
                                 "or choose a writable folder on another one") from None
            raise StoreError(f"cannot write the backup {dest} ({reason}); choose a writable folder") from None
        return dest

    def close(self) -> None:
        """Release every connection."""
        if not self._closed:
            self._closed = True
            self.engine.dispose()


def _make_engine(url: str) -> Engine:
    load_tables()
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        if not memory:
            db = url.split(":///", 1)[1] if ":///" in url else ""
            if db:
                folder = Path(db).expanduser().parent
                try:
                    # SQLite gives its -wal and -shm files the database file's mode: the whole store stays private.
                    locations.create_private(Path(db).expanduser())
                except OSError as exc:
                    raise StoreError(
                        f"cannot create the database in {folder} ({exc.strerror}); "
                        "set AX_HOME or AX_DATABASE_URL to a writable place"
                    ) from None
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            poolclass=StaticPool if memory else None,
            # The connection used last, again: SQLite drops a connection's page cache whenever another
            # connection has written since it last read, so taking the pool's oldest (its default) made
            # every background write re-read the pages it needed from disk.
            **({} if memory else {"pool_use_lifo": True}),
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme.split("+", 1)[0] not in ("postgres", "postgresql"):
        raise StoreError(
            f"the database URL {_redact(url)!r} is not one ax can use; write sqlite:///PATH/TO/ax.db "
            "(four slashes for an absolute path) or postgresql://USER:PASSWORD@HOST:PORT/DATABASE "
            "in AX_DATABASE_URL, or unset it to use ax.db in the data folder"
        )
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        return create_engine(url, pool_pre_ping=True, poolclass=None if "pool" not in url else NullPool)
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"the database driver for {_redact(url)} is not installed ({exc.name}); "
            "install it with: pip install 'axtui[postgres]'"
        ) from None
    except Exception as exc:
        raise StoreError(
            f"cannot use the database URL {_redact(url)} ({exc}); write it as "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE in AX_DATABASE_URL"
        ) from None


_REVISION = re.compile(r"^revision(?:: [^=]+)? = ['\"]([^'\"]+)['\"]", re.M)
_DOWN = re.compile(r"^down_revision(?:: [^=]+)? = (.+)$", re.M)


@functools.cache
def shipped_heads() -> frozenset[str]:
    """The head revisions of the migrations shipped with this ax, read cheaply.

    Only the ``revision`` and ``down_revision`` lines are read; Alembic
    itself is loaded only when something must be migrated.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (locations.migrations_dir() / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        rev, down = _REVISION.search(source), _DOWN.search(source)
        if rev is None:
            continue
        revisions.add(rev.group(1))
        if down is not None:
            parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    return frozenset(revisions - parents)


@contextmanager
def _migration_lock(store: Store) -> Iterator[None]:
    """One migrating process at a time on a SQLite file (PostgreSQL uses an advisory lock)."""
    path = store.path
    if path is None:
        yield
        return
    import fcntl

    lock = path.with_name(path.name + ".migrate-lock")
    with os.fdopen(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alembic_config(conn: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(locations.migrations_dir()))
    cfg.attributes["connection"] = conn
    cfg.attributes["metadata"] = SQLModel.metadata
    return cfg


def _redact(url: str) -> str:
    """A database URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
