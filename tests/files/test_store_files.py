"""The store, its folder, its WAL, its lock and its backups are readable by their owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from axtui.store import Store
from axtui.store.recorder import Recorder
from axtui.types import CallRecord


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_store_and_its_folder_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        db = tmp_path / "data" / "ax.db"
        store = Store.open(f"sqlite:///{db}")
        rec = Recorder(store, flush_interval_ms=10)
        rec.record(CallRecord(ts=1.0, user="alice", requested_model="m"))
        rec.flush()
        backup = store.backup(tmp_path / "backups" / "copy.db")
        files = sorted(p.name for p in db.parent.iterdir())
        modes = {name: _mode(db.parent / name) for name in files}
        rec.close()
        store.close()
    finally:
        os.umask(old)
    assert _mode(db.parent) == 0o700
    assert "ax.db-wal" in modes and "ax.db.migrate-lock" in modes
    assert set(modes.values()) == {0o600}, modes
    assert _mode(backup) == 0o600 and _mode(backup.parent) == 0o700


def test_an_existing_store_keeps_the_mode_its_owner_gave_it(tmp_path: Path) -> None:
    db = tmp_path / "ax.db"
    Store.open(f"sqlite:///{db}").close()
    os.chmod(db, 0o640)
    Store.open(f"sqlite:///{db}").close()
    assert _mode(db) == 0o640
