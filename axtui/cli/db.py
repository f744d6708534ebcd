"""``ax db``: the database as a first-class object."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from axtui.cli._common import console, fail, handle_errors


@click.group()
def db() -> None:
    """The database: upgrade, path, backup."""


@db.command()
@handle_errors
def upgrade() -> None:
    """Apply every pending migration (safe to run at any time)."""
    from axtui.store import Store

    store = Store.open(migrate=False)
    try:
        before = store.revisions()
        store.upgrade()
        after = store.revisions()
        rebuilt = 0
        if "0001" in before and "cost_0001" not in before:
            # Calls recorded before spend rollups existed: roll them up once.
            from axtui.cost.rollups import rebuild

            rebuilt = rebuild(store)
    finally:
        store.close()
    if before == after:
        console.print(f"database is up to date ({', '.join(sorted(after))})")
    else:
        console.print(f"database upgraded to {', '.join(sorted(after))}")
    if rebuilt:
        console.print(f"spend rollups rebuilt from {rebuilt:,} recorded calls")


@db.command()
@handle_errors
def path() -> None:
    """Print where the database is (a file path, or the URL without password)."""
    import os

    from axtui import locations
    from axtui.store._store import _redact

    url = os.environ.get("AX_DATABASE_URL")
    click.echo(_redact(url) if url else str(locations.db_path()))


@db.command()
@click.argument("dest", required=False)
@click.option("--force", is_flag=True, help="Replace DEST if it is an existing file.")
@handle_errors
def backup(dest: str | None, force: bool) -> None:
    """Copy the database to DEST, safely while ax writes to it.

    DEST is a file, or a folder (an existing one, or any path ending in /)
    that gets a file named ax-backup-DATE-TIME.db. Without DEST the copy
    goes to the backups folder in ax's data folder. Missing folders are
    not created, and an existing file is replaced only with --force.

    \b
    Examples:
      ax db backup
      ax db backup ~/backups/
      ax db backup ax-before-upgrade.db --force
    """
    from axtui import locations
    from axtui.store import Store

    if dest is None:
        target = locations.data_dir() / "backups" / _backup_name()
        locations.private_dir(target.parent)
    else:
        target = _backup_target(dest, force)
    store = Store.open()
    try:
        out = store.backup(target)
    finally:
        store.close()
    console.print(f"backed up to {out}")


def _backup_name() -> str:
    return f"ax-backup-{time.strftime('%Y%m%d-%H%M%S')}.db"


def _backup_target(dest: str, force: bool) -> Path:
    """The file a backup to ``dest`` writes, or a usage error saying what is in the way."""
    path = Path(dest).expanduser()
    if dest.endswith(("/", os.sep)) or path.is_dir():
        path = path / _backup_name()
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        fail(f"cannot write the backup {path} ({folder} is a file, not a folder); choose a writable folder")
    if not folder.exists():
        fail(f"cannot write the backup {path}: the folder {folder} does not exist; create it first "
             f"(mkdir -p {folder}) or choose a writable folder")
    asked = path.exists() and not force
    if asked and (not sys.stdin.isatty() or not click.confirm(f"{path} exists; replace it?", default=False, err=True)):
        fail(f"{path} already exists; choose another name, or pass --force to replace it")
    return path
