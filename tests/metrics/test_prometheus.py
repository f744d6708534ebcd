"""The Prometheus exposition fed from the bus."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from axtui.bus import AlertChanged, BudgetCrossed, CallRecorded, EventBus
from axtui.clock import FakeClock
from axtui.cost.alerts import BudgetAlert
from axtui.metrics.alerts.model import AlertEvent
from axtui.metrics.prometheus import PrometheusMetrics
from tests.metrics.conftest import call


def _samples(p: PrometheusMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text, ctype = p.render()
    assert ctype.startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _event(kind: str) -> AlertEvent:
    return AlertEvent(1, 0.0, 7, "slow", "p95_latency_ms > 1", "critical", kind, 5.0, "1", {}, "m")


def test_calls_alerts_and_budget_events_are_counted(clock: FakeClock) -> None:
    bus = EventBus()
    p = PrometheusMetrics()
    p.attach(bus)
    for _ in range(3):
        bus.publish(CallRecorded(call(clock.now(), latency_ms=250.0, cost_nanos=500_000_000)))
    bus.publish(CallRecorded(call(clock.now(), status="rate_limited", provider=None, model=None, cost_nanos=None)))
    bus.publish(CallRecorded(call(clock.now(), cost_nanos=None)))
    bus.publish(AlertChanged(_event("firing")))
    bus.publish(BudgetCrossed(BudgetAlert(1, 1, "global", "day", 0, 50, 1, 2, 0.0, "half the budget")))
    s = _samples(p)
    ok = (("cache", "miss"), ("model", "gpt-4o-mini"), ("provider", "openai"), ("status", "ok"))
    assert s[("ax_requests_total", ok)] == 4
    assert (
        s[
            (
                "ax_requests_total",
                (("cache", "miss"), ("model", "none"), ("provider", "none"), ("status", "rate_limited")),
            )
        ]
        == 1
    )
    labels = (("model", "gpt-4o-mini"), ("provider", "openai"))
    assert s[("ax_request_duration_seconds_count", labels)] == 4
    assert s[("ax_request_duration_seconds_bucket", (("le", "0.25"), *labels))] == 4
    assert s[("ax_request_duration_seconds_bucket", (("le", "0.1"), *labels))] == 0
    assert s[("ax_cost_usd_total", labels)] == 1.5
    assert s[("ax_unpriced_calls_total", labels)] == 1
    assert s[("ax_tokens_total", (("kind", "input"), *labels))] == 400
    assert s[("ax_alerts_firing", (("name", "slow"), ("rule_id", "7"), ("severity", "critical")))] == 1
    assert s[("ax_budget_events_total", ())] == 1
    bus.publish(AlertChanged(_event("resolved")))
    s = _samples(p)
    assert ("ax_alerts_firing", (("name", "slow"), ("rule_id", "7"), ("severity", "critical"))) not in s
    assert s[("ax_alert_transitions_total", (("kind", "resolved"), ("severity", "critical")))] == 1
    p.detach()
    bus.publish(CallRecorded(call(clock.now())))
    assert _samples(p)[("ax_requests_total", ok)] == 4


def test_two_exporters_in_one_process_do_not_clash() -> None:
    a, b = PrometheusMetrics(), PrometheusMetrics()
    a.observe(call(0.0))
    assert b"ax_requests_total{" not in b.render()[0]
