"""Limit notation: what is accepted, and what a wrong limit is told."""

from __future__ import annotations

import pytest

from axtui.ratelimit.parse import Rate, format_period, parse_limit_value, parse_rate


@pytest.mark.parametrize(
    ("text", "amount", "period_s", "canonical"),
    [
        ("60/minute", 60, 60, "60/minute"),
        ("1000/hour", 1000, 3600, "1000/hour"),
        ("100000/day", 100000, 86400, "100000/day"),
        ("10/30seconds", 10, 30, "10/30seconds"),
        ("10 per 2 hours", 10, 7200, "10/2hours"),
        (" 5 / Second ", 5, 1, "5/second"),
        ("3/minutes", 3, 60, "3/minute"),
    ],
)
def test_limits_notation_is_read(text: str, amount: int, period_s: int, canonical: str) -> None:
    rate = parse_rate(text)
    assert (rate.amount, rate.period_s, rate.text) == (amount, period_s, canonical)
    # The canonical text is limits' notation too, so every backend reads the same limit.
    assert rate.item.amount == amount and rate.item.get_expiry() == period_s


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("60/minut", "unknown period 'minut' (did you mean 'minute'?)"),
        ("0/minute", "at least 1"),
        ("-5/minute", "at least 1"),
        ("1.5/minute", "not a whole number"),
        ("60", "write a limit as N/PERIOD"),
        ("5/minute;1/second", "one limit at a time"),
        ("", "empty limit"),
        ("10/0seconds", "multiple must be at least 1"),
    ],
)
def test_a_wrong_limit_names_the_problem_and_lists_the_valid_forms(text: str, says: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_rate(text)
    assert says in str(err.value)
    assert "60/minute, 1000/hour, 100000/day" in str(err.value)


def test_words_for_no_limit_and_for_the_default() -> None:
    assert parse_limit_value("unlimited") == "unlimited"
    assert parse_limit_value("NONE") == "unlimited"
    assert parse_limit_value("default") == "default"
    assert parse_limit_value(None) is None
    assert parse_limit_value("7/day") == Rate(7, 86400, "7/day")
    with pytest.raises(ValueError, match="'unlimited' for no limit"):
        parse_limit_value("lots")


def test_periods_read_back_for_people() -> None:
    assert format_period(60) == "minute"
    assert format_period(7200) == "2 hours"
    assert format_period(30) == "30 seconds"
    assert format_period(86400) == "day"
