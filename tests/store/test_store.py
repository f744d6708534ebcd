"""The store: migrations, schema agreement, refusal of newer schemas, the recorder."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

from axtui import locations
from axtui.errors import SchemaTooNew, StoreError
from axtui.store import Store
from axtui.store._store import _alembic_config, shipped_heads
from axtui.store.recorder import Recorder
from axtui.types import CallRecord


def _rec(i: int = 0, **kw: object) -> CallRecord:
    base = dict(ts=1_750_000_000.0 + i, user="u", requested_model="m", tags=("a", "b"), cost_nanos=1000 + i)
    base.update(kw)
    return CallRecord(**base)  # type: ignore[arg-type]


def test_migrated_schema_equals_the_models() -> None:
    store = Store.open()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    store.close()
    assert diff == [], f"migrations and models disagree: {diff}"


def test_upgrade_from_the_first_revision_keeps_the_data() -> None:
    from alembic import command
    from sqlalchemy import create_engine

    url = locations.database_url()
    locations.db_path().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0001")
        conn.execute(text("INSERT INTO calls (request_id, ts, user, tags, endpoint, requested_model, status, latency_ms,"
                          " input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens,"
                          " usage_estimated, cache, attempts, stream) VALUES ('old', 1, 'u', '', 'chat', 'm', 'ok', 1,"
                          " 1, 0, 0, 1, 0, 0, 'miss', 1, 0)"))
    engine.dispose()
    store = Store.open()
    heads = store.revisions()
    with store.connect() as conn:
        assert conn.execute(text("SELECT request_id FROM calls")).scalar_one() == "old"
    store.close()
    assert heads == shipped_heads()  # 0001, and every revision after it


def test_a_database_from_a_newer_ax_is_refused_untouched() -> None:
    Store.open().close()
    path = locations.db_path()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO alembic_version VALUES ('future_0042')")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(SchemaTooNew, match="newer ax"):
        Store.open()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout() -> None:
    store = Store.open()
    with store.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() >= 1000
    store.close()


def test_recorder_writes_every_record_with_its_hooks_in_one_transaction() -> None:
    store = Store.open()
    seen: list[int] = []
    rec = Recorder(store, flush_interval_ms=20, batch_size=100, hooks=[lambda conn, batch: seen.append(len(batch))])
    for i in range(1_050):
        rec.record(_rec(i))
    rec.close()
    with store.connect() as conn:
        count, total, tags = conn.execute(text("SELECT count(*), sum(cost_nanos), min(tags) FROM calls")).one()
    store.close()
    assert count == 1_050 and sum(seen) == 1_050
    assert total == sum(1000 + i for i in range(1_050))
    assert tags == "a,b"


def test_a_locked_database_delays_records_but_loses_none() -> None:
    store = Store.open()
    rec = Recorder(store, flush_interval_ms=10)
    blocker = sqlite3.connect(locations.db_path(), timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    for i in range(10):
        rec.record(_rec(i))
    time.sleep(0.3)
    blocker.rollback()
    blocker.close()
    assert rec.flush(timeout=30)
    rec.close()
    with store.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM calls")).scalar_one() == 10
    store.close()


@pytest.mark.processes
def test_a_hard_kill_loses_at_most_the_last_flush_and_keeps_the_file_sound(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from axtui.store import Store
        from axtui.store.recorder import Recorder
        from axtui.types import CallRecord
        rec = Recorder(Store.open(), flush_interval_ms=50)
        i = 0
        while True:
            rec.record(CallRecord(ts=time.time(), user="k", requested_model="m"))
            i += 1
            if i == 500:
                print("ready", flush=True)
            time.sleep(0.0005)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=os.environ.copy())
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(locations.db_path()) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] >= 500


def test_backup_is_a_consistent_copy_while_writing(tmp_path: Path) -> None:
    store = Store.open()
    rec = Recorder(store, flush_interval_ms=5)
    for i in range(2_000):
        rec.record(_rec(i))
    out = store.backup(tmp_path / "copy.db")
    rec.close()
    store.close()
    with sqlite3.connect(out) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] <= 2_000


def test_an_unusable_database_url_is_a_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(StoreError) as info:
        Store.open(f"sqlite:///{blocked}/sub/ax.db")
    assert "traceback" not in str(info.value).lower()


@pytest.mark.postgres
def test_postgres_store_migrates_and_records() -> None:
    url = os.environ.get("AX_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL: set AX_TEST_POSTGRES_URL (CI starts one)")
    store = Store.open(url)
    with store.connect() as conn:
        conn.execute(text("DELETE FROM calls"))
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == []
    rec = Recorder(store, flush_interval_ms=10)
    for i in range(300):
        rec.record(_rec(i))
    rec.close()
    with store.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM calls")).scalar_one() == 300
    store.close()


@pytest.mark.processes
def test_processes_that_start_together_migrate_once_without_errors() -> None:
    code = "from axtui.store import Store; Store.open().close(); print('ok')"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=os.environ.copy()) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [o[0].strip() for o in outs] == [b"ok"] * 4, [o[1].decode()[-500:] for o in outs]


def test_db_upgrade_rolls_up_calls_recorded_before_the_rollups_existed() -> None:
    from alembic import command
    from click.testing import CliRunner
    from sqlalchemy import create_engine

    from axtui.cli import main

    locations.db_path().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(locations.database_url())
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0001")
        for i in range(3):
            conn.execute(text(
                "INSERT INTO calls (request_id, ts, user, tags, endpoint, requested_model, provider, model, status,"
                " latency_ms, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens,"
                " usage_estimated, cost_nanos, cache, attempts, stream) VALUES"
                f" ('r{i}', {1_750_000_000 + i}, 'u', '', 'chat', 'm', 'p', 'm', 'ok', 1, 10, 0, 0, 5, 0, 0, 2500, 'miss',"
                " 1, 0)"))
    engine.dispose()
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "rebuilt from 3" in result.output
    from axtui.cost import reports

    store = Store.open()
    summary = reports.summary(store, 1_749_990_000, 1_750_010_000)
    store.close()
    assert summary.totals.calls == 3 and summary.total_nanos == 7500
