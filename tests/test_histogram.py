"""The mergeable log-bucket histogram (axtui.histogram) and its sliding window.

Properties: every quantile is within RELATIVE_ERROR of a value actually
added; merge equals the histogram of the concatenation; subtract undoes
merge; the text and dict forms round-trip. Plus the zero bucket, bad input,
reading rollups written at the former 2 % accuracy, and the hot path that
metrics windows inline.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from axtui.histogram import (
    MIN_VALUE,
    RELATIVE_ERROR,
    ZERO_BUCKET,
    LogHistogram,
    WindowedHistogram,
    bucket_of,
)
from axtui.metrics.windows import Slot, observe_record
from axtui.types import CallRecord

positive = st.floats(min_value=1e-3, max_value=1e7, allow_nan=False)
# Mostly positive values, with some zeros and negatives for the zero bucket.
value = st.one_of(positive, positive, positive, st.just(0.0), st.floats(min_value=-1e3, max_value=0.0))
values = st.lists(value, min_size=1, max_size=300)
quantile = st.floats(min_value=0.0, max_value=1.0)


def _counted(v: float) -> float:
    return v if v > MIN_VALUE else 0.0


def _true_quantile(xs: list[float], q: float) -> float:
    ordered = sorted(_counted(v) for v in xs)
    return ordered[math.floor(q * (len(ordered) - 1))]


@given(values, quantile)
def test_a_quantile_is_within_the_relative_error_of_a_value_added(xs: list[float], q: float) -> None:
    got = LogHistogram.of(xs).quantile(q)
    want = _true_quantile(xs, q)
    assert got is not None
    assert abs(got - want) <= want * RELATIVE_ERROR * (1 + 1e-9), (got, want)


@given(values, st.lists(quantile, min_size=1, max_size=5))
def test_quantiles_agree_with_quantile(xs: list[float], qs: list[float]) -> None:
    h = LogHistogram.of(xs)
    assert h.quantiles(qs) == [h.quantile(q) for q in qs]


@given(values, values)
def test_merging_two_equals_the_histogram_of_everything(a: list[float], b: list[float]) -> None:
    merged = LogHistogram.of(a).merge(LogHistogram.of(b))
    whole = LogHistogram.of(a + b)
    assert merged == whole
    assert merged.count == len(a) + len(b)
    assert merged.quantiles((0.0, 0.5, 0.95, 1.0)) == whole.quantiles((0.0, 0.5, 0.95, 1.0))
    assert merged.total == pytest.approx(whole.total)


@given(values, values)
def test_subtracting_a_merged_part_gives_back_the_rest(a: list[float], b: list[float]) -> None:
    h = LogHistogram.of(a)
    before = h.copy()
    part = LogHistogram.of(b)
    h.merge(part).subtract(part)
    assert h == before
    assert h.quantile(0.5) == before.quantile(0.5)
    assert h.total == pytest.approx(before.total, abs=1e-6 * (abs(before.total) + part.total))
    h.subtract(before)
    assert not h and h.buckets == {} and h.total == 0.0 and h.quantile(0.5) is None


@given(values)
def test_the_text_form_round_trips(xs: list[float]) -> None:
    h = LogHistogram.of(xs)
    back = LogHistogram.from_text(h.to_text())
    assert back == h
    assert back.total == h.total
    assert back.quantiles((0.5, 0.99)) == h.quantiles((0.5, 0.99))


@given(values)
def test_the_dict_form_round_trips(xs: list[float]) -> None:
    h = LogHistogram.of(xs)
    back = LogHistogram.from_dict(h.to_dict())
    assert back == h
    assert back.total == h.total
    assert back.quantiles((0.5, 0.99)) == h.quantiles((0.5, 0.99))


def test_text_form_is_compact_and_names_its_accuracy() -> None:
    h = LogHistogram.of([0.0, 100.0, 100.0])
    assert h.to_text() == f"{ZERO_BUCKET}:1,{bucket_of(100.0)}:2;200.0;a=0.01"
    assert LogHistogram().to_text() == ";0.0;a=0.01"
    assert LogHistogram.from_text("") == LogHistogram() == LogHistogram.from_text(None)


def test_rollups_written_at_two_percent_are_read_into_this_layout() -> None:
    # The text form ax wrote before it named its accuracy: 2 % buckets, no "a=".
    gamma2 = 1.02 / 0.98
    old = f"{ZERO_BUCKET}:1,{math.ceil(math.log(250.0) / math.log(gamma2))}:3;750.0"
    h = LogHistogram.from_text(old)
    assert h.count == 4 and h.total == 750.0
    assert h.quantile(0.0) == 0.0
    assert h.quantile(1.0) == pytest.approx(250.0, rel=0.02 + RELATIVE_ERROR)
    # Once read, it merges with histograms of this layout like any other.
    assert h.merge(LogHistogram.of([250.0])).quantile(1.0) == pytest.approx(250.0, rel=0.03)


def test_a_dict_at_another_accuracy_is_rebucketed() -> None:
    coarse = {"relative_error": 0.05, "count": 2, "total": 2000.0, "zeros": 0,
              "buckets": {str(math.ceil(math.log(1000.0) / math.log(1.05 / 0.95))): 2}}  # fmt: skip
    assert LogHistogram.from_dict(coarse).quantile(0.5) == pytest.approx(1000.0, rel=0.05 + RELATIVE_ERROR)


def test_zero_negative_and_nan_values_count_as_zero() -> None:
    h = LogHistogram()
    assert h.quantile(0.5) is None and h.mean() is None and not h
    for v in (0.0, -3.0, float("nan"), MIN_VALUE / 2, 10.0):
        h.add(v)
    assert h.count == 5 and h.buckets[ZERO_BUCKET] == 4
    assert h.total == 10.0 and h.mean() == 2.0
    assert h.quantile(0.5) == 0.0
    assert h.quantile(1.0) == pytest.approx(10.0, rel=RELATIVE_ERROR)
    assert h.to_dict()["zeros"] == 4


def test_add_counts_a_value_n_times() -> None:
    h = LogHistogram()
    h.add(42.0, 3)
    assert h == LogHistogram.of([42.0] * 3) and h.total == 126.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("12:x;1.0;a=0.01", "not a histogram in text form"),
        ("12:0;1.0;a=0.01", "count below one"),
        ("12:1;1.0;b=0.01", "index:count"),
        ("12:1;1.0;a=1.5", "between 0 and 1"),
        ("12:1", "index:count"),
    ],
)
def test_bad_text_is_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LogHistogram.from_text(text)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        LogHistogram.of([1.0]).quantile(1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        LogHistogram().quantiles((0.5, float("nan")))
    with pytest.raises(ValueError, match="finite"):
        LogHistogram().add(math.inf)
    with pytest.raises(ValueError, match="at least once"):
        LogHistogram().add(1.0, 0)
    with pytest.raises(ValueError, match="not the sum"):
        LogHistogram.from_dict({"count": 3, "buckets": {"5": 1}})
    with pytest.raises(ValueError, match="not a histogram"):
        LogHistogram.from_dict({"buckets": {"five": 1}})


@pytest.mark.parametrize("latency_ms", [0.0, -5.0, 0.5, 180.0, 61_000.0])
def test_metrics_windows_inline_add_as_the_histogram_does(latency_ms: float) -> None:
    rec = CallRecord(ts=0.0, user="u", requested_model="fast", status="ok", provider="p", model="m",
                     deployment="p/m", latency_ms=latency_ms, ttft_ms=latency_ms / 2, request_id="r")  # fmt: skip
    slot = Slot()
    slot.add(observe_record(rec), 0.0)
    for got, want in ((slot.latency, latency_ms), (slot.ttft, latency_ms / 2)):
        expected = LogHistogram.of([want])
        assert got == expected and got.total == expected.total


@settings(max_examples=50)
@given(st.lists(st.tuples(st.floats(min_value=0, max_value=200), st.floats(min_value=1, max_value=1000)),
                min_size=1, max_size=100))  # fmt: skip
def test_window_holds_exactly_the_values_of_live_slots(events: list[tuple[float, float]]) -> None:
    span, slots = 60.0, 6
    w = WindowedHistogram(span, slots)
    now = 0.0
    added: list[tuple[float, float]] = []
    for dt, v in events:
        now += dt
        w.add(v, now)
        added.append((now, v))
    slot = span / slots
    oldest = (int(now // slot) - slots + 1) * slot
    live = [v for t, v in added if t >= oldest]
    assert w.snapshot(now) == LogHistogram.of(live)
    assert w.count(now) == len(live)


def test_window_forgets_old_values() -> None:
    w = WindowedHistogram(60.0, 6)
    for i in range(10):
        w.add(1000.0, i)
    assert w.count(9) == 10
    assert w.quantile(0.5, 30) == pytest.approx(1000.0, rel=RELATIVE_ERROR)
    w.add(5.0, 75)
    assert w.count(75) == 1
    assert w.quantile(0.95, 75) == pytest.approx(5.0, rel=RELATIVE_ERROR)
    assert w.count(200) == 0 and w.quantile(0.5, 200) is None
    with pytest.raises(ValueError, match="span_s > 0"):
        WindowedHistogram(0.0)
