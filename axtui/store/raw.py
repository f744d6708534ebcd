"""`RawSql`: a statement compiled once per dialect and run on the driver's own cursor.

On the per-call and per-batch paths SQLAlchemy's own work per execution
(building the statement, processing each row's parameters: about 150 µs a
statement, tens of µs a row) costs more than the database's. The SQL is
still written once, portably, and compiled by each dialect; the rows go to
the driver as they are (positional for SQLite, named for psycopg). A driver
error comes out as SQLAlchemy's own (``IntegrityError``,
``OperationalError`` …, without the values, which may hold a prompt), so
`axtui.store.Store` retries a lock and explains an unusable database here
as it does for any statement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import ClauseElement

from axtui.errors import StoreError

__all__ = ["RawSql", "dialect_insert"]


def dialect_insert(dialect: Dialect, table: Any) -> Any:
    """``INSERT`` into ``table`` in the dialect's own form (with ``ON CONFLICT``).

    Raises:
        StoreError: the database is neither SQLite nor PostgreSQL.
    """
    if dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    else:
        raise StoreError(f"ax stores data in SQLite or PostgreSQL, not {dialect.name}; "
                         "set AX_DATABASE_URL to one of them")
    return insert(table)


class RawSql:
    """A statement, built per dialect by ``build`` (or from SQL text), run on the DBAPI cursor.

    Args:
        build: SQL text, or a function of the dialect returning a statement
            (for dialect-specific forms such as ``INSERT … ON CONFLICT``).
    """

    def __init__(self, build: str | Callable[[Dialect], ClauseElement]) -> None:
        self._build = build
        self._compiled: dict[str, tuple[str, _Args]] = {}

    def _for(self, dialect: Dialect) -> tuple[str, _Args]:
        found = self._compiled.get(dialect.name)
        if found is None:
            stmt = text(self._build) if isinstance(self._build, str) else self._build(dialect)
            c = stmt.compile(dialect=dialect)
            order = getattr(c, "positiontup", None)  # None for named parameters (psycopg)
            found = self._compiled[dialect.name] = (c.string, _positional(tuple(order)) if order else _named)
        return found

    def run(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Execute once with ``params``; the first row it returns, or None."""
        rows = self._execute(conn, params, every=False)
        return rows[0] if rows else None

    def run_all(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Execute once with ``params``; every row it returns."""
        return self._execute(conn, params, every=True)

    def _execute(self, conn: Connection, params: Mapping[str, Any], *, every: bool) -> list[tuple[Any, ...]]:
        sql, args = self._for(conn.dialect)
        error = conn.dialect.loaded_dbapi.Error
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, args(params))
            if not cursor.description:
                return []
            if every:
                return [tuple(row) for row in cursor.fetchall()]
            row = cursor.fetchone()
        except error as exc:
            raise _wrapped(conn, sql, exc) from exc
        finally:
            cursor.close()
        return [] if row is None else [tuple(row)]

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per row (the driver's ``executemany``)."""
        if not rows:
            return
        sql, args = self._for(conn.dialect)
        error = conn.dialect.loaded_dbapi.Error
        cursor = conn.connection.cursor()
        try:
            values: Any = list(map(args, rows))
            cursor.executemany(sql, values)
        except error as exc:
            raise _wrapped(conn, sql, exc) from exc
        finally:
            cursor.close()


#: A row's parameters as its driver takes them.
_Args = Callable[[Mapping[str, Any]], Sequence[Any] | Mapping[str, Any]]


def _named(params: Mapping[str, Any]) -> Mapping[str, Any]:
    return params


def _positional(order: tuple[str, ...]) -> _Args:
    """The values of ``order``'s names, in order (``itemgetter`` picks a wide row's in one C call)."""
    if len(order) == 1:
        name = order[0]
        return lambda params: (params[name],)  # one name: itemgetter would give the bare value
    return itemgetter(*order)


def _wrapped(conn: Connection, sql: str, exc: Exception) -> BaseException:
    """The SQLAlchemy exception ``conn``'s own execution would have raised for the driver's ``exc``."""
    dialect = conn.dialect
    return DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect)
