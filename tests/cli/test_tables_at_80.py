"""Every table the CLI prints stays readable at 80 columns (the width of a pipe, too): nothing cut."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from axtui.cli import main
from axtui.metrics.alerts.grammar import parse_rule
from axtui.metrics.alerts.state import Transition
from axtui.metrics.alerts.storage import add_rule, record_transition
from axtui.store import Store
from tests.metrics.conftest import call, record_calls

LONG_USER = "user-with-a-rather-long-name-alice"
LONG_MODEL = "claude-sonnet-4-5-20250929"


@pytest.fixture(autouse=True)
def narrow_console() -> Iterator[None]:
    """The console as a pipe or an 80-column terminal lays it out."""
    from axtui.cli._common import console

    before = console.width
    console.width = 80
    yield
    console.width = before


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.open()
    now = time.time()
    record_calls(s, [
        call(now - 60, user=LONG_USER, provider="anthropic", model=LONG_MODEL, deployment=f"anthropic/{LONG_MODEL}",
             cost_nanos=123_456, tags=("team-checkout",)),
        call(now - 30, user="bob", cost_nanos=2 * 10**9),
    ])
    info = add_rule(s, "p95_latency_ms > 2000 for 5m where provider=anthropic", now=now - 100,
                    name="anthropic is slow for everyone in the checkout flow")
    t = Transition(kind="firing", previous="ok", state="firing", at=now - 50, value=2450.0)
    s.run(lambda conn: record_transition(conn, info, parse_rule(info.rule), t, "p95 latency 2,450 ms > 2,000 ms "
                                         "for 5m where provider=anthropic", "none"))
    yield s
    s.close()


def ax(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in (0, 1), result.output
    return result.stdout


def assert_readable(out: str, *whole: str) -> None:
    assert "…" not in out, out
    assert all(len(line) <= 80 for line in out.splitlines()), out
    flat = " ".join(out.split())
    for text in whole:
        assert text in flat, f"{text!r} is cut or missing:\n{out}"


@pytest.mark.usefixtures("store")
@pytest.mark.parametrize(("args", "whole"), [
    (["cost", "summary"], [LONG_MODEL, "$0.00012"]),
    (["cost", "breakdown", "--by", "model"], [LONG_MODEL, "$0.00012"]),
    (["cost", "breakdown", "--by", "user"], [LONG_USER]),
    (["cost", "breakdown", "--by", "tag"], ["team-checkout"]),
    (["cost", "prices", "list"], ["claude-sonnet-4-5", "anthropic", "$15"]),
    (["cost", "budget", "list"], ["user:bob", "$1.00", "$2.00"]),
    (["cost", "budget", "check"], ["user:bob"]),
    (["monitor", "alerts", "list"], ["firing", "warning"]),
    (["monitor", "alerts", "events"], ["firing", "2,450"]),
    (["ratelimit", "status"], [f"user:{LONG_USER}", "60/minute"]),
    (["route", "status", "--since", "600"], ["anthropic/claude-sonnet-4-5"]),
    (["route", "explain", "smart"], ["anthropic/claude-sonnet-4-5"]),
], ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0] in ("cost", "monitor", "ratelimit", "route") else "")
def test_tables_are_whole_at_80_columns(args: list[str], whole: list[str]) -> None:
    ax("cost", "budget", "set", "1", "--scope", "user:bob", "--period", "day")
    ax("ratelimit", "set", LONG_USER, "60/minute")
    out = ax(*args)
    assert_readable(out, *whole)


@pytest.mark.usefixtures("store")
def test_an_alert_row_takes_a_few_lines_not_ten() -> None:
    out = ax("monitor", "alerts", "list")
    table = out.split("(stale):")[0]  # the footnote under the table explains a stale state
    assert len(table.strip().splitlines()) <= 1 + 3, out
    events = ax("monitor", "alerts", "events")
    assert len(events.strip().splitlines()) <= 1 + 3, events


def _key(*args: str) -> str:
    return str(json.loads(ax("keys", "create", "--json", *args))["id"])


def test_keys_list_is_whole_at_80_columns() -> None:
    spender = _key("--user", "alice", "--name", "laptop", "--rpm", "60", "--expires", "2027-01-31", "--budget", "5")
    _key("--user", "bob-the-builder", "--name", "ci pipeline", "--models", "gpt-4o-mini,claude-haiku-4-5",
         "--expires", "2027-03-01")
    _key("--user", "carol", "--budget", "10")
    store = Store.open()
    record_calls(store, [call(time.time() - 60, key=spender, cost_nanos=6_100_000)])
    store.close()
    out = ax("keys", "list")
    assert_readable(out, "$0.0061 (0%)", "2027-01-31", "2027-03-01", "$0 (0%)", spender)
    header = out.splitlines()[0].split()
    assert "tpm" not in header and "team" not in header  # nobody has one: no column of blanks
    for line in out.splitlines()[1:]:
        assert "$" not in line or "(" in line.split("$", 1)[1]  # a spend and its budget share stay on one line


def test_audit_is_whole_at_80_columns() -> None:
    from axtui.clock import FakeClock
    from axtui.store.audit import record

    at = time.mktime((2026, 12, 7, 19, 45, 30, 0, 0, -1))
    store = Store.open()
    record(store, actor="alice@build-server", via="dashboard", action="budget_alerts.configure",
           target=f"user:{LONG_USER}", before={"thresholds": [50]}, after={"thresholds": [50, 90]},
           clock=FakeClock(at))
    store.close()
    out = ax("audit", "--since", "all")
    assert_readable(out, "2026-12-07 19:45:30", "alice@build-server", "dashboard", "budget_alerts.configure",
                    "thresholds: [50] → [50, 90]")
    assert f"user:{LONG_USER}" in "".join(out.split())  # a long target folds, whole
