"""What every command shares: error handling, exit codes, output, async.

Exit codes: 0 done, 1 upstream failure (or a check that failed, such as
``ax cost budget check``), 2 usage or config error (a provider key
variable that is unset included), 3 refused by a rate limit or a budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import json
import logging
import math
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from axtui.errors import (
    AxError,
    BudgetExceeded,
    ConfigError,
    ProviderError,
    ProviderKeyMissing,
    RateLimited,
    RequestError,
    StoreError,
)
from axtui.money import usd_text
from axtui.redaction import ScrubFilter, scrub

__all__ = [
    "EXIT_REFUSED",
    "EXIT_UPSTREAM",
    "EXIT_USAGE",
    "FiniteFloat",
    "check_bind",
    "console",
    "dump_json",
    "err_console",
    "exit_code_for",
    "fail",
    "fit_table",
    "handle_errors",
    "open_store",
    "run_async",
]

EXIT_UPSTREAM = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def exit_code_for(exc: AxError) -> int:
    """The exit code a command ends with for ``exc``."""
    if isinstance(exc, (RateLimited, BudgetExceeded)):
        return EXIT_REFUSED
    if isinstance(exc, (ConfigError, RequestError, ProviderKeyMissing)):
        return EXIT_USAGE
    if isinstance(exc, StoreError):
        return EXIT_USAGE
    if isinstance(exc, ProviderError):
        return EXIT_UPSTREAM
    return EXIT_UPSTREAM


def describe(exc: AxError) -> str:
    """One message for people, with the wait for refusals."""
    msg = exc.message
    retry = getattr(exc, "retry_after", None)
    if isinstance(exc, (RateLimited, BudgetExceeded)) and retry:
        msg += f" (retry in {retry:.1f}s)" if "retry in" not in msg else ""
    return msg


def _print_error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(scrub(message))}", markup=True, soft_wrap=True)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except AxError as exc:
        _print_error(describe(exc))
        raise SystemExit(exit_code_for(exc)) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise SystemExit(130) from None
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise  # click reports these itself, with the usage line
    except BrokenPipeError:
        # The reader went away (`ax monitor export | head`): stop quietly, as rich
        # does for its own output, and keep Python from failing again at exit.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(EXIT_UPSTREAM) from None
    except OSError as exc:
        # The machine refused something: a file, a folder, a socket.
        if os.environ.get("AX_DEBUG"):
            raise
        _print_error(_describe_os_error(exc))
        raise SystemExit(EXIT_USAGE) from None
    except Exception as exc:
        # A bug in ax: say so in one line; the traceback is one variable away.
        if os.environ.get("AX_DEBUG"):
            raise
        undecoded = _not_utf8(exc)
        if undecoded is not None:
            _print_error(undecoded)
            raise SystemExit(EXIT_USAGE) from None
        detail = str(exc) or "no message"
        _print_error(
            f"ax failed unexpectedly ({type(exc).__name__}: {detail}). This is a bug in ax; please report it "
            "with the command you ran. Run it again with AX_DEBUG=1 to see where it happened."
        )
        raise SystemExit(EXIT_UPSTREAM) from None


def _not_utf8(exc: Exception) -> str | None:
    """What to say when ``exc`` is text given in another encoding failing to be written as UTF-8, or None.

    Python keeps a byte of an argument (or a file name, a variable) that is
    not UTF-8 as a lone surrogate, ``'\\udcff'`` for 0xff: any store, file
    or terminal that takes UTF-8 refuses it, far from where it came in.
    """
    if not isinstance(exc, UnicodeEncodeError) or not isinstance(exc.object, str):
        return None
    bad = exc.object[exc.start:exc.end]
    if not bad or not all("\udc80" <= c <= "\udcff" for c in bad):
        return None
    byte = ord(bad[0]) - 0xDC00
    return (f"{exc.object!r} is not UTF-8 text: {bad[0]!r} stands for the byte 0x{byte:02x}, which came in another "
            "encoding (the terminal's, or a file's); give it again as UTF-8")


def _describe_os_error(exc: OSError) -> str:
    what = exc.strerror or str(exc) or type(exc).__name__
    where = exc.filename if exc.filename is not None else None
    if where is None:
        return f"the system refused: {what}; check the paths, permissions and free space involved"
    return f"{where}: {what}; check that the path exists, is writable, and that there is free space"


class _ReadableLogs(logging.Filter):
    """Log lines for people: retries said in words, secrets scrubbed."""

    def __init__(self) -> None:
        super().__init__()
        self._scrub = ScrubFilter()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "stamina.retry_scheduled":
            # stamina logs an event name and puts the facts in extras.
            wait = getattr(record, "stamina.wait_for", None)
            attempt = getattr(record, "stamina.retry_num", None)
            cause = str(getattr(record, "stamina.caused_by", "an error"))[:300]
            record.msg, record.args = f"retry {attempt} in {wait}s after {cause}", None
        return self._scrub.filter(record)


def _setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="ax: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _ReadableLogs) for f in handler.filters):
            handler.addFilter(_ReadableLogs())


def handle_errors(fn: F) -> F:
    """Turn any failure into a one-line message and the right exit code, never a traceback.

    `AxError` gets its own message and exit code; an `OSError` (a file, a
    folder or a port the system refused) exits 2 naming the path; anything
    else is a bug in ax, reported in one line (exit 1) with the hint to set
    ``AX_DEBUG=1`` for the traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _setup_logging()
        with _errors():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def run_async(coro: Awaitable[T]) -> T:
    """Run a coroutine to completion on uvloop when available."""
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return usd_text(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dump_json(data: Any) -> None:
    """Print ``data`` as JSON (Decimals as exact strings)."""
    click.echo(json.dumps(data, default=_default, indent=2))


def open_store() -> Any:
    """The store named by the environment, migrated."""
    from axtui.store import Store

    return Store.open()


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """Print ``message`` as an error and exit with ``code``."""
    _print_error(message)
    sys.exit(code)


def check_bind(host: str, port: int) -> None:
    """Exit 2 with a clear message when ``host:port`` cannot be listened on (in use, privileged, no such host).

    Checked before a server starts, so nothing is announced that will not run.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(f"port {port} on {host} is already in use (another ax serve?); choose another with --port")
            if exc.errno == errno.EACCES and port < 1024:
                fail(f"port {port} is privileged (below 1024) and needs root; choose a --port of 1024 or more")
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port")


class FiniteFloat(click.FloatRange):
    """A number option within a range that refuses ``nan`` and ``inf``.

    click's `FloatRange` compares with ``<``, and every comparison with NaN
    is false, so ``nan`` passes any range; and ``inf`` passes an open-ended
    one. Both then fail deep inside a command.
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number; give one in the range {self._describe_range()}", param, ctx)
        return super().convert(number, param, ctx)


def _natural_width(table: Table, flex: set[str]) -> int:
    """The table's width with nothing cut and the ``flex`` columns wrapped to about 20 characters."""
    options = console.options.update_width(1_000_000)
    saved = {}
    for column in table.columns:
        if column.header in flex:
            saved[id(column)] = column.max_width
            longest_word = max([Measurement.get(console, options, c).minimum for c in column.cells] or [1])
            column.max_width = max(longest_word, 20)
    try:
        return Measurement.get(console, options, table).maximum
    finally:
        for column in table.columns:
            if id(column) in saved:
                column.max_width = saved[id(column)]


def _remove_column(table: Table, header: str) -> None:
    table.columns = [c for c in table.columns if c.header != header]
    for index, column in enumerate(table.columns):
        column._index = index  # rich pads the first and last column by this position


def fit_table(table: Table, *, keep: Iterable[str] = (), drop: Iterable[str] = (), width: int | None = None,
              drop_empty: bool = False) -> Table:
    """Make ``table`` readable in ``width`` columns (the console's): nothing that matters is cut.

    Columns named in ``keep`` (names, dates, money, ids) never wrap and are
    never shortened to ``claude-…``; columns named in ``drop`` are removed,
    first named first, while the table is wider than ``width`` with the
    other columns (messages, rules) wrapped to a readable width. The same
    holds when the output is piped: rich then lays it out for ``COLUMNS``
    (80 by default). With ``drop_empty``, a column with nothing in any row
    goes first (a header over blanks tells nothing and takes room).
    """
    width = width or console.width
    if drop_empty:
        for column in list(table.columns):
            if all(not str(cell).strip() for cell in column.cells):
                _remove_column(table, str(column.header))
    keep = set(keep)
    flex = {str(c.header) for c in table.columns if c.header not in keep}
    for column in table.columns:
        column.min_width = max(column.min_width or 0, len(str(column.header)))  # a header is never cut either
        if column.header in keep:
            column.no_wrap = True
            cells = [Measurement.get(console, console.options, c).maximum for c in column.cells]
            column.min_width = max([column.min_width, *cells])
    for header in drop:
        if _natural_width(table, flex) <= width:
            break
        _remove_column(table, header)
    return table
