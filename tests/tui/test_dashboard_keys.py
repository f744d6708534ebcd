"""The dashboard as a k9s or btop user drives it: vim keys, the palette, esc, sorting both ways (issue 22)."""

from __future__ import annotations

from typing import Any

from textual.command import CommandPalette
from textual.widgets import DataTable, Input

from axtui.tui.app import screen_commands
from axtui.tui.screens.alerts import AlertsScreen
from axtui.tui.screens.costs import CostsScreen
from axtui.tui.screens.help import HelpScreen
from axtui.tui.screens.realtime import RealtimeScreen
from axtui.tui.screens.routing import RoutingScreen
from axtui.tui.widgets.calllog import CallLog

from .helpers import make_app, refetch, settle
from .seed import Seeded


async def _go(pilot: Any, key: str, kind: type) -> Any:
    await settle(pilot)
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(pilot.app.screen, kind)
    return pilot.app.screen


async def test_j_k_g_and_G_move_the_cursor_of_a_table(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "1", RealtimeScreen)
        table = screen.query_one("#deployments", DataTable)
        table.focus()
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        await pilot.press("G")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("g")
        assert table.cursor_row == 0


async def test_f1_opens_help_f10_quits_and_colon_opens_the_palette(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("colon")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("f10")
        await pilot.pause()
        assert not app.is_running


async def test_the_palette_lists_each_screens_actions(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        routing = await _go(pilot, "5", RoutingScreen)
        titles = [c.title for c in screen_commands(routing)]
        assert "Routing: Explain" in titles and "Routing: Save" not in titles  # nothing staged to save or undo
        routing.dirty = True
        assert {"Routing: Undo", "Routing: Save"} <= {c.title for c in screen_commands(routing)}
        routing.dirty = False
        alerts = await _go(pilot, "4", AlertsScreen)
        assert {"Alerts: Add", "Alerts: Silence", "Alerts: Ack"} <= {c.title for c in screen_commands(alerts)}
        realtime = await _go(pilot, "1", RealtimeScreen)
        assert {"Realtime: Filter", "Realtime: Sort", "Realtime: Reverse sort"} <= {
            c.title for c in screen_commands(realtime)}
        (filter_command,) = [c for c in screen_commands(realtime) if c.title == "Realtime: Filter"]
        await filter_command.callback()
        await pilot.pause()
        assert isinstance(app.focused, Input) and app.focused.id == "filter"


async def test_esc_leaves_a_text_box(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "5", RoutingScreen)
        await pilot.press("e")
        assert isinstance(app.focused, Input)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.focused, DataTable)
        await pilot.press("5")  # a key that means something again
        assert app.screen is screen


async def test_deployments_and_costs_sort_both_ways(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "1", RealtimeScreen)
        table = screen.query_one("#deployments", DataTable)
        names = [table.get_row_at(i)[0].plain for i in range(table.row_count)]
        assert names == sorted(names)
        await pilot.press("S")
        assert [table.get_row_at(i)[0].plain for i in range(table.row_count)] == sorted(names, reverse=True)
        costs = await _go(pilot, "2", CostsScreen)
        breakdown = costs.query_one("#breakdown", DataTable)

        def cost_cells() -> list[str]:
            return [breakdown.get_row_at(i)[0].plain for i in range(breakdown.row_count)]

        most_first = cost_cells()
        await pilot.press("O")
        least_first = cost_cells()
        assert least_first[-1] == most_first[0] and sorted(least_first) == sorted(most_first)
        assert least_first[0] in most_first[-2:]  # ties keep their order, so the cheapest two may swap


async def test_the_call_log_orders_by_latency_both_ways(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "1", RealtimeScreen)
        log = screen.query_one(CallLog)
        await pilot.press("o")
        assert log.order == "latency"

        def timed() -> list[float]:
            """The latencies on the log's lines, top to bottom; refused calls (none shown) come after them all."""
            shown = [c.latency_ms for c in log.view if c.status in ("ok", "error")]
            assert [c.latency_ms for c in log.view][: len(shown)] == shown
            return shown

        latencies = timed()
        assert latencies == sorted(latencies) and len(set(latencies)) > 1
        await pilot.press("O")
        assert timed() == sorted(latencies, reverse=True)
        assert "by latency ↓" in str(screen.query_one("#log-box").border_title)
        await refetch(pilot)
        assert timed() == sorted(timed(), reverse=True)


async def test_a_new_log_order_shows_its_first_rows(seeded: Seeded) -> None:
    from axtui.tui.widgets.calllog import format_call
    from axtui.tui.widgets.palette import Palette

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "1", RealtimeScreen)
        log = screen.query_one(CallLog)
        assert log.max_scroll_y > 0 and log.scroll_offset.y == log.max_scroll_y  # time order: the newest, at the bottom

        def shows_first_row() -> bool:
            top = "".join(segment.text for segment in log.render_line(0)).rstrip()
            return top == format_call(log.view[0], Palette.of(app), log.size.width).plain.rstrip()

        await pilot.press("o", "O")
        await pilot.pause()
        assert "by latency ↓" in str(screen.query_one("#log-box").border_title)
        assert log.scroll_offset.y == 0 and shows_first_row()
        assert log.view[0].latency_ms == max(c.latency_ms for c in log.view)
        await refetch(pilot)
        assert log.scroll_offset.y == 0  # new calls do not pull it back to the bottom
        await pilot.press("O")
        await pilot.pause()
        assert log.scroll_offset.y == 0 and shows_first_row()
        await pilot.press("o", "o", "o")  # round to time order: the live log, following the newest at the bottom
        await pilot.pause()
        assert log.order == "time" and not log.descending
        assert log.scroll_offset.y == log.max_scroll_y
        await pilot.press("O")  # newest first: at the top
        await pilot.pause()
        assert log.scroll_offset.y == 0 and shows_first_row()


# -- what people type, and where the cursor lands --------------------------------------------


def test_thresholds_take_the_units_people_type() -> None:
    from axtui.metrics.alerts.grammar import parse_rule

    assert str(parse_rule("rps > 60/min")) == "rps > 1"
    assert str(parse_rule("p95_latency_ms > 2s for 5m")) == "p95_latency_ms > 2000 for 5m"
    assert str(parse_rule("p95_latency_ms > 250ms")) == "p95_latency_ms > 250"
    assert str(parse_rule("tokens_per_min > 100/s")) == "tokens_per_min > 6000"


async def test_a_rule_typed_with_units_is_added_and_the_cursor_lands_on_it(seeded: Seeded) -> None:
    from axtui.metrics.alerts.storage import list_rules
    from tests.support import until

    from .helpers import open_form

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "4", AlertsScreen)
        form = await open_form(pilot, "a")
        form.query_one("#f-rule", Input).value = "p95_latency_ms > 2s for 1m where provider=groq"
        await pilot.press("ctrl+s")
        await until(pilot=pilot, condition=lambda: len(list_rules(seeded.store)) == 4)
        added = list_rules(seeded.store)[-1]
        assert added.rule == "p95_latency_ms > 2000 for 1m where provider=groq"
        table = screen.query_one("#rules", DataTable)
        await until(pilot=pilot, condition=lambda: table.row_count == 4
                           and table.coordinate_to_cell_key(table.cursor_coordinate)[0].value == str(added.id))


async def test_the_cursor_lands_on_a_budget_and_a_limit_just_added(seeded: Seeded) -> None:
    from axtui.cost.budgets import list_budgets
    from axtui.tui.screens.budgets import BudgetsScreen
    from tests.support import until

    from .helpers import open_form

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "3", BudgetsScreen)
        form = await open_form(pilot, "a")
        form.query_one("#f-scope", Input).value = "user:zed"
        form.query_one("#f-amount", Input).value = "7"
        await pilot.press("ctrl+s")
        await until(pilot=pilot, condition=lambda: any(str(b.scope) == "user:zed" for b in list_budgets(seeded.store)))
        new = next(b for b in list_budgets(seeded.store) if str(b.scope) == "user:zed")
        budgets = screen.query_one("#budgets", DataTable)
        await until(pilot=pilot, condition=lambda: budgets.coordinate_to_cell_key(budgets.cursor_coordinate)[0].value
                           == str(new.id))
        limits = screen.query_one("#limits", DataTable)
        limits.focus()
        form = await open_form(pilot, "a")
        form.query_one("#f-subject", Input).value = "user:zed"
        form.query_one("#f-requests", Input).value = "30/minute"
        await pilot.press("ctrl+s")
        await until(pilot=pilot, condition=lambda: app.focused is limits and str(
            limits.coordinate_to_cell_key(limits.cursor_coordinate)[0].value).startswith("user:zed|"))


# -- money and numbers ---------------------------------------------------------------------


def test_a_money_column_has_one_format() -> None:
    from decimal import Decimal

    from axtui.tui import fmt

    column = [Decimal("1234.5"), Decimal("0.0012"), Decimal("12.35")]
    digits = fmt.money_digits(column)
    assert [fmt.usd_fixed(v, digits) for v in column] == ["$1,234.5000", "$0.0012", "$12.3500"]
    assert fmt.money_digits([Decimal("25"), Decimal("3.5")]) == 2
    assert fmt.money_digits([Decimal("0.00000001")]) == fmt.MAX_MONEY_DIGITS
    assert fmt.with_separators("60000/minute") == "60,000/minute"
    assert fmt.usd(Decimal("123.45")) == "$123.45" and fmt.usd(Decimal("1234.5")) == "$1,234"


async def test_the_cost_breakdown_prints_every_row_alike(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "2", CostsScreen)
        table = screen.query_one("#breakdown", DataTable)
        costs = [table.get_cell_at((i, 1)).plain for i in range(table.row_count)]
        assert len({len(c.split(".")[1]) for c in costs if c != "$0"}) == 1, costs
        from axtui.tui.screens.budgets import BudgetsScreen

        limits = await _go(pilot, "3", BudgetsScreen)
        table = limits.query_one("#limits", DataTable)
        assert any(table.get_cell_at((i, 2)).plain == "50,000/minute" for i in range(table.row_count))


# -- enter opens details -------------------------------------------------------------------


def _detail_text(app: Any) -> str:
    from textual.widgets import Static

    from axtui.tui.screens.detail import DetailScreen

    assert isinstance(app.screen, DetailScreen), type(app.screen).__name__
    return str(app.screen.query_one("#detail-body", Static).render())


async def test_enter_on_a_call_shows_its_route_attempts_tokens_and_cost(seeded: Seeded) -> None:
    from tests.support import until

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "1", RealtimeScreen)
        log = screen.query_one(CallLog)
        log.focus()
        await pilot.press("k", "k")
        assert log.cursor == len(log.view) - 2 and not log.following
        picked = log.view[-2]
        await pilot.press("enter")
        await until(pilot=pilot, condition=lambda: type(app.screen).__name__ == "DetailScreen")
        text = _detail_text(app)
        assert picked.request_id in text and picked.user in text
        assert "attempts" in text and "strategy" in text and "Tokens" in text  # read from the store
        await pilot.press("escape")
        assert app.screen is screen


async def test_enter_on_a_deployment_shows_its_calls(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "1", RealtimeScreen)
        table = screen.query_one("#deployments", DataTable)
        table.focus()
        busiest = max(screen._stats.values(), key=lambda s: s.requests).key
        table.move_cursor(row=table.get_row_index(busiest))
        await pilot.press("enter")
        await pilot.pause()
        text = _detail_text(app)
        assert f"Deployment {busiest}" in text and "Its calls in the log" in text and "Circuit" in text


async def test_enter_on_an_alert_event_shows_it_whole(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _go(pilot, "4", AlertsScreen)
        events = screen.query_one("#events", DataTable)
        events.focus()
        await pilot.press("g", "enter")
        await pilot.pause()
        text = _detail_text(app)
        assert ("Alert event" in text and "condition" in text) or "Budget threshold" in text
