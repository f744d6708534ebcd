"""``ax db``: the database as a first-class object."""

from __future__ import annotations

from pathlib import Path

import click

from axtui.cli._common import console, handle_errors


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
@click.argument("dest", type=click.Path(path_type=Path), required=False)
@handle_errors
def backup(dest: Path | None) -> None:
    """Copy the database to DEST (a file or folder), safely while ax writes to it."""
    from axtui import locations
    from axtui.store import Store

    store = Store.open()
    try:
        out = store.backup(dest or locations.data_dir() / "backups")
    finally:
        store.close()
    console.print(f"backed up to {out}")
