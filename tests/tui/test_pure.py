"""The dashboard's pure parts: number formats, the log filter, routing edits, themes, series."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from axtui.config import ABTestConfig, ABVariant, RoutingRule
from axtui.metrics.snapshot import RecentCall, Series
from axtui.tui import fmt
from axtui.tui.checks import check_amount, check_rate, check_scope, check_subject
from axtui.tui.filtering import FilterError, parse_filter
from axtui.tui.routing_edit import check_percent, check_weight, move_rule, rebalance
from axtui.tui.screens.realtime import carry_forward, trim_series
from axtui.tui.themes import ThemeError, load_themes, parse_theme

# -- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "unknown"),
        (0, "$0"),
        (Decimal("0.000041"), "$0.000041"),
        (Decimal("0.00123"), "$0.0012"),
        (Decimal("0.0870"), "$0.0870"),
        (Decimal("12.346"), "$12.35"),
        (Decimal("1234.5"), "$1,234"),
        (Decimal("-2.5"), "-$2.50"),
    ],
)
def test_money_reads_with_the_precision_it_deserves(value: Decimal | None, text: str) -> None:
    assert fmt.usd(value) == text


def test_budget_amounts_show_cents() -> None:
    assert fmt.usd(Decimal(25), cents=True) == "$25.00"
    assert fmt.usd(Decimal("1234.5"), cents=True) == "$1,234.50"


@pytest.mark.parametrize(("nanos", "text"), [(25_000_000_000, "$25.00"), (400_000_000, "$0.40"),
                                             (1_000_000, "$0.0010"), (1, "$0.000000001"),
                                             (12_345_678, "$0.012345678")])
def test_a_budget_amount_shows_cents_and_a_test_amount_every_digit(nanos: int, text: str) -> None:
    assert fmt.usd_limit(nanos) == text


@pytest.mark.parametrize(("ms", "text"), [(None, "–"), (12.4, "12ms"), (999, "999ms"), (1250, "1.25s"),
                                          (12_345, "12.3s")])
def test_latency(ms: float | None, text: str) -> None:
    assert fmt.ms(ms) == text


def test_rates_percentages_and_ages() -> None:
    assert fmt.rate(0.44) == "0.4"
    assert fmt.rate(1234) == "1.2k"
    assert fmt.pct(0.0423) == "4.2%"
    assert fmt.ago(None, 100) == "never"
    assert fmt.ago(100 - 42, 100) == "42s ago"
    assert fmt.ago(0, 7200) == "2h ago"


@given(st.floats(min_value=-1, max_value=2, allow_nan=False), st.integers(min_value=1, max_value=40))
def test_a_bar_always_fills_exactly_its_width(fraction: float, width: int) -> None:
    drawn = fmt.bar(fraction, width)
    assert len(drawn) == width
    if fraction >= 1:
        assert drawn == "█" * width
    if fraction <= 0:
        assert drawn.strip() == ""


# -- the log filter --------------------------------------------------------------------------


def _call(**kw: object) -> RecentCall:
    base: dict[str, object] = {"ts": 0.0, "user": "alice", "requested_model": "fast", "status": "ok",
                               "provider": "groq", "model": "llama-3.3-70b-versatile",
                               "deployment": "groq/llama-3.3-70b-versatile", "latency_ms": 420.0,
                               "cost_usd": Decimal("0.0004"), "input_tokens": 20, "output_tokens": 80}
    base.update(kw)
    return RecentCall(**base)  # type: ignore[arg-type]


def test_words_fields_negation_and_thresholds() -> None:
    call = _call()
    assert parse_filter("").matches(call)
    assert parse_filter("groq alice").matches(call)
    assert not parse_filter("groq bob").matches(call)
    assert parse_filter("user=ali provider=groq").matches(call)
    assert not parse_filter("status!=ok").matches(call)
    assert parse_filter("status!=ok").matches(_call(status="error"))
    assert parse_filter("latency>400").matches(call)
    assert not parse_filter("latency>1000").matches(call)
    assert parse_filter("cost<$0.001 tokens>=100").matches(call)
    assert not parse_filter("cost>0").matches(_call(cost_usd=None))


@pytest.mark.parametrize("text", ["colour=red", "latency>fast", "cost>=$abc"])
def test_a_filter_that_cannot_be_understood_says_how_to_write_it(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)


@given(st.text(alphabet="abcdefgh =!<>.0123456789", max_size=30))
def test_any_text_parses_or_is_refused_with_a_filter_error(text: str) -> None:
    try:
        f = parse_filter(text)
    except FilterError:
        return
    f.matches(_call())  # never raises


# -- routing edits ---------------------------------------------------------------------------


def _test(*percents: float) -> ABTestConfig:
    return ABTestConfig(name="t", model="smart", variants=[
        ABVariant(name=f"v{i}", model=f"m{i}", percent=p) for i, p in enumerate(percents)
    ])


@given(
    st.lists(st.integers(min_value=0, max_value=1000), min_size=2, max_size=5).filter(lambda w: sum(w) > 0),
    st.data(),
)
def test_rebalanced_splits_always_add_up_to_100_and_keep_the_edit(weights: list[int], data: st.DataObject) -> None:
    total = sum(weights)
    # Whole tenths of a percent that add up to 100 exactly, as a saved config has.
    tenths = [w * 1000 // total for w in weights]
    tenths[0] += 1000 - sum(tenths)
    test = _test(*(t / 10 for t in tenths))
    index = data.draw(st.integers(min_value=0, max_value=len(weights) - 1))
    target = data.draw(st.integers(min_value=0, max_value=1000)) / 10
    new = rebalance(test, f"v{index}", target)
    assert sum(Decimal(repr(v.percent)) for v in new.variants) == 100
    assert new.variants[index].percent == target
    assert all(0 <= v.percent <= 100 for v in new.variants)


def test_rebalance_keeps_the_others_in_proportion() -> None:
    new = rebalance(_test(50, 30, 20), "v0", 60)
    assert [v.percent for v in new.variants] == [60, 24, 16]


def test_moving_a_rule_clamps_at_the_ends() -> None:
    rules = [RoutingRule(name=n) for n in "abc"]
    moved, to = move_rule(rules, 2, -1)
    assert [r.name for r in moved] == ["a", "c", "b"] and to == 1
    moved, to = move_rule(rules, 0, -1)
    assert [r.name for r in moved] == ["a", "b", "c"] and to == 0


@pytest.mark.parametrize(("check", "good", "bad", "why"), [
    (check_weight, "2.5", "-1", "0 or more"),
    (check_percent, "30", "130", "0 to 100"),
    (check_amount, "$12.50", "0", "more than zero"),
    (check_rate, "60/minute", "60/minut", "minut"),
    (check_scope, "user:alice", "org:red", "unknown scope"),
    (check_subject, "provider:openai", "user:", "names no user"),
])
def test_live_checks_accept_good_input_and_say_what_is_wrong(check, good, bad, why) -> None:  # type: ignore[no-untyped-def]
    assert check(good) is None
    message = check(bad)
    assert message is not None and why in message


# -- themes ----------------------------------------------------------------------------------


def test_the_shipped_themes_load() -> None:
    themes = load_themes()
    assert {"dark", "light", "high-contrast"} <= set(themes.themes)
    assert not themes.problems
    assert themes.themes["light"].dark is False


@pytest.mark.parametrize(("data", "why"), [
    ({"primary": "#fff"}, "name is missing"),
    ({"name": "x"}, "primary is missing"),
    ({"name": "x", "primary": "bleu"}, "not a colour"),
    ({"name": "x", "primary": "#fff", "shade": "#000"}, "unknown key 'shade'"),
    ({"name": "x", "primary": "#fff", "text_alpha": 3}, "from 0 to 1"),
])
def test_a_bad_theme_is_refused_with_the_fix(data: dict[str, object], why: str) -> None:
    with pytest.raises(ThemeError, match=why):
        parse_theme(data, "mine.toml")


def test_user_themes_replace_shipped_ones_and_broken_files_are_reported(tmp_path: Path) -> None:
    shipped, user = tmp_path / "shipped", tmp_path / "user"
    shipped.mkdir()
    user.mkdir()
    (shipped / "dark.toml").write_text('name = "dark"\nprimary = "#111111"\n')
    (user / "dark.json").write_text('{"name": "dark", "primary": "#222222"}')
    (user / "bad.toml").write_text("name = [unclosed")
    themes = load_themes([shipped, user])
    assert themes.themes["dark"].primary == "#222222"
    assert len(themes.problems) == 1 and "bad.toml" in themes.problems[0] and "not valid TOML" in themes.problems[0]


# -- series ----------------------------------------------------------------------------------


def test_sparklines_start_when_the_source_started_and_skip_the_filling_second() -> None:
    s = Series(start=100, step_s=1)
    for i in range(10):
        s.requests.append(i)
        for name in ("errors", "rate_limited", "budget_refused", "cache_hits", "served", "tokens", "cost_nanos"):
            getattr(s, name).append(0)
        for name in ("p50_ms", "p95_ms", "p99_ms", "ttft_ms"):
            getattr(s, name).append(None)
    cut = trim_series(s, started=104.5)
    assert cut.start == 105 and cut.requests == [5, 6, 7, 8]
    assert len(cut.p95_ms) == 4


def test_gaps_carry_the_last_value() -> None:
    assert carry_forward([None, 3.0, None, None, 5.0]) == [0.0, 3.0, 3.0, 3.0, 5.0]
