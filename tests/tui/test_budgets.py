"""Budgets and rate limits edited from the keyboard: saved at once, refused with a reason, deleted after asking."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, Input, Static

from axtui.cost.budgets import get_budget, list_budgets
from axtui.store.tables_ratelimit import read_limits
from axtui.tui.screens.budgets import BudgetsScreen
from axtui.tui.screens.confirm import ConfirmScreen
from axtui.tui.widgets.cell_editor import CellEditor

from .helpers import make_app, open_form, refetch, settle, until
from .seed import Seeded

DOLLAR = 1_000_000_000


async def _open_budgets(pilot: Any) -> BudgetsScreen:
    await settle(pilot)
    await pilot.press("3")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, BudgetsScreen)
    return screen


def _hint(screen: BudgetsScreen) -> str:
    return str(screen.query_one("#hint", Static).render())


def _amount_cell(screen: BudgetsScreen, budget_id: int) -> str:
    return screen.query_one("#budgets", DataTable).get_cell(str(budget_id), "amount").plain


async def test_enter_edits_the_amount_in_place_and_saves_it(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_budgets(pilot)
        assert _amount_cell(screen, 1) == "$25.00"
        await pilot.press("enter")
        editor = screen.query_one(CellEditor)
        assert editor.value == "25"
        table = screen.query_one("#budgets", DataTable)
        assert editor.region.y == table.region.y + 1  # over the first row, under the header
        await pilot.press(*"30.50", "enter")  # the old amount is selected: typing replaces it
        await until(lambda: get_budget(seeded.store, 1).limit_nanos == 30_500_000_000, pilot=pilot)
        assert not screen.query(CellEditor)
        await refetch(pilot)
        assert _amount_cell(screen, 1) == "$30.50"
        assert "in force from the next call" in _hint(screen)


async def test_an_invalid_amount_is_refused_and_the_old_one_kept(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_budgets(pilot)
        await pilot.press("enter", "ctrl+a", "ctrl+k", *"abc")
        editor = screen.query_one(CellEditor)
        assert editor.has_class("-invalid")
        assert "not an amount of dollars" in _hint(screen)
        await pilot.press("enter")  # refused: stays open, nothing written
        await pilot.pause(0.2)
        assert screen.query(CellEditor)
        await pilot.press("ctrl+a", "ctrl+k", *"-5", "enter")
        await pilot.pause(0.2)
        assert "more than zero" in _hint(screen)
        assert get_budget(seeded.store, 1).limit_nanos == 25 * DOLLAR
        await pilot.press("escape")
        await pilot.pause()
        assert not screen.query(CellEditor)
        assert _amount_cell(screen, 1) == "$25.00"
        assert get_budget(seeded.store, 1).limit_nanos == 25 * DOLLAR


async def test_h_toggles_hard_and_soft(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_budgets(pilot)
        assert not get_budget(seeded.store, 1).hard
        await pilot.press("h")
        await until(lambda: get_budget(seeded.store, 1).hard, pilot=pilot)
        await refetch(pilot)
        assert screen.query_one("#budgets", DataTable).get_cell("1", "mode").plain == "hard"
        await pilot.press("h")
        await until(lambda: not get_budget(seeded.store, 1).hard, pilot=pilot)


async def test_delete_asks_first_and_no_keeps_the_budget(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_budgets(pilot)
        await pilot.press("down", "d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "user:alice" in app.screen.question
        await pilot.press("n")
        await pilot.pause(0.2)
        assert len(list_budgets(seeded.store)) == 3
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("enter")  # the focused button is the safe one
        await pilot.pause(0.2)
        assert len(list_budgets(seeded.store)) == 3
        await pilot.press("d", "y")
        await until(lambda: len(list_budgets(seeded.store)) == 2, pilot=pilot)
        assert {b.id for b in list_budgets(seeded.store)} == {1, 3}
        await refetch(pilot)
        assert screen.query_one("#budgets", DataTable).row_count == 2


async def test_a_adds_a_budget_and_a_bad_scope_keeps_the_form_open(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_budgets(pilot)
        form = await open_form(pilot, "a")
        scope = form.query_one("#f-scope", Input)
        scope.value = "org:red"
        await until(lambda: "unknown scope" in str(form.query_one("#e-scope", Static).render()), pilot=pilot)
        form.query_one("#f-amount", Input).value = "12"
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert app.screen is form
        assert "unknown scope" in str(form.query_one("#form-error", Static).render())
        scope.value = "user:dave"
        await pilot.press("ctrl+s")
        await until(lambda: len(list_budgets(seeded.store)) == 4, pilot=pilot)
        new = next(b for b in list_budgets(seeded.store) if str(b.scope) == "user:dave")
        assert new.limit_nanos == 12 * DOLLAR and new.period == "day" and not new.hard
        assert isinstance(app.screen, BudgetsScreen)


async def test_limits_edit_in_place_and_a_bad_limit_is_refused(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_budgets(pilot)
        limits = screen.query_one("#limits", DataTable)
        limits.focus()
        await pilot.pause()
        key = limits.coordinate_to_cell_key(limits.cursor_coordinate).row_key.value
        assert key == "user:bob|requests"
        await pilot.press("enter", "ctrl+a", "ctrl+k", *"60/minut")
        await pilot.pause()
        assert "60/minut" in _hint(screen) or "minute" in _hint(screen)
        await pilot.press("enter")
        await pilot.pause(0.2)
        bob = next(r for r in read_limits(seeded.store) if r.subject == "bob")
        assert bob.requests == "30/minute"
        await pilot.press("ctrl+a", "ctrl+k", *"90/minute", "enter")
        await until(lambda: next(r for r in read_limits(seeded.store)
                                 if r.subject == "bob").requests == "90/minute", pilot=pilot)


async def test_deleting_a_limit_asks_first(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_budgets(pilot)
        screen.query_one("#limits", DataTable).focus()
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(lambda: all(r.subject != "bob" for r in read_limits(seeded.store)), pilot=pilot)


# -- adding a budget that exists ------------------------------------------------------------


async def _add(pilot: Any, scope: str, amount: str) -> None:
    """``a``, then the scope and the amount typed, Hard left as the form offers it (unticked), ctrl+s."""
    form = await open_form(pilot, "a")
    form.query_one("#f-scope", Input).value = scope
    form.query_one("#f-amount", Input).value = amount
    await pilot.press("ctrl+s")
    await until(lambda: pilot.app.screen is not form, pilot=pilot)


async def test_adding_a_budget_that_exists_asks_showing_old_and_new_and_no_keeps_it(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_budgets(pilot)
        await _add(pilot, "user:alice", "1")  # #2 is user:alice, $0.15 a day, hard
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert "$0.15 → [b]$1.00" in dialog.question
        assert "hard (refuses calls once spent) → [b]soft (alerts only)" in dialog.question
        assert "It becomes soft" in dialog.question
        assert dialog.yes == "Change, make it soft"
        alice = get_budget(seeded.store, 2)
        assert (alice.limit_nanos, alice.hard) == (150_000_000, True)  # nothing written before the answer
        await pilot.press("n")
        await pilot.pause(0.2)
        alice = get_budget(seeded.store, 2)
        assert (alice.limit_nanos, alice.hard) == (150_000_000, True)
        assert "Kept budget #2 user:alice $0.15/day hard" in _hint(screen)
        assert len(list_budgets(seeded.store)) == 3


async def test_changing_a_budget_through_add_happens_only_after_yes(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_budgets(pilot)
        await _add(pilot, "global", "30")  # the form's own scope: #1, $25 a day, soft
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert "$25.00 → [b]$30.00" in dialog.question and "becomes soft" not in dialog.question
        assert get_budget(seeded.store, 1).limit_nanos == 25 * DOLLAR
        await pilot.press("y")
        await until(lambda: get_budget(seeded.store, 1).limit_nanos == 30 * DOLLAR, pilot=pilot)
        await until(lambda: _amount_cell(screen, 1) == "$30.00", pilot=pilot)
        assert "Changed budget #1 global $30.00/day soft" in _hint(screen)
        assert len(list_budgets(seeded.store)) == 3


async def test_adding_exactly_a_budget_that_exists_changes_nothing_and_says_so(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_budgets(pilot)
        await _add(pilot, "global", "25")
        assert isinstance(app.screen, BudgetsScreen)
        assert "already is that; nothing changed" in _hint(screen)


# -- edits while paused -----------------------------------------------------------------------


def _mode_cell(screen: BudgetsScreen, budget_id: int) -> str:
    return screen.query_one("#budgets", DataTable).get_cell(str(budget_id), "mode").plain


async def test_an_edit_while_paused_shows_and_h_says_what_the_store_holds(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_budgets(pilot)
        await pilot.press("p")
        assert app.paused and _mode_cell(screen, 1) == "soft"
        await pilot.press("h")
        await until(lambda: _mode_cell(screen, 1) == "hard", pilot=pilot)
        assert "Budget #1 is now hard" in _hint(screen)
        await pilot.press("h")
        await until(lambda: _mode_cell(screen, 1) == "soft", pilot=pilot)
        assert "Budget #1 is now soft" in _hint(screen)
        assert not get_budget(seeded.store, 1).hard
        await pilot.press("enter", *"30", "enter")
        await until(lambda: _amount_cell(screen, 1) == "$30.00", pilot=pilot)
        assert app.paused


async def test_a_screen_first_opened_while_paused_is_filled_once(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("p", "3")
        screen = app.screen
        assert isinstance(screen, BudgetsScreen)
        await until(lambda: screen.query_one("#budgets", DataTable).row_count == 3, pilot=pilot)
        fills = screen.fetches
        await pilot.pause(1.2)  # more than a refresh interval: still paused, so drawn once only
        assert screen.fetches == fills


# -- money reads the same in messages and in the table ---------------------------------------


async def test_messages_show_amounts_as_the_table_does(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_budgets(pilot)
        await pilot.press("enter", *"0.001", "enter")
        await until(lambda: _amount_cell(screen, 1) == "$0.0010", pilot=pilot)
        assert "Budget #1 is now $0.0010" in _hint(screen)
        await pilot.press("down", "d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert _amount_cell(screen, 2) == "$0.15"
        assert "user:alice · $0.15 per day · hard" in app.screen.question
