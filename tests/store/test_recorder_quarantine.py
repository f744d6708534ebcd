"""One bad record never stops recording; a full queue refuses calls instead of losing their records."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from axtui.config import Settings
from axtui.engine.compose import build_gateway
from axtui.errors import RecorderFull
from axtui.metrics.prometheus import PrometheusMetrics
from axtui.providers.anthropic import anthropic_usage
from axtui.providers.gemini import gemini_usage
from axtui.providers.openai import openai_usage
from axtui.store import Call, Store
from axtui.store.quarantine import quarantine_summary, quarantined
from axtui.store.recorder import Recorder
from axtui.types import MAX_TOKENS, CallRecord, ChatRequest, token_count
from tests.engine.fakes import ScriptedProvider


def _rec(i: int, **kw: object) -> CallRecord:
    return CallRecord(ts=1_750_000_000.0 + i, user="u", requested_model="m", request_id=f"r{i}", **kw)  # type: ignore[arg-type]


def _count(store: Store) -> int:
    return int(store.run(lambda c: c.execute(select(func.count()).select_from(Call.__table__)).scalar_one()))  # type: ignore[attr-defined]


def test_a_row_the_database_refuses_is_quarantined_and_the_rest_written() -> None:
    store = Store.open()
    rec = Recorder(store, flush_interval_ms=10, batch_size=100)
    for i in range(20):
        rec.record(_rec(i, input_tokens=2**63 if i == 7 else 10))
    assert rec.flush(10)
    # Recording goes on after the bad row: later calls are written too.
    for i in range(20, 25):
        rec.record(_rec(i))
    assert rec.flush(10)
    rec.close()
    assert _count(store) == 24
    assert (rec.written, rec.quarantined, rec.dropped) == (24, 1, 0)
    [bad] = quarantined(store)
    assert bad.request_id == "r7"
    assert "too large" in bad.reason and "INSERT" not in bad.reason
    assert bad.record["input_tokens"] == 2**63  # kept whole, for the operator
    summary = quarantine_summary(store)
    assert summary.count == 1 and summary.newest_reason == bad.reason
    store.close()


def test_a_hook_that_fails_on_one_record_quarantines_only_that_record() -> None:
    store = Store.open()

    def picky(conn: Connection, records: Sequence[CallRecord]) -> None:
        if any(r.user == "poison" for r in records):
            raise ValueError("the rollup cannot take this record")

    rec = Recorder(store, flush_interval_ms=10, hooks=[picky])
    for i in range(10):
        rec.record(_rec(i))
    rec.record(CallRecord(ts=1.0, user="poison", requested_model="m"))
    rec.close()
    assert _count(store) == 10
    assert rec.quarantined == 1
    [bad] = quarantined(store)
    assert bad.reason == "ValueError: the rollup cannot take this record"
    store.close()


def test_quarantined_records_are_counted_on_metrics() -> None:
    store = Store.open()
    rec = Recorder(store, flush_interval_ms=10)
    prom = PrometheusMetrics()
    prom.watch_recorder(rec)
    rec.record(_rec(1, output_tokens=2**64))
    rec.close()
    text = prom.render()[0].decode()
    assert "ax_recorder_quarantined_total 1.0" in text
    assert "ax_recorder_pending 0.0" in text
    store.close()


async def test_a_full_queue_makes_new_calls_wait_then_refuses_them() -> None:
    store = Store.open()
    release = threading.Event()

    def stuck(conn: Connection, records: Sequence[CallRecord]) -> None:
        release.wait(10)  # the database is not taking writes

    rec = Recorder(store, flush_interval_ms=10, hooks=[stuck], max_pending=3, full_wait_s=0.05)
    for i in range(3):
        await rec.admit()
        rec.record(_rec(i))
    with pytest.raises(RecorderFull) as err:
        await rec.admit()
    assert err.value.status_code == 503
    assert rec.refused == 1 and rec.pending == 3
    # A waiting call gets in as soon as the writer catches up.
    waiter = asyncio.create_task(rec.admit())
    await asyncio.sleep(0.01)
    rec.full_wait_s = 10
    release.set()
    await asyncio.wait_for(waiter, 10)
    rec.close()
    assert rec.written == 3
    store.close()


async def test_the_gateway_refuses_with_503_when_the_recorder_is_full_and_records_what_it_served() -> None:
    store = Store.open()
    settings = Settings.model_validate({
        "providers": [{"name": "a", "kind": "openai", "models": ["m"], "max_retries": 0}],
        "cache": {"enabled": False},
        "recorder": {"max_pending": 2, "full_wait_s": 0.05, "flush_interval_ms": 10},
    })  # fmt: skip
    gw = await build_gateway(settings, store=store, providers={"a": ScriptedProvider("a")})
    assert gw.recorder is not None
    release = threading.Event()
    gw.recorder.add_hook(lambda conn, records: release.wait(10))
    request = ChatRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    served = 0
    refused = 0
    for _ in range(6):
        try:
            await gw.chat(request)
            served += 1
        except RecorderFull:
            refused += 1
    assert served >= 2 and refused >= 1
    release.set()
    await gw.aclose()
    # Every call that was answered is in the log; the refused ones were never served.
    assert _count(store) == served
    store.close()


@pytest.mark.parametrize("value", [2**63, 2**64 + 5, 1e300])
def test_usage_from_every_provider_is_clamped_where_it_enters(value: float) -> None:
    assert openai_usage({"prompt_tokens": value, "completion_tokens": value}).input_tokens == MAX_TOKENS
    anthropic = anthropic_usage({"input_tokens": value, "cache_read_input_tokens": value, "output_tokens": value})
    assert anthropic.input_tokens == MAX_TOKENS and anthropic.output_tokens == MAX_TOKENS
    gemini = gemini_usage({"promptTokenCount": value, "toolUsePromptTokenCount": value, "thoughtsTokenCount": value,
                           "candidatesTokenCount": value})  # fmt: skip
    assert gemini.input_tokens == MAX_TOKENS and gemini.output_tokens == MAX_TOKENS


@pytest.mark.parametrize(("raw", "count"), [(-5, 0), ("12", 0), (None, 0), (True, 0), (float("nan"), 0),
                                             (float("inf"), 0), (12.7, 12), (MAX_TOKENS + 1, MAX_TOKENS)])  # fmt: skip
def test_token_count_accepts_only_finite_non_negative_numbers(raw: object, count: int) -> None:
    assert token_count(raw) == count


def test_clamped_usage_is_recorded_not_quarantined() -> None:
    store = Store.open()
    rec = Recorder(store, flush_interval_ms=10)
    usage = openai_usage({"prompt_tokens": 2**63, "completion_tokens": 2**63})
    rec.record(_rec(1, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens))
    rec.close()
    assert (_count(store), rec.quarantined) == (1, 0)
    store.close()



def test_a_full_recorder_is_answered_503_on_the_wire() -> None:
    from axtui.server.errors import error_payload

    status, body, _ = error_payload(RecorderFull("ax cannot record calls fast enough"))
    assert status == 503 and body["error"]["type"] == "recorder_full"


def test_the_calls_table_has_exactly_the_records_fields_and_the_recorder_writes_them_all() -> None:
    from dataclasses import fields

    from axtui.store.recorder import record_to_row

    names = [f.name for f in fields(CallRecord)]
    assert [c.name for c in Call.__table__.columns if c.name != "id"] == names  # type: ignore[attr-defined]
    assert sorted(record_to_row(_rec(1))) == sorted(names)


def test_a_secret_a_client_puts_in_a_model_name_or_tags_is_never_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    from axtui.redaction import forget_all
    from axtui.server.auth import Authenticator

    admin = "plain-admin-secret-0123456789"
    monkeypatch.setenv("AX_ADMIN_KEY", admin)
    store = Store.open()
    try:
        Authenticator(store)  # the server reads its admin key: from then on it is never written anywhere
        rec = Recorder(store, flush_interval_ms=10, batch_size=100)
        gateway_key = "axk_0123456789ab_" + "s" * 43
        rec.record(CallRecord(ts=1.0, user="u", requested_model=gateway_key, request_id="r1"))
        rec.record(CallRecord(ts=2.0, user="u", requested_model=admin, request_id="r2", tags=["team", admin]))
        rec.close()
        with store.connect() as conn:
            rows = conn.execute(select(Call.requested_model, Call.tags).order_by(Call.ts)).all()  # type: ignore[call-overload]
        assert [tuple(r) for r in rows] == [("[redacted]", ""), ("[redacted]", "team,[redacted]")]
    finally:
        store.close()
        forget_all()


async def test_a_database_that_takes_no_records_stops_new_calls_until_it_does_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from axtui.errors import StoreError

    store = Store.open()
    rec = Recorder(store, flush_interval_ms=10, batch_size=100, full_wait_s=0.2)
    real_run = store.run
    broken = [True]

    def run(work: object) -> object:
        if broken[0]:
            raise StoreError("attempt to write a readonly database")
        return real_run(work)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "run", run)
    try:
        await rec.admit()
        rec.record(_rec(1))
        # The first failures are waited out (a lock passes); then no call is served unrecorded.
        for _ in range(200):
            try:
                await rec.admit()
            except RecorderFull as exc:
                assert "cannot write its call records" in exc.message
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("calls were still admitted with a database that takes no records")
        broken[0] = False
        assert await asyncio.to_thread(rec.flush, 10)
        await rec.admit()  # written again: calls are served again
        assert _count(store) == 1 and rec.refused >= 1
    finally:
        rec.close()
        store.close()
