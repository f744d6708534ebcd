"""Health per deployment: circuit transitions on a fake clock, cooldowns, statistics."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from axtui.clock import FakeClock
from axtui.errors import (
    ContextTooLong,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderRateLimited,
    ProviderServerError,
    ProviderTimeout,
)
from axtui.routing.health import HealthBook, HealthPolicy, Transition, classify
from axtui.types import Deployment

DEP = Deployment("openai", "gpt-4o", "gpt-4o")
POLICY = HealthPolicy(window_s=60, failures=3, error_rate=0.5, min_calls=10, cooldown_s=30, rate_limit_cooldown_s=5)


def _book(policy: HealthPolicy = POLICY) -> tuple[HealthBook, FakeClock]:
    clock = FakeClock()
    return HealthBook(policy, clock, [DEP]), clock


def _call(book: HealthBook, ok: bool, latency: float = 100.0, error: Exception | None = None) -> None:
    book.begin(DEP)
    book.observe(DEP, ok, latency, error=error if not ok else None)  # type: ignore[arg-type]


def _fail(book: HealthBook) -> None:
    _call(book, False, error=ProviderServerError("503", http_status=503))


def test_circuit_opens_after_failures_in_a_row_and_closes_after_a_probe() -> None:
    book, clock = _book()
    seen: list[Transition] = []
    book.listeners.append(seen.append)
    h = book.get(DEP)
    for _ in range(2):
        _fail(book)
    assert h.circuit.current(clock.monotonic()) == "closed"
    _fail(book)
    assert h.circuit.state == "open" and not h.available(clock.monotonic())
    assert "3 failures in a row" in h.circuit.reason
    clock.advance(29)
    assert not h.available(clock.monotonic())
    assert h.circuit.retry_in(clock.monotonic()) == pytest.approx(1)
    clock.advance(1)
    assert h.available(clock.monotonic())
    assert h.circuit.state == "half_open"
    book.begin(DEP)  # the probe takes the only slot
    assert not h.available(clock.monotonic())
    book.observe(DEP, True, 80.0)
    assert h.circuit.state == "closed" and h.available(clock.monotonic())
    assert [(t.before, t.after) for t in seen] == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_a_failed_probe_opens_the_circuit_again() -> None:
    book, clock = _book()
    h = book.get(DEP)
    for _ in range(3):
        _fail(book)
    clock.advance(30)
    assert h.available(clock.monotonic())
    _fail(book)
    assert h.circuit.state == "open"
    assert h.circuit.reason == "the probe call failed"
    assert h.circuit.retry_in(clock.monotonic()) == pytest.approx(30)


def test_a_cancelled_probe_frees_its_slot() -> None:
    book, clock = _book()
    h = book.get(DEP)
    for _ in range(3):
        _fail(book)
    clock.advance(31)
    book.begin(DEP)
    assert not h.available(clock.monotonic())
    book.observe(DEP, False, 10.0)  # no error: the caller went away
    assert h.available(clock.monotonic())


def test_error_rate_opens_the_circuit_without_a_streak() -> None:
    book, _ = _book(HealthPolicy(failures=100, error_rate=0.5, min_calls=10))
    h = book.get(DEP)
    for i in range(10):
        if i % 2:
            _fail(book)
        else:
            _call(book, True)
    assert h.circuit.state == "open"
    assert "5 of the last 10 calls failed" in h.circuit.reason


def test_error_rate_needs_enough_calls() -> None:
    book, _ = _book(HealthPolicy(failures=100, error_rate=0.5, min_calls=10))
    _call(book, True)
    _fail(book)
    _fail(book)
    assert book.get(DEP).circuit.state == "closed"


def test_rate_limit_rests_the_deployment_for_retry_after_not_the_circuit() -> None:
    book, clock = _book()
    h = book.get(DEP)
    book.begin(DEP)
    book.observe(DEP, False, 5.0, error=ProviderRateLimited("429", retry_after=12.0))
    assert h.cooling(clock.monotonic()) == pytest.approx(12.0)
    assert h.circuit.state == "closed"
    clock.advance(12)
    assert h.cooling(clock.monotonic()) == 0
    book.begin(DEP)
    book.observe(DEP, False, 5.0, error=ProviderRateLimited("429"))
    assert h.cooling(clock.monotonic()) == pytest.approx(POLICY.rate_limit_cooldown_s)
    snap = h.snapshot()
    assert snap.rate_limited == 2 and snap.errors == 0 and not snap.available


def test_a_wrong_request_is_not_the_deployments_fault() -> None:
    book, _ = _book()
    h = book.get(DEP)
    for _ in range(10):
        book.begin(DEP)
        book.observe(DEP, False, 5.0, error=ContextTooLong("too long"))
        book.begin(DEP)
        book.observe(DEP, False, 5.0, error=ProviderBadRequest("bad", http_status=400))
    assert h.circuit.state == "closed"
    assert h.snapshot().calls == 0 and h.in_flight == 0


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (ProviderServerError("x"), "fault"),
        (ProviderTimeout("x"), "fault"),
        (ProviderAuthError("x"), "fault"),
        (ProviderBadRequest("no such model", http_status=404), "fault"),
        (ProviderBadRequest("bad", http_status=400), "request"),
        (ContextTooLong("x"), "request"),
        (ProviderRateLimited("x"), "rate_limited"),
        (None, "cancelled"),
    ],
)
def test_classify(error: Exception | None, outcome: str) -> None:
    assert classify(False, error) == outcome  # type: ignore[arg-type]


def test_statistics() -> None:
    book, clock = _book()
    for i in range(100):
        book.begin(DEP)
        book.observe(DEP, True, float(100 + i), ttft_ms=50.0, output_tokens=100)
        clock.advance(0.1)
    snap = book.get(DEP).snapshot()
    assert snap.calls == 100 and snap.error_rate == 0
    assert snap.latency_p50_ms == pytest.approx(149, rel=0.02)
    assert snap.latency_p95_ms == pytest.approx(194, rel=0.02)
    assert snap.ttft_p95_ms == pytest.approx(50, rel=0.02)
    # 100 tokens over (latency - ttft): between 100/150 ms and 100/99 ms.
    assert 600 < (snap.tokens_per_s or 0) < 1100
    assert snap.in_flight == 0
    clock.advance(120)
    later = book.get(DEP).snapshot()
    assert later.calls == 0 and later.latency_p95_ms is None
    assert later.latency_ewma_ms is not None  # the trend outlives the window


def test_in_flight_counts_calls_between_begin_and_end() -> None:
    book, _ = _book()
    for _ in range(3):
        book.begin(DEP)
    assert book.get(DEP).snapshot().in_flight == 3
    book.observe(DEP, True, 10.0)
    assert book.get(DEP).snapshot().in_flight == 2


outcomes = st.lists(st.sampled_from(["ok", "fault", "429", "bad", "wait"]), max_size=60)


@given(outcomes)
def test_breaker_invariants(seq: list[str]) -> None:
    """Whatever happened before: N faults in a row open it, an open circuit sends nothing until its cooldown."""
    book, clock = _book(HealthPolicy(failures=3, error_rate=1.0, min_calls=1000, cooldown_s=30))
    h = book.get(DEP)
    for step in seq:
        if step == "wait":
            clock.advance(7)
            continue
        now = clock.monotonic()
        if not h.available(now):
            assert h.circuit.current(now) in ("open", "half_open")
            continue
        book.begin(DEP)
        if step == "ok":
            book.observe(DEP, True, 10.0)
        elif step == "fault":
            book.observe(DEP, False, 10.0, error=ProviderServerError("x"))
        elif step == "429":
            book.observe(DEP, False, 10.0, error=ProviderRateLimited("x", retry_after=1.0))
        else:
            book.observe(DEP, False, 10.0, error=ProviderBadRequest("x", http_status=400))
        if step == "ok":
            assert h.circuit.state == "closed"
    # Three more faults, whatever the state, leave the circuit open.
    while not h.available(clock.monotonic()):
        clock.advance(7)
    for _ in range(3):
        if h.available(clock.monotonic()):
            _fail(book)
    assert h.circuit.state == "open"
    clock.advance(29.9)
    assert not h.available(clock.monotonic())
    clock.advance(0.1)
    assert h.available(clock.monotonic())
