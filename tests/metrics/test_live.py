"""Live windows: what a dashboard sees as calls flow, driven by a fake clock."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from axtui.bus import CallRecorded, EventBus, SettingsChanged
from axtui.clock import FakeClock
from axtui.config import MetricsConfig, Settings
from axtui.metrics.live import LiveMetrics
from axtui.metrics.shared import StoreFeed
from axtui.metrics.snapshot import Snapshot
from axtui.store import Store
from tests.metrics.conftest import call, record_calls


def feed(live: LiveMetrics, clock: FakeClock, n: int, every: float, **kw: object) -> None:
    for _ in range(n):
        live.observe(call(clock.now(), **kw))  # type: ignore[arg-type]
        clock.advance(every)


def test_totals_cover_the_recent_window_and_age_out(clock: FakeClock) -> None:
    live = LiveMetrics(MetricsConfig(window_s=900, recent_s=60), clock=clock)
    feed(live, clock, 120, 0.49)  # a minute at about 2 calls/s
    s = live.snapshot()
    assert s.totals.requests == 120
    assert s.totals.rps == pytest.approx(2.0, rel=0.05)
    assert s.totals.cost_usd == Decimal("0.00018")  # 120 × 1,500 nano-dollars, exactly
    clock.advance(30)
    assert live.snapshot().totals.requests == 60  # the first half (before second 29) left the minute
    clock.advance(31)
    s = live.snapshot()
    assert s.totals.requests == 0 and s.totals.p95_ms is None
    assert s.lifetime.requests == 120  # still counted since the start
    assert sum(s.series.requests) == 120  # and in the 15-minute series


def test_status_counts_rates_and_quantiles(clock: FakeClock) -> None:
    live = LiveMetrics(clock=clock)
    for i in range(100):
        live.observe(call(clock.now(), latency_ms=float(10 * (i + 1)), ttft_ms=5.0))
    for status in ["error"] * 10 + ["rate_limited"] * 5 + ["budget_refused"] * 3:
        live.observe(call(clock.now(), status=status, latency_ms=50.0 if status == "error" else 0.0))
    for _ in range(20):
        live.observe(call(clock.now(), cache="exact", cost_nanos=0, latency_ms=1.0))
    t = live.snapshot().totals
    assert (t.requests, t.ok, t.errors, t.rate_limited, t.budget_refused) == (138, 120, 10, 5, 3)
    assert t.error_rate == pytest.approx(10 / 138)
    assert t.cache_hit_rate == pytest.approx(20 / 130)  # hits / served (refusals are not served)
    # 130 served latencies: 20 × 1 ms, 10 × 50 ms, 10..1000 ms: the median is 350 ms (within 2 %).
    assert t.p50_ms == pytest.approx(350, rel=0.03)
    assert t.p99_ms == pytest.approx(990, rel=0.03)
    assert t.ttft_p50_ms == pytest.approx(5, rel=0.03)


def test_rows_per_provider_deployment_model_and_user(clock: FakeClock) -> None:
    live = LiveMetrics(clock=clock)
    feed(live, clock, 30, 0.1, provider="openai", deployment="openai/gpt-4o-mini", user="alice")
    feed(live, clock, 10, 0.1, provider="groq", deployment="groq/llama", model="llama", user="bob", status="error")
    live.observe(call(clock.now(), status="rate_limited", provider=None, deployment=None, model=None, user="carol"))
    s = live.snapshot()
    assert {r.key: r.requests for r in s.providers} == {"groq": 10, "openai": 30}
    assert {r.key: r.errors for r in s.deployments} == {"groq/llama": 10, "openai/gpt-4o-mini": 0}
    assert {r.key: r.requests for r in s.models} == {"gpt-4o-mini": 30, "llama": 10}
    assert [(r.key, r.requests) for r in s.users] == [("alice", 30), ("bob", 10), ("carol", 1)]
    assert s.totals.requests == 41
    assert live.stats({"provider": "groq"}).error_rate == 1.0
    assert live.stats({"provider": "nobody"}).requests == 0


def test_a_watched_filter_set_counts_calls_matching_every_filter(clock: FakeClock) -> None:
    live = LiveMetrics(clock=clock)
    live.watch({"provider": "openai", "user": "alice"})
    live.observe(call(clock.now(), user="alice"))
    live.observe(call(clock.now(), user="bob"))
    live.observe(call(clock.now(), user="alice", provider="groq"))
    assert live.stats({"user": "alice", "provider": "openai"}).requests == 1


def test_users_are_bounded_and_the_idlest_forgotten(clock: FakeClock) -> None:
    live = LiveMetrics(MetricsConfig(max_users=50), clock=clock)
    for i in range(200):
        live.observe(call(clock.now(), user=f"user{i}"))
        clock.advance(0.01)
    s = live.snapshot(top_users=1000)
    assert len(s.users) <= 50
    assert "user199" in {u.key for u in s.users}  # the newest stay
    assert "user0" not in {u.key for u in s.users}
    assert s.totals.requests == 200  # the totals never forget


def test_the_snapshot_round_trips_through_json(clock: FakeClock) -> None:
    live = LiveMetrics(clock=clock)
    feed(live, clock, 50, 0.3, cost_nanos=123_456_789)
    live.observe(call(clock.now(), cost_nanos=None, status="error", error_class="ProviderTimeout"))
    snap = live.snapshot(series_s=120)
    back = Snapshot.from_json(snap.dumps())
    assert back == snap
    assert isinstance(back.totals.cost_usd, Decimal)
    assert back.recent[-1].cost_usd is None and back.recent[-1].error_class == "ProviderTimeout"
    assert len(back.series) == 120


def test_a_snapshot_of_another_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="schema"):
        Snapshot.from_json({"schema": 99})


def test_bus_fed_and_unsubscribed(clock: FakeClock) -> None:
    bus = EventBus()
    live = LiveMetrics(clock=clock)
    live.attach(bus)
    bus.publish(CallRecorded(call(clock.now())))
    bus.publish(SettingsChanged(Settings()))
    live.detach()
    bus.publish(CallRecorded(call(clock.now())))
    assert live.snapshot().totals.requests == 1


def test_series_points_are_per_second(clock: FakeClock) -> None:
    live = LiveMetrics(clock=clock)
    clock.advance(1 - clock.now() % 1)  # start on a whole second
    for per_second in (3, 0, 5):
        for _ in range(per_second):
            live.observe(call(clock.now(), latency_ms=100.0 * per_second))
        clock.advance(1)
    clock.advance(0.5)
    s = live.snapshot(series_s=4).series
    assert s.requests == [3, 0, 5, 0]
    assert s.p50_ms[1] is None and s.p50_ms[2] == pytest.approx(500, rel=0.03)
    assert s.cost_nanos == [4_500, 0, 7_500, 0]


def test_store_feed_sees_the_same_as_the_bus(store: Store, clock: FakeClock) -> None:
    """Two processes' calls, written as per-second rollups, read back into one store-sourced view."""
    local = LiveMetrics(clock=clock)
    records = []
    for i in range(300):
        rec = call(clock.now(), latency_ms=0.0, user=f"u{i % 7}", provider="openai" if i % 3 else "groq",
                   status="error" if i % 10 == 0 else "ok", cost_nanos=1000 + i)  # fmt: skip
        rec.latency_ms = 50.0 + i  # ends within the second it started: same slot either way
        rec.ts = clock.now() - rec.latency_ms / 1000
        records.append(rec)
        local.observe(rec)
        clock.advance(0.13)
    record_calls(store, records[:150], seconds=True)
    record_calls(store, records[150:], seconds=True)
    shared = LiveMetrics(clock=clock, source="store")
    fed = StoreFeed(store, shared, clock=clock)
    assert fed.poll() > 0
    assert fed.poll() == 0  # nothing counted twice
    a, b = local.snapshot(), shared.snapshot()
    for field in ("requests", "errors", "cost_nanos", "input_tokens"):
        assert getattr(a.totals, field) == getattr(b.totals, field)
    assert a.totals.p95_ms == b.totals.p95_ms
    assert {r.key: r.requests for r in a.providers} == {r.key: r.requests for r in b.providers}
    assert {r.key: r.requests for r in a.users} == {r.key: r.requests for r in b.users}
    assert b.recent[-1].request_id == records[-1].request_id


def test_store_feed_counts_seconds_committed_late(store: Store, clock: FakeClock) -> None:
    """A flush held up past the feed's rescan (a locked store, a busy writer) still counts in the window.

    Read by second alone, these calls were never seen: every poll had moved past their seconds before
    they were committed, and an alert on them never fired.
    """
    shared = LiveMetrics(clock=clock, source="store")
    fed = StoreFeed(store, shared, clock=clock, rescan_s=10)
    fed.poll()
    early = [call(clock.now() + i) for i in range(6)]
    clock.advance(40)
    fed.poll()  # a poll between the calls and their flush
    record_calls(store, early, seconds=True)
    record_calls(store, [call(clock.now())], seconds=True)
    assert fed.poll() > 0
    assert shared.stats(None, 60).requests == 7
    assert fed.poll() == 0 and shared.stats(None, 60).requests == 7, "nothing counted twice"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 3), st.sampled_from(["ok", "error", "rate_limited"])), max_size=200))
def test_the_running_window_equals_a_recount(gaps: list[tuple[float, str]]) -> None:
    """The O(1) recent aggregate always equals summing the calls of the last minute."""
    clock = FakeClock()
    live = LiveMetrics(MetricsConfig(window_s=120, recent_s=60), clock=clock)
    seen: list[tuple[float, str]] = []
    for gap, status in gaps:
        clock.advance(gap)
        live.observe(call(clock.now(), status=status))
        seen.append((clock.now(), status))
    now = clock.now()
    cut = int(now) - 60 + 1
    expect = [s for t, s in seen if int(t) >= cut]
    t = live.snapshot().totals
    assert t.requests == len(expect)
    assert t.errors == expect.count("error")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5), st.floats(0, 90), st.booleans()), max_size=200))
def test_late_calls_land_in_their_own_second(steps: list[tuple[float, float, bool]]) -> None:
    """Calls counted for an earlier second (rollups that arrive late) still give the exact window."""
    clock = FakeClock()
    live = LiveMetrics(MetricsConfig(window_s=120, recent_s=60), clock=clock)
    seen: list[float] = []
    for gap, back, late in steps:
        clock.advance(gap)
        at = clock.now() - back if late else clock.now()
        live.observe(call(at), at=at)
        seen.append(at)
    head = int(clock.now())
    t = live.snapshot().totals
    assert t.requests == sum(1 for at in seen if int(at) > head - 60)
    assert live.stats(window_s=120).requests == sum(1 for at in seen if int(at) > head - 120)


def test_a_users_snapshot_holds_its_namespace_and_nobody_else(clock: FakeClock) -> None:
    live = LiveMetrics(MetricsConfig(window_s=900, recent_s=60, user_slot_s=10), clock=clock)
    feed(live, clock, 4, 1.0, user="acme")
    feed(live, clock, 6, 1.0, user="acme/alice")
    feed(live, clock, 9, 1.0, user="bob", cost_nanos=7)
    feed(live, clock, 2, 1.0, user="acmeX")  # a prefix, not the namespace
    mine = live.user_snapshot("acme")
    assert mine.totals.requests == 10 and mine.totals.cost_usd == Decimal("0.000015")
    assert [u.key for u in mine.users] == ["acme", "acme/alice"]
    assert {c.user for c in mine.recent} == {"acme", "acme/alice"} and len(mine.recent) == 10
    assert sum(mine.series.requests) == 10 and mine.series.step_s == 10
    assert mine.providers == [] and mine.models == [] and mine.deployments == []
    assert live.user_snapshot("acme", recent=3).recent[-1].user == "acme/alice"
    assert live.user_snapshot("nobody").totals.requests == 0
    clock.advance(120)  # out of the recent minute, still in the window
    later = live.user_snapshot("acme")
    assert later.totals.requests == 0 and later.lifetime.requests == 10
