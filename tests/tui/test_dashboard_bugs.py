"""The dashboard bugs a power user found (issue 22), each driven the way they were found."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from textual.widgets import DataTable, Static

from axtui.tui.screens.alerts import AlertsScreen
from axtui.tui.screens.confirm import ConfirmScreen
from axtui.tui.screens.help import HelpScreen
from axtui.tui.screens.routing import RoutingScreen

from .helpers import make_app, settle
from .seed import Seeded


async def _go(pilot: Any, key: str, kind: type) -> Any:
    await settle(pilot)
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(pilot.app.screen, kind)
    return pilot.app.screen


def _footer_words(app: Any) -> dict[str, str]:
    return {key: b.binding.description for key, b in app.screen.active_bindings.items() if b.enabled}


# -- a crash, and its exit status ----------------------------------------------------------


async def test_help_on_the_alerts_screen_shows_the_rule_grammar(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await _go(pilot, "4", AlertsScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one(Static).render())
        assert "METRIC OP VALUE [per PERIOD] [for DURATION]" in text
    assert app.return_code in (None, 0)


def test_a_crashed_dashboard_exits_non_zero(monkeypatch: pytest.MonkeyPatch, seeded: Seeded) -> None:
    import axtui.tui.app
    import axtui.tui.data
    from axtui.tui.run import run_dashboard

    class Crashing:
        return_code: int | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def run(self) -> None:
            self.return_code = 1  # what Textual sets after printing a crash's traceback

    monkeypatch.setattr(axtui.tui.app, "AxApp", Crashing)
    monkeypatch.setattr(axtui.tui.data, "open_backend", lambda **_: seeded.backend())
    with pytest.raises(SystemExit) as exited:
        run_dashboard(demo=True, url=None, theme=None)
    assert exited.value.code == 1


# -- staged routing edits are not dropped without asking -----------------------------------


async def _stage_a_weight(pilot: Any) -> RoutingScreen:
    screen: RoutingScreen = await _go(pilot, "5", RoutingScreen)
    await pilot.press("enter", *"3", "enter")
    await pilot.pause()
    assert screen.dirty
    return screen


async def test_quitting_with_staged_routing_edits_asks_first(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _stage_a_weight(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "routing edits" in str(app.screen.query_one("#confirm-question", Static).render())
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is screen and screen.dirty and app.is_running
        await pilot.press("q", "y")
        await pilot.pause()
        assert not app.is_running


async def test_switching_screens_keeps_staged_routing_edits(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _stage_a_weight(pilot)
        await _go(pilot, "1", type(app.dashboards["realtime"]))
        await pilot.press("5")
        await settle(pilot, fetches=screen.fetches + 1)
        assert app.screen is screen and screen.dirty
        health = screen.query_one("#health", DataTable)
        assert health.get_cell("anthropic/claude-haiku-4-5", "weight").plain == "● 3"


async def test_quitting_without_edits_does_not_ask(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await _go(pilot, "5", RoutingScreen)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


# -- the footer tells the truth ------------------------------------------------------------


@pytest.mark.parametrize("key", ["2", "3", "4", "5", "6"])
async def test_a_screen_first_opened_while_paused_is_not_left_empty(seeded: Seeded, key: str) -> None:
    from axtui.tui.screens.base import DashboardScreen

    from .helpers import until

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("p", key)
        screen = app.screen
        assert isinstance(screen, DashboardScreen) and screen.MODE != "realtime"
        await until(lambda: screen.fetches >= 1, pilot=pilot)
        assert app.paused


async def test_the_footer_offers_resume_while_paused(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert _footer_words(app)["p"] == "Pause"
        await pilot.press("p")
        await pilot.pause()
        assert app.paused and _footer_words(app)["p"] == "Resume"
        await pilot.press("p")
        await pilot.pause()
        assert not app.paused and _footer_words(app)["p"] == "Pause"


# -- realtime: health, sparklines ----------------------------------------------------------


def test_a_deployment_failing_a_fifth_of_its_calls_is_not_ok() -> None:
    from axtui.metrics.snapshot import Stats
    from axtui.tui.data import DeploymentState
    from axtui.tui.screens.realtime import deployment_cells
    from axtui.tui.widgets.palette import Palette

    palette = Palette(ok="green", warn="yellow", bad="red", muted="grey50", accent="cyan", primary="blue")
    closed = DeploymentState("azure/gpt-4o")
    failing = Stats(key="azure/gpt-4o", requests=50, errors=10, error_rate=0.2)
    assert deployment_cells(failing, closed, palette)[1].plain == "▲ 20% fail"
    fine = Stats(key="azure/gpt-4o", requests=50, errors=0, error_rate=0.0)
    assert deployment_cells(fine, closed, palette)[1].plain == "● ok"


def test_a_tenth_of_a_percent_of_errors_is_a_sliver_not_a_full_bar() -> None:
    from axtui.tui.screens.realtime import ERROR_SCALE
    from axtui.tui.widgets.tiles import spark_rows

    rows = spark_rows([0.0, 0.001, 0.0, 0.001], width=4, height=2, floor=ERROR_SCALE)
    assert [c for c, _ in rows[0]] == [" "] * 4  # nothing reaches the upper row
    assert all(c == "▁" for c, _ in rows[1])
    full = spark_rows([0.0, 0.2], width=2, height=2, floor=ERROR_SCALE)
    assert full[0][1][0] == "█"


def test_seconds_before_the_start_stay_blank_across_the_window() -> None:
    from axtui.tui.screens.realtime import pad_window
    from axtui.tui.widgets.tiles import spark_rows

    values = pad_window([1.0, 2.0], 8)
    assert values == [None] * 6 + [1.0, 2.0]
    bottom = [c for c, _ in spark_rows(values, width=4, height=1)[0]]
    assert bottom[:3] == [" ", " ", " "] and bottom[3] != " "


async def test_w_changes_what_the_sparklines_cover(seeded: Seeded) -> None:
    from axtui.tui.screens.realtime import RealtimeScreen
    from axtui.tui.widgets.tiles import WindowSpark

    from .helpers import refetch

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "1", RealtimeScreen)
        spark = screen.query_one("#t-rps").query_one(WindowSpark)
        five = list(spark.values)
        await pilot.press("w")
        await refetch(pilot)
        fifteen = list(spark.values)
        assert 290 <= len(five) <= 300 and 890 <= len(fifteen) <= 900
        rows5 = spark_text(spark, five)
        rows15 = spark_text(spark, fifteen)
        assert rows5 != rows15


def spark_text(spark: Any, values: list[float | None]) -> list[str]:
    from axtui.tui.widgets.tiles import spark_rows

    return ["".join(c for c, _ in row) for row in spark_rows(values, spark.size.width, 2)]


# -- the call log --------------------------------------------------------------------------


async def test_a_filtered_call_log_keeps_following_new_calls(seeded: Seeded) -> None:
    from axtui.metrics.snapshot import RecentCall
    from axtui.tui.screens.realtime import RealtimeScreen
    from axtui.tui.widgets.calllog import CallLog

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "1", RealtimeScreen)
        log = screen.query_one(CallLog)
        assert log.shown > log.size.height  # enough calls to scroll
        await pilot.press("slash", *"user=alice", "enter")
        await pilot.pause()
        assert log.filter and log.following
        now = seeded.clock.now()
        fresh = [RecentCall(ts=now + i, user="alice", requested_model="gpt-4o", status="ok",
                            request_id=f"new-{i}") for i in range(3)]
        log.add(fresh)
        await pilot.pause()
        assert log.following
        assert log.view[-1].request_id == "new-2"
        assert log.scroll_offset.y == log.max_scroll_y


# -- alerts --------------------------------------------------------------------------------


async def test_a_silenced_rule_does_not_toast(seeded: Seeded) -> None:
    from axtui.metrics.alerts.model import AlertEvent
    from axtui.metrics.alerts.storage import silence_rule
    from axtui.tui.messages import AlertEventArrived

    def event(rule_id: int, name: str) -> AlertEvent:
        return AlertEvent(id=900 + rule_id, ts=seeded.clock.now(), rule_id=rule_id, rule_name=name, rule="rps > 1",
                          severity="warning", kind="firing", value=2.0, threshold="1", labels={},
                          message=f"firing: {name}")

    app = make_app(seeded)
    toasts: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        real_notify = app.notify
        app.notify = lambda message, **kw: toasts.append(str(kw.get("title"))) or real_notify(message, **kw)  # type: ignore[method-assign, func-returns-value]
        silence_rule(seeded.store, 2, seeded.clock.now() + 3600)
        app.post_message(AlertEventArrived(event(2, "quiet one")))
        app.post_message(AlertEventArrived(event(3, "loud one")))
        await until_toasts(pilot, toasts)
        assert toasts == ["▲ Alert firing: loud one"]
        assert 2 in app.firing and 3 in app.firing  # silenced still counts as firing


async def until_toasts(pilot: Any, toasts: list[str]) -> None:
    from tests.support import until

    await until(pilot=pilot, condition=lambda: bool(toasts))
    await pilot.pause(0.2)


async def test_a_rule_shows_what_it_measures_now(seeded: Seeded) -> None:
    from axtui.metrics.alerts.storage import list_rules

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "4", AlertsScreen)
        view = screen._last
        assert view is not None
        stored = {r.id: r.last_value for r in list_rules(seeded.store)}
        live = {k: v for k, v in view.values.items() if v is not None}
        assert live and any(stored.get(k) != v for k, v in live.items())
        rules = screen.query_one("#rules", DataTable)
        rule_id = next(k for k, v in live.items() if stored.get(k) != v)
        from axtui.tui.screens.alerts import _value

        rule = next(r for r in view.rules if r.id == rule_id)
        assert rules.get_cell(str(rule_id), "value").plain == _value(rule.rule, live[rule_id])


def test_a_budget_event_at_100_percent_is_not_cut() -> None:
    from axtui.tui.screens.alerts import EVENT_COLUMNS

    width = dict((k, w) for k, _, w in EVENT_COLUMNS)["kind"]
    assert len("budget 100%") <= width


# -- budgets -------------------------------------------------------------------------------


def test_a_hard_budget_refusing_calls_is_used_up_with_no_moving_out_time() -> None:
    from axtui.cost.budgets import BudgetInfo, BudgetStatus, Scope
    from axtui.cost.projection import BudgetForecast
    from axtui.tui.screens.budgets import budget_cells, used_up
    from axtui.tui.widgets.palette import Palette

    palette = Palette(ok="green", warn="yellow", bad="red", muted="grey50", accent="cyan", primary="blue")
    now = 1_750_000_000.0
    info = BudgetInfo(id=3, scope=Scope("user", "carol"), period="day", limit_nanos=400_000_000, hard=True,
                      thresholds=None, webhook=None, created_at=now, updated_at=now)
    # Refusing: the last call's estimate did not fit, so spend stops 0.5 % short of the limit.
    status = BudgetStatus(info, int(now) - 3600, int(now) + 3600, 398_000_000, 0,
                          BudgetForecast(rate_nanos_per_hour=1_000_000, projected_nanos=399_000_000,
                                         runs_out_at=now + 7200, exhausted=False))
    assert used_up(status)
    assert budget_cells(status, now, palette)[7].plain == "used up"
    soft = dataclasses.replace(status, budget=dataclasses.replace(info, hard=False))
    assert not used_up(soft)  # a soft budget lets calls through: it is used up at 100 %


async def test_hard_soft_is_offered_only_on_the_budgets_table(seeded: Seeded) -> None:
    from axtui.tui.screens.budgets import BudgetsScreen

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "3", BudgetsScreen)
        assert "h" in _footer_words(app) and "r" not in _footer_words(app)
        screen.query_one("#limits", DataTable).focus()
        await pilot.pause()
        assert "h" not in _footer_words(app) and _footer_words(app)["r"] == "Reset limit"


# -- x exports the view --------------------------------------------------------------------


async def _export_view(pilot: Any, target: Any) -> Any:
    from textual.widgets import Input

    from axtui.tui.screens.export import ExportScreen
    from tests.support import until

    app = pilot.app
    await pilot.press("x")
    await pilot.pause()
    dialog = app.screen
    assert isinstance(dialog, ExportScreen) and dialog.what == "view"
    path = dialog.query_one("#x-path", Input)
    default = path.value
    path.value = str(target)
    await pilot.press("ctrl+s")
    await until(pilot=pilot, condition=lambda: target.exists() and not isinstance(app.screen, ExportScreen))
    return default


async def test_x_on_a_filtered_log_exports_the_calls_it_shows(seeded: Seeded, tmp_path: Any) -> None:
    import csv

    from axtui.tui.screens.realtime import RealtimeScreen
    from axtui.tui.widgets.calllog import CallLog

    app = make_app(seeded)
    target = tmp_path / "alice.csv"
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "1", RealtimeScreen)
        await pilot.press("slash", *"user=alice", "enter")
        await pilot.pause()
        log = screen.query_one(CallLog)
        shown = log.shown
        assert 0 < shown < len(log.calls)
        default = await _export_view(pilot, target)
    assert "ax-calls-user=alice-2025-06-15-" in default and default.endswith(".csv")
    with target.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == shown and {r["user"] for r in rows} == {"alice"}


async def test_x_on_costs_exports_the_grouping_and_range_on_screen(seeded: Seeded, tmp_path: Any) -> None:
    import json

    from axtui.tui.screens.costs import CostsScreen

    from .helpers import refetch

    app = make_app(seeded)
    target = tmp_path / "costs.json"
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "2", CostsScreen)
        screen.action_set_group("user")
        screen.action_set_range("1h")
        await refetch(pilot)
        table = screen.query_one("#breakdown", DataTable)
        shown = [table.get_row_at(i)[0].plain for i in range(table.row_count)]
        default = await _export_view(pilot, target)
    assert "ax-costs-by-user-1h-" in default
    rows = json.loads(target.read_text())
    assert [r["user"] for r in rows] == shown
    assert set(rows[0]) >= {"user", "cost_usd", "calls"}


async def test_x_exports_the_log_as_it_is_when_confirmed_and_says_so_meanwhile(seeded: Seeded, tmp_path: Any) -> None:
    import csv

    from textual.widgets import Input

    from axtui.tui import fmt
    from axtui.tui.screens.export import ExportScreen
    from axtui.tui.screens.realtime import RealtimeScreen
    from axtui.tui.widgets.calllog import CallLog
    from tests.support import until

    from .helpers import refetch

    app = make_app(seeded)
    target = tmp_path / "alice.csv"
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "1", RealtimeScreen)
        await pilot.press("slash", *"user=alice", "enter")
        await pilot.pause()
        log = screen.query_one(CallLog)
        at_open = log.shown
        await pilot.press("x")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ExportScreen) and dialog.what == "view"
        says = dialog.query_one("#x-says", Static)
        assert f"the {fmt.count(at_open)} calls the log shows" in str(says.render())
        # Traffic while the dialog is open: the log behind it draws the new calls.
        for record in seeded.add_calls(60, seed=7):
            seeded.metrics.observe(record)
        await refetch(pilot, screen)
        at_confirm = log.shown
        assert at_confirm > at_open
        await until(lambda: f"the {fmt.count(at_confirm)} calls the log shows" in str(says.render()), pilot=pilot)
        assert "taken from the screen when you export" in str(says.render())
        dialog.query_one("#x-path", Input).value = str(target)
        await pilot.press("ctrl+s")
        await until(lambda: target.exists() and not isinstance(app.screen, ExportScreen), pilot=pilot)
    with target.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == at_confirm and {r["user"] for r in rows} == {"alice"}


async def test_x_on_costs_exports_the_spend_on_screen_when_confirmed(seeded: Seeded, tmp_path: Any) -> None:
    import json

    from textual.widgets import Input

    from axtui.tui.screens.costs import CostsScreen
    from axtui.tui.screens.export import ExportScreen
    from tests.support import until

    from .helpers import refetch

    def calls_on_screen(screen: CostsScreen) -> dict[str, int]:
        table = screen.query_one("#breakdown", DataTable)
        return {str(table.get_row_at(i)[0].plain): int(str(table.get_row_at(i)[3].plain).replace(",", ""))
                for i in range(table.row_count)}

    app = make_app(seeded)
    target = tmp_path / "costs.json"
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "2", CostsScreen)
        screen.action_set_group("user")
        await refetch(pilot)
        at_open = calls_on_screen(screen)
        await pilot.press("x")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ExportScreen) and dialog.what == "view"
        seeded.add_calls(50, seed=8)
        await refetch(pilot, screen)
        at_confirm = calls_on_screen(screen)
        assert sum(at_confirm.values()) == sum(at_open.values()) + 50
        dialog.query_one("#x-path", Input).value = str(target)
        await pilot.press("ctrl+s")
        await until(lambda: target.exists() and not isinstance(app.screen, ExportScreen), pilot=pilot)
    assert {r["user"]: r["calls"] for r in json.loads(target.read_text())} == at_confirm


async def test_the_export_dialog_says_what_a_store_export_writes(seeded: Seeded) -> None:
    from textual.widgets import Select

    from axtui.tui.screens.budgets import BudgetsScreen
    from axtui.tui.screens.export import ExportScreen

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await _go(pilot, "3", BudgetsScreen)  # no view of its own: the store's budgets are offered
        await pilot.press("x")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ExportScreen) and dialog.what == "budgets"
        says = dialog.query_one("#x-says", Static)
        assert "every budget with its spend this period" in str(says.render())
        dialog.query_one("#x-what", Select).value = "calls"
        dialog.query_one("#x-range", Select).value = 2
        await pilot.pause()
        assert "every call of the last 7 days" in str(says.render())
        assert "read from the store when you export" in str(says.render())


# -- explain -------------------------------------------------------------------------------


def test_explain_says_a_rule_is_shadowed_by_an_ab_test_and_by_which() -> None:
    from types import SimpleNamespace

    from axtui.config import RoutingRule
    from axtui.routing.rules import RuleCheck
    from axtui.tui.screens.routing import explanation_text

    rules = [RoutingRule(name="long-prompts-go-cheap", min_prompt_tokens=2000, strategy="cost"),
             RoutingRule(name="user-1-stays-in-us", user="user-1", model="smart", strategy="latency")]
    e = SimpleNamespace(
        model="smart", target="gpt-4o", caller=SimpleNamespace(user="user-1"),
        ab=SimpleNamespace(test="smart-4o-vs-sonnet", variant="gpt-4o", percent=50.0),
        chosen=None, error=None, strategy="latency", rule=None, required_region=None, preferred_region=None,
        requirements=SimpleNamespace(describe=lambda: "chat"), candidates=[],
        rule_checks=[RuleCheck("long-prompts-go-cheap", False, "~500 prompt tokens < 2,000"),
                     RuleCheck("user-1-stays-in-us", False, "model 'gpt-4o' does not match 'smart'")],
    )
    text = explanation_text(e, rules)
    assert "rule user-1-stays-in-us names smart, but A/B test smart-4o-vs-sonnet sends this call to gpt-4o" in text
    assert "shadowed" in text and "long-prompts-go-cheap names" not in text
    e.caller = SimpleNamespace(user="user-2")  # the rule would not match this user anyway
    assert "shadowed" not in explanation_text(e, rules)
