"""Rollups and reports: exact sums, every breakdown adds up, fast paths read the right rows."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from axtui.cost.reports import BREAKDOWNS, breakdown, summary
from axtui.cost.rollups import RollupHook, Totals, aggregate, plan_segments, rebuild, series, totals_by
from axtui.store import Call, Store
from axtui.store.tables_cost import ROLLUP_TABLES
from axtui.types import CallRecord

from .conftest import record_calls

T0 = 1_789_948_800.0  # 2026-09-21 00:00 UTC: aligned to the minute, hour and day
DAY = 86400.0


def call(ts: float, **kw: object) -> CallRecord:
    base: dict[str, object] = {"user": "alice", "requested_model": "gpt-4o", "provider": "openai", "model": "gpt-4o",
                               "deployment": "openai/gpt-4o", "cost_nanos": 1000, "input_tokens": 10,
                               "output_tokens": 5, "latency_ms": 120.0}
    base.update(kw)
    return CallRecord(ts=ts, **base)  # type: ignore[arg-type]


records = st.builds(
    call,
    ts=st.floats(min_value=T0, max_value=T0 + 3 * DAY, allow_nan=False),
    user=st.sampled_from(["alice", "bob", "carol"]),
    key=st.sampled_from([None, "k_1", "k_2"]),
    tags=st.sampled_from([(), ("team-a",), ("team-a", "prod"), ("prod", "team-a")]),
    provider=st.sampled_from(["openai", "anthropic", None]),
    model=st.sampled_from(["gpt-4o", "claude-haiku-4-5", None]),
    deployment=st.sampled_from(["x/y", None]),
    cost_nanos=st.one_of(st.none(), st.integers(0, 10**9)),
    saved_nanos=st.one_of(st.none(), st.integers(0, 10**6)),
    cache=st.sampled_from(["miss", "exact", "semantic"]),
    status=st.sampled_from(["ok", "error", "rate_limited", "budget_refused", "cancelled"]),
    input_tokens=st.integers(0, 100_000),
    output_tokens=st.integers(0, 10_000),
    latency_ms=st.floats(0, 100_000, allow_nan=False),
)


def raw_sum(store: Store, lo: float, hi: float) -> tuple[int, int]:
    c = Call.__table__.c  # type: ignore[attr-defined]
    return store.run(lambda conn: tuple(conn.execute(
        select(func.coalesce(func.sum(c.cost_nanos), 0), func.count()).where(c.ts >= lo, c.ts < hi)).one()))


@given(batch=st.lists(records, max_size=60))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_summary_equals_the_calls_and_every_breakdown_sums_to_it(store: Store, batch: list[CallRecord]) -> None:
    for table in (*[t for _, t in ROLLUP_TABLES.values()], Call.__table__):  # type: ignore[attr-defined]
        store.run(lambda conn, t=table: conn.execute(t.delete()))
    record_calls(store, batch)
    lo, hi = T0, T0 + 4 * DAY  # minute-aligned on both ends
    s = summary(store, lo, hi)
    assert (s.total_nanos, s.totals.calls) == raw_sum(store, lo, hi)
    # Unpriced: reached a provider at an unknown price, and used tokens (or succeeded); a call
    # that failed before any token was used has nothing to price.
    assert s.totals.unknown_price_calls == sum(
        1 for r in batch
        if r.cost_nanos is None and r.deployment and (r.status == "ok" or r.input_tokens or r.output_tokens))
    assert s.totals.saved_nanos == sum(r.saved_nanos or 0 for r in batch if r.cache != "miss")
    for by in BREAKDOWNS:
        b = breakdown(store, by, lo, hi)
        assert (b.total.cost_nanos, b.total.calls) == (s.total_nanos, s.totals.calls), by
        if by == "tag":  # a call counts under each of its tags
            for tag in ("team-a", "prod"):
                assert next((r.totals.calls for r in b.rows if r.key == tag), 0) == sum(tag in r.tags for r in batch)
            continue
        assert sum(r.totals.cost_nanos for r in b.rows) == s.total_nanos, by
        assert sum(r.totals.calls for r in b.rows) == s.totals.calls, by
        assert sum(r.totals.unknown_price_calls for r in b.rows) == s.totals.unknown_price_calls, by
    for provider in ("openai", "anthropic", ""):
        part = summary(store, lo, hi, provider=provider)
        assert part.totals.calls == sum(1 for r in batch if (r.provider or "") == provider)
        by_model = breakdown(store, "model", lo, hi, provider=provider)
        assert sum(r.totals.cost_nanos for r in by_model.rows) == part.total_nanos


def test_each_tag_is_a_row_and_a_call_with_two_tags_counts_once_in_the_total(store: Store) -> None:
    record_calls(store, [call(T0, tags=("prod", "team-a"), cost_nanos=10), call(T0 + 1, tags=("team-a",), cost_nanos=5),
                         call(T0 + 2, cost_nanos=1)])
    b = breakdown(store, "tag", T0, T0 + 60)
    assert {r.key: (r.totals.calls, r.totals.cost_nanos) for r in b.rows} == {
        "team-a": (2, 15), "prod": (1, 10), "": (1, 1)}
    assert (b.total.calls, b.total.cost_nanos) == (3, 16)


def test_unknown_price_is_flagged_not_counted_as_free(store: Store) -> None:
    record_calls(store, [call(T0, cost_nanos=None), call(T0 + 1, cost_nanos=500)])
    s = summary(store, T0, T0 + 60)
    assert s.total_nanos == 500
    assert s.totals.unknown_price_calls == 1
    assert s.totals.priced_calls == 1
    assert s.to_json()["unknown_price_calls"] == 1


def test_json_money_is_exact_decimal_text(store: Store) -> None:
    record_calls(store, [call(T0, cost_nanos=1), call(T0 + 1, cost_nanos=10**9 * 100)])
    data = summary(store, T0, T0 + 60).to_json()
    assert data["total_usd"] == "100.000000001"
    assert Decimal(str(data["total_usd"])) * 10**9 == 100 * 10**9 + 1


def test_ranges_are_minute_aligned_and_edges_count(store: Store) -> None:
    record_calls(store, [call(T0 + 59.9), call(T0 + 60.0), call(T0 + 3600 * 5 + 30)])
    # Since rounds down to the minute, until up: all three are in [T0, T0+5h+1min).
    assert summary(store, T0 + 10, T0 + 3600 * 5 + 31).totals.calls == 3
    assert summary(store, T0 + 60, T0 + 3600 * 5).totals.calls == 1


def test_day_week_month_groups_follow_the_time_zone(store: Store) -> None:
    # 2026-11-27 23:30 UTC is already the 28th in Tokyo.
    ts = 1_795_822_200.0
    record_calls(store, [call(ts)])
    assert [r.key for r in breakdown(store, "day", ts - DAY, ts + DAY).rows] == ["2026-11-27"]
    assert [r.key for r in breakdown(store, "day", ts - DAY, ts + DAY, tz="Asia/Tokyo").rows] == ["2026-11-28"]
    assert [r.key for r in breakdown(store, "month", ts - DAY, ts + DAY).rows] == ["2026-11"]
    assert [r.key for r in breakdown(store, "week", ts - DAY, ts + DAY).rows] == ["2026-W48"]


@given(since=st.floats(0, 10 * DAY), span=st.floats(0, 40 * DAY))
def test_segments_tile_the_aligned_range_exactly(since: float, span: float) -> None:
    segs = plan_segments(since, since + span, oldest_minute=0, oldest_hour=0)
    lo, hi = int(since // 60) * 60, -int(-(since + span) // 60) * 60
    covered = sorted((a, b) for _, a, b in segs)
    if hi > lo:
        assert covered[0][0] == lo and covered[-1][1] == hi
        assert all(a[1] == b[0] for a, b in pairwise(covered))
    for grain, a, b in segs:
        width = ROLLUP_TABLES[grain][0]
        assert a % width == 0 and b % width == 0 and a < b
    assert sum(1 for g, _, _ in segs if g == "minute") <= 2


def test_long_ranges_read_day_and_hour_rows_not_minutes() -> None:
    segs = plan_segments(1000, 1000 + 30 * DAY, oldest_minute=0, oldest_hour=0)
    assert [g for g, _, _ in segs].count("day") == 1
    assert sum(b - a for g, a, b in segs if g == "minute") < 2 * 3600


def test_pruned_minutes_round_the_start_to_the_hour(store: Store) -> None:
    now = T0 + 10 * DAY
    hook = RollupHook(minute_retention_s=DAY, clock=_Clock(now))
    recs = [call(T0 + 1800), call(now - 100)]
    store.run(lambda conn: hook(conn, recs))
    # The old minute rows are gone, but the hour and day rows still count the old call.
    minute = ROLLUP_TABLES["minute"][1]
    assert store.run(lambda conn: conn.execute(select(func.min(minute.c.bucket))).scalar()) >= now - DAY - 60
    assert summary(store, T0 + 1900, now).totals.calls == 2  # start rounded down to T0's hour


def test_rebuild_from_the_call_log_matches_the_hook(store: Store) -> None:
    batch = [call(T0 + i * 977.0, user=f"u{i % 3}", cost_nanos=i * 7) for i in range(200)]
    record_calls(store, batch)
    before = summary(store, T0, T0 + 3 * DAY).to_json()
    assert rebuild(store) == 200
    assert summary(store, T0, T0 + 3 * DAY).to_json() == before


def test_series_and_latency_histogram_for_history(store: Store) -> None:
    record_calls(store, [call(T0 + i, latency_ms=float(ms)) for i, ms in enumerate([10, 20, 30, 800, 900])])
    rows = store.run(lambda conn: series(conn, T0, T0 + 60, grain="minute"))
    assert len(rows) == 1
    t = rows[0][1]
    assert t.calls == 5 and sum(t.latency_hist) == 5
    p50 = t.latency_quantile(0.5)
    assert p50 is not None and 25 <= p50 <= 50
    p99 = t.latency_quantile(0.99)
    assert p99 is not None and 700 <= p99 <= 1000


def test_totals_add_like_the_calls() -> None:
    groups = aggregate([call(T0), call(T0 + 1, cost_nanos=None), call(T0 + 2, status="error")])
    all_row = groups["minute"][("all", int(T0 // 60) * 60, "", "openai")]
    t = Totals.from_values(all_row)
    assert (t.calls, t.errors, t.cost_nanos, t.unknown_price_calls) == (3, 1, 2000, 1)


def test_hour_totals_read_by_user(store: Store) -> None:
    record_calls(store, [call(T0, user="alice"), call(T0 + 5, user="bob", cost_nanos=7)])
    got = store.run(lambda conn: totals_by(conn, T0, T0 + 3600, dim="user"))
    assert {k[1]: v.cost_nanos for k, v in got.items()} == {"alice": 1000, "bob": 7}


class _Clock:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        return None


@given(batch=st.lists(records, min_size=1, max_size=40), cut=st.floats(0.1, 0.9))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_range_ending_now_reads_whole_buckets_and_agrees(store: Store, batch: list[CallRecord], cut: float) -> None:
    for table in (*[t for _, t in ROLLUP_TABLES.values()], Call.__table__):  # type: ignore[attr-defined]
        store.run(lambda conn, t=table: conn.execute(t.delete()))
    now = max(r.ts for r in batch) + 0.001  # nothing was recorded after now
    since = T0 + cut * (now - T0)
    record_calls(store, batch)
    closed = store.run(lambda conn: totals_by(conn, since, now))
    opened = store.run(lambda conn: totals_by(conn, since, now, open_end=True))
    assert {k: (v.calls, v.cost_nanos) for k, v in closed.items()} == {k: (v.calls, v.cost_nanos) for k, v in opened.items()}
    segs = plan_segments(since, now, oldest_minute=0, oldest_hour=0, open_end=True)
    # The tail is read whole, not by minute: minutes past `now` are read only as the
    # head of the range, when `since` lies inside the last hour and a whole hour
    # row would count calls from before it.
    head = int(since // 60) * 60
    assert all(a == head for g, a, b in segs if g == "minute" and b > now)
