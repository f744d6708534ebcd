"""The alert rule language: what parses, what it means, and how mistakes are pointed out."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from axtui.errors import InvalidRequest
from axtui.metrics.alerts.grammar import (
    METRICS,
    OPERATORS,
    AlertRule,
    RuleSyntaxError,
    format_duration,
    parse_duration,
    parse_rule,
)


@pytest.mark.parametrize(
    ("text", "metric", "op", "threshold", "period", "for_s", "where"),
    [
        ("p95_latency_ms > 2000 for 5m where provider=openai", "p95_latency_ms", ">", "2000", None, 300, {"provider": "openai"}),
        ("error_rate > 0.05 for 10m", "error_rate", ">", "0.05", None, 600, {}),
        ("error_rate > 5%", "error_rate", ">", "0.05", None, 0, {}),
        ("spend_usd > 50 per day", "spend_usd", ">", "50", "day", 0, {}),
        ("spend_usd > $12.50 per month where user=alice", "spend_usd", ">", "12.50", "month", 0, {"user": "alice"}),
        ("cache_hit_rate < 0.3 for 30m", "cache_hit_rate", "<", "0.3", None, 1800, {}),
        ("budget_used_pct >= 80 where user=alice", "budget_used_pct", ">=", "80", None, 0, {"user": "alice"}),
        ("rps<=1 for 1h30m", "rps", "<=", "1", None, 5400, {}),
        ('ttft_ms != 0 where model="gpt 4o",provider=azure', "ttft_ms", "!=", "0", None, 0,
         {"model": "gpt 4o", "provider": "azure"}),
        ("  RATE_LIMITED == 3   FOR 45s  ", "rate_limited", "==", "3", None, 45, {}),
    ],
)  # fmt: skip
def test_good_rules_mean_what_they_say(
    text: str, metric: str, op: str, threshold: str, period: str | None, for_s: float, where: dict[str, str]
) -> None:
    rule = parse_rule(text)
    assert rule.metric == metric
    assert rule.op == op
    assert rule.threshold == Decimal(threshold)
    assert rule.period == period
    assert rule.for_s == for_s
    assert rule.filters == where
    assert parse_rule(str(rule)) == rule


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [
        ("p95_latency > 2000", 1, "did you mean p95_latency_ms"),
        ("p95_latency_ms 2000", 16, "an operator"),
        ("p95_latency_ms > fast", 18, "a number"),
        ("p95_latency_ms > 2000 for soon", 27, "a duration"),
        ("p95_latency_ms > 2000 during 5m", 23, "'for', 'where' or the end of the rule"),
        ("spend_usd > 50", 15, "'per hour', 'per day' or 'per month'"),
        ("spend_usd > 50 per week", 20, "a period: hour, day or month"),
        ("rps > 5 per day", 9, "takes no 'per'"),
        ("error_rate > 2", 14, "a fraction between 0 and 1"),
        ("rps > $5", 7, "without '$'"),
        ("rps > 5%", 7, "without '%'"),
        ("rps > -1", 7, "at least 0"),
        ("rps > 5 where region=eu", 15, "provider, deployment, model, user"),
        ("rps > 5 where user", 19, "'=' after user"),
        ("rps > 5 where user=", 20, "a value for user"),
        ("rps > 5 where user=a,user=b", 22, "each dimension once"),
        ("rps > 5 where user=a provider=b", 22, "',' before another filter"),
        ("rps > 5 for 1m for 2m", 16, "'where' or the end of the rule"),
        ("rps > 5 where user='bob", 20, "a closing '"),
        ("", 1, "a rule such as"),
        ("rps > 5 # note", 9, "a metric, operator, number or keyword"),
    ],
)
def test_a_bad_rule_names_the_column_and_what_was_expected(text: str, column: int, expected: str) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse_rule(text)
    err = info.value
    assert err.column == column, err.message
    assert expected in err.message
    lines = err.message.splitlines()
    # The rule is echoed with a caret under the column.
    assert lines[-1].index("^") - 2 == column - 1
    assert isinstance(err, InvalidRequest)  # exit code 2, HTTP 400


def test_budget_and_spend_rules_may_filter_by_key_but_live_ones_may_not() -> None:
    assert parse_rule("budget_used_pct > 90 where key=k_1").filters == {"key": "k_1"}
    with pytest.raises(RuleSyntaxError, match="provider, deployment, model, user"):
        parse_rule("rps > 5 where key=k_1")


def test_every_metric_parses_with_a_plain_threshold() -> None:
    for name, spec in METRICS.items():
        text = f"{name} > 0.5" + (" per day" if spec.needs_period else "")
        assert parse_rule(text).metric == name


_values = st.one_of(
    st.from_regex(r"[A-Za-z0-9_.\-/:@]{1,12}", fullmatch=True),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12),
)


@st.composite
def rules(draw: st.DrawFn) -> AlertRule:
    name = draw(st.sampled_from(sorted(METRICS)))
    spec = METRICS[name]
    if spec.unit == "ratio":
        threshold = Decimal(draw(st.integers(0, 1000))) / 1000
    else:
        threshold = Decimal(draw(st.integers(0, 10**6))) / draw(st.sampled_from([1, 10, 100]))
    period = draw(st.sampled_from(["hour", "day", "month"])) if spec.needs_period else None
    for_s = float(draw(st.sampled_from([0, 30, 60, 300, 3600, 5400, 86400])))
    dims = draw(st.lists(st.sampled_from(spec.dims), unique=True, max_size=3))
    where = tuple((d, draw(_values)) for d in dims)
    return AlertRule(name, draw(st.sampled_from(OPERATORS)), threshold, period, for_s, where)


@given(rules())
def test_the_canonical_text_of_any_rule_parses_back_to_it(rule: AlertRule) -> None:
    back = parse_rule(str(rule))
    assert back.metric == rule.metric and back.op == rule.op and back.period == rule.period
    assert back.threshold == rule.threshold
    assert back.for_s == rule.for_s
    assert back.where == rule.where


@given(st.integers(1, 10 * 86400))
def test_durations_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "5", "m", "5 m", "-5m", "5mm", "1h-5m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
