"""What every command shares: error handling, exit codes, output, async.

Exit codes: 0 done, 1 upstream failure (or a check that failed, such as
``ax cost budget check``), 2 usage or config error, 3 refused by a rate
limit or a budget.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from axtui.errors import AxError, BudgetExceeded, ConfigError, ProviderError, RateLimited, RequestError, StoreError
from axtui.money import usd_text

__all__ = [
    "EXIT_REFUSED",
    "EXIT_UPSTREAM",
    "EXIT_USAGE",
    "console",
    "dump_json",
    "err_console",
    "exit_code_for",
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
    if isinstance(exc, (ConfigError, RequestError)):
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


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except AxError as exc:
        err_console.print(f"[bold red]error:[/] {escape(describe(exc))}", markup=True, soft_wrap=True)
        raise SystemExit(exit_code_for(exc)) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise SystemExit(130) from None


def handle_errors(fn: F) -> F:
    """Turn `AxError` into a one-line message and the right exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        logging.basicConfig(level=logging.WARNING, format="ax: %(message)s")
        with _errors():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def run_async(coro: Awaitable[T]) -> T:
    """Run a coroutine to completion on uvloop when available."""
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type, no-any-return]
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
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)
    sys.exit(code)
