"""``ax monitor alerts …`` and ``ax monitor export`` as a user runs them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from axtui.cli import main
from axtui.clock import FakeClock
from axtui.metrics.alerts.grammar import parse_rule
from axtui.metrics.alerts.state import Transition
from axtui.metrics.alerts.storage import list_rules, record_transition
from axtui.store import Store
from tests.metrics.conftest import call, record_calls


def ax(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_add_list_remove_a_rule() -> None:
    code, out, _ = ax("monitor", "alerts", "add", "p95_latency_ms > 2000 for 5m where provider=openai",
                      "--name", "openai slow", "--severity", "critical")  # fmt: skip
    assert code == 0 and "added alert rule 1" in out
    code, out, _ = ax("monitor", "alerts", "add", "error_rate", ">", "5%", "for", "10m")  # words are joined
    assert code == 0 and "error_rate > 0.05 for 10m" in out
    code, out, _ = ax("monitor", "alerts", "list", "--json")
    rules = json.loads(out)
    assert [(r["id"], r["name"], r["severity"], r["state"]) for r in rules] == [
        (1, "openai slow", "critical", "ok"),
        (2, "error_rate > 0.05 for 10m", "warning", "ok"),
    ]
    code, out, _ = ax("monitor", "alerts", "list")
    assert code == 0 and "openai slow" in out and "never" in out
    code, out, _ = ax("monitor", "alerts", "remove", "1")
    assert code == 0 and "removed alert rule 1" in out
    assert [r["id"] for r in json.loads(ax("monitor", "alerts", "list", "--json")[1])] == [2]


def test_a_bad_rule_is_refused_with_the_column_and_exit_code_2() -> None:
    code, out, err = ax("monitor", "alerts", "add", "p95_latency_ms >> 2000")
    assert code == 2
    assert "column 17" in err and "a number" in err and "^" in err
    assert "Traceback" not in err + out
    assert json.loads(ax("monitor", "alerts", "list", "--json")[1]) == []


def test_bad_options_are_refused_clearly() -> None:
    assert ax("monitor", "alerts", "add", "rps > 1", "--webhook", "ftp://x")[0] == 2
    code, _, err = ax("monitor", "alerts", "add", "rps > 1", "--severity", "loud")
    assert code == 2 and "loud" in err
    ax("monitor", "alerts", "add", "rps > 1")
    code, _, err = ax("monitor", "alerts", "add", "rps  >  1")
    assert code == 2 and "already exists" in err
    code, _, err = ax("monitor", "alerts", "remove", "99")
    assert code == 2 and "no alert rule with id 99" in err
    code, _, err = ax("monitor", "export", "--since", "yesterday-ish")
    assert code == 2 and "is not a time" in err


def test_events_are_listed_with_their_delivery() -> None:
    ax("monitor", "alerts", "add", "errors > 0", "--webhook", "http://127.0.0.1:9/x")
    store = Store.open()
    try:
        info = list_rules(store)[0]
        clock = FakeClock(start=1_900_000_000)
        t = Transition("firing", "ok", "firing", clock.now(), 3.0)
        store.run(lambda conn: record_transition(conn, info, parse_rule(info.rule), t, "errors is 3 (> 0)", "pending"))
    finally:
        store.close()
    code, out, _ = ax("monitor", "alerts", "events", "--json")
    events = json.loads(out)
    assert code == 0 and [(e["kind"], e["value"], e["delivery"]) for e in events] == [("firing", 3.0, "pending")]
    code, out, _ = ax("monitor", "alerts", "events")
    assert "firing" in out and "errors is 3" in out
    code, out, _ = ax("monitor", "alerts", "events", "--since", "2030-04-01")
    assert code == 0 and "No alert events since 2030-04-01" in out
    assert json.loads(ax("monitor", "alerts", "list", "--json")[1])[0]["state"] == "firing"


def test_export_to_stdout_and_to_a_file(tmp_path: Path) -> None:
    store = Store.open()
    clock = FakeClock(start=1_898_553_600)  # 2030-03-01T00:00:00Z
    try:
        record_calls(
            store, [call(clock.now() + i, user="alice" if i % 2 else "bob", cost_nanos=1000 * i) for i in range(20)]
        )
    finally:
        store.close()
    code, out, _ = ax("monitor", "export")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 20
    code, out, _ = ax("monitor", "export", "--format", "json", "--user", "alice", "--since", "2030-03-01T00:00:05Z")
    data = json.loads(out)
    assert {d["user"] for d in data} == {"alice"} and len(data) == 8  # seconds 5, 7, … 19
    target = tmp_path / "calls.jsonl"
    code, out, err = ax("monitor", "export", "-f", "jsonl", "-o", str(target))
    assert code == 0 and out == "" and f"wrote 20 calls to {target}" in err
    assert len(target.read_text().splitlines()) == 20
    code, out, _ = ax("monitor", "export", "--what", "alerts", "--format", "json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = ax("monitor", "export", "--what", "budgets", "--format", "json")
    assert code == 0 and json.loads(out) == []


def test_the_monitor_group_lists_its_commands() -> None:
    code, out, _ = ax("monitor", "--help")
    assert code == 0 and "alerts" in out and "export" in out


def test_budget_threshold_events_are_listed_beside_rule_events() -> None:
    from sqlalchemy import insert

    from axtui.store.tables_cost import BudgetAlertEvent

    ax("monitor", "alerts", "add", "errors > 0")
    store = Store.open()
    try:
        info = list_rules(store)[0]
        t = Transition("firing", "ok", "firing", 1_900_000_000.0, 3.0)
        store.run(lambda conn: record_transition(conn, info, parse_rule(info.rule), t, "errors is 3", "none"))
        store.run(
            lambda conn: conn.execute(
                insert(BudgetAlertEvent.__table__),  # type: ignore[attr-defined]
                [
                    dict(
                        budget_id=4,
                        period_start=1_899_993_600,
                        threshold=80,
                        ts=1_900_000_100.0,
                        scope="user:alice",
                        period="day",
                        spent_nanos=8_000_000_000,
                        limit_nanos=10_000_000_000,
                        message="user:alice spent $8 of $10 today (80%)",
                        delivery="none",
                        attempts=0,
                    )
                ],
            )
        )
    finally:
        store.close()
    events = json.loads(ax("monitor", "alerts", "events", "--json")[1])
    assert [(e["source"], e["kind"], e["rule_id"]) for e in events] == [
        ("rule", "firing", 1),
        ("budget", "threshold", 4),
    ]
    assert events[1]["labels"] == {"user": "alice"} and events[1]["threshold"] == "80%"
    assert [e["id"] for e in events] == ["rule-1", "budget-1"]  # one id space across sources
    assert events[0]["ts"] == "2030-03-17T17:46:40.000000Z"
    only = json.loads(ax("monitor", "alerts", "events", "--json", "--rule", "1")[1])
    assert [e["source"] for e in only] == ["rule"]
    code, out, _ = ax("monitor", "alerts", "events")
    assert code == 0 and "budget 4" in out and "threshold" in out
    exported = json.loads(ax("monitor", "export", "--what", "alerts", "--format", "json", "--user", "alice")[1])
    assert [e["source"] for e in exported] == ["budget"]
    assert exported[0]["labels"] == {"user": "alice"}  # an object, not JSON text inside JSON
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(ax("monitor", "export", "--what", "alerts", "--format", "csv")[1])))
    assert [(r["id"], r["labels"]) for r in rows] == [("rule-1", ""), ("budget-1", '{"user": "alice"}')]
