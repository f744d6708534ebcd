"""Exports: the CSV read back equals the store; JSON is valid; filters are right; files are atomic."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from axtui.clock import FakeClock
from axtui.errors import InvalidRequest
from axtui.metrics.export import COLUMNS, ExportQuery, export, export_to_path
from axtui.metrics.export_rows import nanos_text
from axtui.money import nanos_to_usd
from axtui.store import Call, Store
from tests.metrics.conftest import call, record_calls


@pytest.fixture
def calls(store: Store, clock: FakeClock) -> list[dict[str, object]]:
    """A varied call log, returned as the stored rows."""
    recs = []
    for i in range(250):
        recs.append(
            call(
                clock.now() + i * 7.123457,
                user=["alice", "bob", 'carol, the "third"'][i % 3],
                provider=["openai", "groq", None][i % 3],
                status=["ok", "ok", "rate_limited"][i % 3],
                cost_nanos=None if i % 11 == 0 else 1_234_567 * i + 1,
                saved_nanos=None if i % 5 else 42,
                cache="exact" if i % 5 == 0 else "miss",
                error_message="line one\nline two, with a comma" if i % 13 == 0 else None,
                tags=("team-a", "batch") if i % 4 == 0 else (),
                ttft_ms=None if i % 2 else 12.5,
            )
        )
    record_calls(store, recs)
    with store.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(Call.__table__).order_by(Call.__table__.c.ts))]


def _iso_to_ts(text: str) -> float:
    assert text.endswith("Z")
    return datetime.fromisoformat(text[:-1] + "+00:00").timestamp()


def test_csv_read_back_equals_the_store(store: Store, calls: list[dict[str, object]]) -> None:
    out = io.StringIO(newline="")
    n = export(store, out, "csv", ExportQuery())
    text = out.getvalue()
    assert n == len(calls)
    assert text.count("\r\n") >= n + 1  # RFC 4180 line ends
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0].keys()) == list(COLUMNS["calls"])
    assert len(rows) == len(calls)
    for row, db in zip(rows, calls, strict=True):
        assert abs(_iso_to_ts(row["ts"]) - db["ts"]) < 1e-6  # type: ignore[operator]
        for col in ("request_id", "user", "provider", "model", "status", "cache", "tags", "error_message"):
            assert row[col] == (db[col] or ""), col
        assert float(row["latency_ms"]) == db["latency_ms"]
        assert int(row["input_tokens"]) == db["input_tokens"]
        assert int(row["output_tokens"]) == db["output_tokens"]
        if db["cost_nanos"] is None:
            assert row["cost_usd"] == ""  # unknown, not zero
        else:
            assert Decimal(row["cost_usd"]) == nanos_to_usd(db["cost_nanos"])  # type: ignore[arg-type]
        assert row["ttft_ms"] == ("" if db["ttft_ms"] is None else str(db["ttft_ms"]))
        assert row["stream"] in ("true", "false")
    total = sum(Decimal(r["cost_usd"]) for r in rows if r["cost_usd"])
    assert total == nanos_to_usd(sum(c["cost_nanos"] for c in calls if c["cost_nanos"] is not None))  # type: ignore[misc]


def test_json_is_one_valid_array_and_jsonl_one_object_per_line(store: Store, calls: list[dict[str, object]]) -> None:
    out = io.StringIO()
    export(store, out, "json", ExportQuery())
    data = json.loads(out.getvalue())
    assert isinstance(data, list) and len(data) == len(calls)
    assert list(data[0]) == list(COLUMNS["calls"])
    assert data[0]["cost_usd"] is None or isinstance(data[0]["cost_usd"], str)
    out = io.StringIO()
    export(store, out, "jsonl", ExportQuery())
    lines = out.getvalue().splitlines()
    assert [json.loads(x)["request_id"] for x in lines] == [d["request_id"] for d in data]


def test_an_empty_export_is_still_valid(store: Store) -> None:
    out = io.StringIO()
    assert export(store, out, "json", ExportQuery()) == 0
    assert json.loads(out.getvalue()) == []
    out = io.StringIO()
    export(store, out, "csv", ExportQuery())
    assert out.getvalue() == ",".join(COLUMNS["calls"]) + "\r\n"


def test_filters_select_exactly_the_matching_calls(store: Store, calls: list[dict[str, object]]) -> None:
    since = calls[40]["ts"]
    until = calls[200]["ts"]
    out = io.StringIO()
    export(store, out, "jsonl", ExportQuery(since=since, until=until, provider="openai", user="alice"))  # type: ignore[arg-type]
    got = [json.loads(x)["request_id"] for x in out.getvalue().splitlines()]
    want = [
        c["request_id"]
        for c in calls
        if since <= c["ts"] < until and c["provider"] == "openai" and c["user"] == "alice"  # type: ignore[operator]
    ]
    assert got == want and got


def test_costs_are_hourly_spend_that_sums_to_the_calls(store: Store, calls: list[dict[str, object]]) -> None:
    out = io.StringIO()
    export(store, out, "csv", ExportQuery(what="costs"))
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert rows and all(r["period_start"].endswith(":00:00.000000Z") for r in rows)
    assert sum(Decimal(r["cost_usd"]) for r in rows) == nanos_to_usd(
        sum(c["cost_nanos"] for c in calls if c["cost_nanos"] is not None)  # type: ignore[misc]
    )
    assert sum(int(r["calls"]) for r in rows) == len(calls)
    out = io.StringIO()
    export(store, out, "csv", ExportQuery(what="costs", user="bob"))
    bob = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert {r["user"] for r in bob} == {"bob"}
    assert sum(int(r["calls"]) for r in bob) == sum(1 for c in calls if c["user"] == "bob")


def test_a_file_export_is_atomic(
    store: Store, calls: list[dict[str, object]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "calls.csv"
    target.write_text("the previous export\n")
    with pytest.raises(InvalidRequest):
        export_to_path(store, target, "xml", ExportQuery())
    assert export_to_path(store, target, "csv", ExportQuery()) == len(calls)
    assert target.read_text().startswith("ts,request_id,")
    complete = target.read_text()

    # An export that dies half way (a crash, ctrl-c) leaves the last complete file, and no temp file.
    from axtui.metrics import export as export_module

    real_rows = export_module.call_rows

    def dying(*args: object) -> object:
        yield from list(real_rows(*args))[:10]  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "call_rows", dying)
    with pytest.raises(KeyboardInterrupt):
        export_to_path(store, target, "csv", ExportQuery())
    assert target.read_text() == complete
    assert [p.name for p in folder.iterdir()] == ["calls.csv"]
    with pytest.raises(InvalidRequest, match="does not exist"):
        export_to_path(store, tmp_path / "missing" / "x.csv", "csv", ExportQuery())


def test_since_after_until_is_refused(store: Store) -> None:
    with pytest.raises(InvalidRequest, match="before --until"):
        export(store, io.StringIO(), "csv", ExportQuery(since=10, until=5))


@pytest.mark.parametrize(
    ("nanos", "text"),
    [(0, "0"), (1, "0.000000001"), (1_500, "0.0000015"), (10**9, "1"), (12_345_678_900, "12.3456789"), (-5, "-0.000000005"), (None, None)],
)  # fmt: skip
def test_money_is_an_exact_decimal_string(nanos: int | None, text: str | None) -> None:
    assert nanos_text(nanos) == text
    if nanos is not None:
        assert Decimal(text) == nanos_to_usd(nanos)  # type: ignore[arg-type]
