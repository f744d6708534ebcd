"""History over the rollups, by time range and dimension, and retention."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from axtui.config import MetricsConfig
from axtui.errors import InvalidRequest
from axtui.metrics.history import OTHER, History, auto_step, history, prune
from axtui.store import Store
from axtui.store.tables_cost import ROLLUP_TABLES
from axtui.store.tables_metrics import MetricsSecond
from tests.metrics.conftest import call, record_calls

T0 = 1_898_553_600.0  # 2030-03-01T00:00:00Z


@pytest.fixture
def traffic(store: Store) -> None:
    recs = []
    for minute in range(180):  # three hours
        for i in range(4):
            recs.append(call(
                T0 + minute * 60 + i * 10,
                user=f"user{i}" if minute % 2 else "alice",
                provider="openai" if i % 2 else "groq",
                status="error" if i == 3 and minute % 10 == 0 else "ok",
                latency_ms=100.0 * (i + 1),
                cost_nanos=1_000_000,
            ))  # fmt: skip
    record_calls(store, recs, seconds=True)


def test_totals_per_minute_and_per_hour_agree(store: Store, traffic: None) -> None:
    minutes = history(store, T0, T0 + 3 * 3600, step="minute")
    hours = history(store, T0, T0 + 3 * 3600, step="hour")
    assert len(minutes.points) == 180 and len(hours.points) == 3
    assert sum(p.calls for p in minutes.points) == sum(p.calls for p in hours.points) == 720
    assert sum((p.cost_usd for p in hours.points), Decimal(0)) == Decimal("0.72")
    first = hours.points[0]
    assert first.start == T0 and first.errors == 6 and first.error_rate == pytest.approx(6 / 240)
    assert first.p50_ms is not None and 150 <= first.p50_ms <= 300


def test_by_provider_and_filters(store: Store, traffic: None) -> None:
    h = history(store, T0, T0 + 3600, by="provider", step="hour")
    assert h.keys == ["groq", "openai"]
    assert {p.key: p.calls for p in h.points} == {"groq": 120, "openai": 120}
    only = history(store, T0, T0 + 3600, step="hour", provider="openai", user="alice")
    assert sum(p.calls for p in only.points) == 60  # alice on even minutes, openai for i = 1, 3


def test_the_busiest_keys_and_the_rest(store: Store, traffic: None) -> None:
    h = history(store, T0, T0 + 3 * 3600, by="user", step="hour", limit=2)
    assert h.keys[0] == "alice" and h.keys[-1] == OTHER and len(h.keys) == 3
    assert sum(p.calls for p in h.points) == 720  # (other) makes the breakdown whole
    back = History.from_json(h.to_json())
    assert back == h


def test_questions_the_rollups_cannot_answer_are_refused(store: Store) -> None:
    with pytest.raises(InvalidRequest, match="filter by provider only"):
        history(store, T0, T0 + 60, by="model", user="alice")
    with pytest.raises(InvalidRequest, match="one of model, user or key"):
        history(store, T0, T0 + 60, user="alice", model="m")
    with pytest.raises(InvalidRequest, match="cannot break history down"):
        history(store, T0, T0 + 60, by="region")
    with pytest.raises(InvalidRequest, match="before its end"):
        history(store, T0, T0)


def test_auto_step() -> None:
    assert auto_step(0, 3600) == "minute"
    assert auto_step(0, 2 * 86400) == "hour"
    assert auto_step(0, 30 * 86400) == "day"


def test_prune_keeps_what_retention_says(store: Store, traffic: None) -> None:
    now = T0 + 3 * 3600
    cfg = MetricsConfig(minute_retention_days=1, hour_retention_days=2, second_retention_s=3600)

    def count(table: object) -> int:
        with store.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)  # type: ignore[arg-type]

    before = count(MetricsSecond.__table__)
    deleted = prune(store, cfg, now)
    assert deleted["cost_rollup_minute"] == 0 and deleted["cost_rollup_hour"] == 0
    assert 0 < deleted["metrics_second"] < before  # the first two hours of seconds went
    deleted = prune(store, cfg, now + 86400 + 3 * 3600)
    assert deleted["cost_rollup_minute"] > 0 and deleted["cost_rollup_hour"] == 0
    assert count(ROLLUP_TABLES["minute"][1]) == 0
    prune(store, cfg, now + 3 * 86400)
    assert count(ROLLUP_TABLES["hour"][1]) == 0
    assert count(ROLLUP_TABLES["day"][1]) > 0  # days are kept
