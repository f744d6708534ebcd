"""Tables that fit their width, the what-if panel that follows the range, and views that stay live under dialogs."""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.widgets import Select, Static

from axtui.tui.screens.base import DashboardScreen
from axtui.tui.screens.costs import CostsScreen
from axtui.tui.screens.export import ExportScreen
from axtui.tui.screens.realtime import RealtimeScreen
from axtui.tui.widgets.calllog import format_call, log_layout
from axtui.tui.widgets.palette import Palette
from axtui.tui.widgets.tables import FitTable, ellipsized, fit_columns
from axtui.tui.widgets.whatif import WhatIfPanel
from tests.support import until

from .helpers import make_app, open_screen, settle
from .keys_seed import seed_keys
from .seed import Seeded

# -- which columns, how wide --------------------------------------------------------------------


def test_a_droppable_column_that_fits_is_kept() -> None:
    columns = [("name", 20, 30), ("a", 5, 5), ("b", 5, 5)]
    # 20+5+5 and a padding of 1 each side: 36 wide at least.
    assert fit_columns(columns, 36, drop=("b", "a")) == {"name": 20, "a": 5, "b": 5}
    assert fit_columns(columns, 35, drop=("b", "a")) == {"name": 26, "a": 5}
    assert fit_columns(columns, 60, drop=("b", "a")) == {"name": 30, "a": 5, "b": 5}


def test_a_long_text_column_gives_up_room_before_a_column_is_dropped() -> None:
    columns = [("n", 3, 3), ("fired", 10, 10), ("rule", 20, 56)]
    assert fit_columns(columns, 45, drop=("fired",)) == {"n": 3, "fired": 10, "rule": 26}
    # Nothing left to drop: the stretchy column is cut below its least rather than running off the edge.
    assert fit_columns(columns, 30, drop=()) == {"n": 3, "fired": 10, "rule": 11}


def test_cut_text_ends_in_an_ellipsis() -> None:
    cell = ellipsized("smart-4o-vs-sonnet (smart)")
    assert isinstance(cell, Text) and cell.overflow == "ellipsis"
    cell.truncate(20, overflow=cell.overflow)
    assert cell.plain == "smart-4o-vs-sonnet …"
    styled = Text("12", justify="right")
    assert ellipsized(styled).overflow == "ellipsis" and styled.overflow is None  # the caller's cell is left alone


def _tables(screen: DashboardScreen) -> list[FitTable]:
    return list(screen.query(FitTable))


@pytest.mark.parametrize("width", [80, 100, 110])
@pytest.mark.parametrize("key", ["1", "2", "3", "4", "5", "6"])
async def test_every_table_fits_its_width_and_cuts_with_an_ellipsis(
        seeded: Seeded, monkeypatch: pytest.MonkeyPatch, key: str, width: int) -> None:
    seed_keys(seeded, monkeypatch)
    app = make_app(seeded)
    async with app.run_test(size=(width, 40)) as pilot:
        await settle(pilot)
        await pilot.press(key)
        await settle(pilot)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        for table in _tables(screen):
            room = table.size.width - table.styles.scrollbar_size_vertical
            used = sum(c.get_render_width(table) for c in table.columns.values())
            assert used <= room, f"{table.id} is {used} wide in {room} at {width} columns: it runs off the edge"
            for row in range(table.row_count):
                for cell in table.get_row_at(row):
                    if isinstance(cell, (str, Text)):
                        assert isinstance(cell, Text) and cell.overflow == "ellipsis", (table.id, cell)


@pytest.mark.parametrize(("key", "table_id", "wanted"), [
    ("1", "deployments", {"p50"}),
    ("2", "breakdown", {"unknown", "hits", "tokens"}),
    ("3", "budgets", {"id", "spent"}),
    ("3", "limits", {"source"}),
    ("5", "health", {"p50", "busy", "region"}),
])
async def test_columns_that_fit_at_100_columns_are_shown(seeded: Seeded, key: str, table_id: str,
                                                         wanted: set[str]) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press(key)
        await settle(pilot)
        await pilot.pause()
        table = app.screen.query_one(f"#{table_id}", FitTable)
        assert wanted <= set(table.shown())
        assert table.row_count > 0  # the rows were written again for the columns brought back


async def test_a_narrowed_terminal_drops_only_what_no_longer_fits(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#deployments", FitTable)
        assert "p50" in table.shown()
        await pilot.resize_terminal(80, 24)
        await until(lambda: "p50" not in table.shown(), pilot=pilot)
        await settle(pilot, fetches=app.screen.fetches + 1)  # type: ignore[attr-defined]
        assert table.row_count > 0 and "cost" in table.shown()


def test_the_call_log_shows_token_counts_once_they_fit() -> None:
    assert log_layout(80) == (28, False)
    route, tokens = log_layout(100)
    assert tokens and route >= 27
    assert log_layout(200) == (58, True)


def test_cut_log_fields_end_in_an_ellipsis() -> None:
    from decimal import Decimal

    from axtui.metrics.snapshot import RecentCall

    palette = Palette(ok="green", warn="yellow", bad="red", muted="grey50", accent="cyan", primary="blue")
    call = RecentCall(ts=0.0, user="a-very-long-user-name", requested_model="smart", status="ok",
                      deployment="openai/gpt-4o", latency_ms=120.0, input_tokens=10, output_tokens=20,
                      cost_usd=Decimal("0.0001"), cache="semantic", request_id="r1")
    line = format_call(call, palette, 80).plain
    assert "a-very-lo…" in line  # not "a-very-lon", which reads as another user
    assert line.endswith("sema…") and len(line) == 80  # the cache column cut at the edge says so
    assert "10→20" in format_call(call, palette, 100).plain


# -- the what-if panel ------------------------------------------------------------------------


async def test_w_opens_the_what_if_panel_with_the_focus_in_it(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 50)) as pilot:
        screen = await open_screen(pilot, "2", CostsScreen)
        panel = screen.query_one(WhatIfPanel)
        await pilot.press("w")
        assert panel.is_open
        assert screen.focused is panel.query_one("#whatif-strategy", Select)
        screen.query_one("#breakdown", FitTable).focus()
        await pilot.press("w")  # open, the focus elsewhere: w brings the focus back to the panel
        assert panel.is_open and screen.focused is panel.query_one("#whatif-strategy", Select)
        await pilot.press("w")  # in the panel: w closes it
        assert not panel.is_open and screen.focused is screen.query_one("#breakdown", FitTable)


async def test_the_what_if_panel_follows_the_range(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 50)) as pilot:
        screen = await open_screen(pilot, "2", CostsScreen)
        panel = screen.query_one(WhatIfPanel)
        asked: list[str] = []
        fetch = panel.fetch
        panel.fetch = lambda range_name, strategy, prices: (asked.append(range_name), fetch(range_name, strategy, prices))[1]
        await pilot.press("w")
        await until(lambda: panel.result_range == "24h", pilot=pilot)
        assert "last 24h" in str(panel.query_one("#whatif-result", Static).render())
        await pilot.press("r")  # 24h → 7d, the panel open: it replays the new range
        assert screen.range == "7d"
        await until(lambda: panel.result_range == "7d", pilot=pilot)
        assert asked[-1] == "7d" and not panel.stale
        assert "last 7d" in str(panel.query_one("#whatif-result", Static).render())
        assert "last 7d" in str(panel.border_title)


# -- dialogs leave the view behind them live ---------------------------------------------------


async def test_the_view_behind_a_dialog_keeps_refreshing(seeded: Seeded) -> None:
    app = make_app(seeded, refresh_hz=10.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RealtimeScreen)
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        before = screen.fetches
        await until(lambda: screen.fetches >= before + 2, pilot=pilot)
        assert app.live_screen is screen


async def test_a_screen_hidden_by_the_too_small_notice_stops_fetching(seeded: Seeded) -> None:
    app = make_app(seeded, refresh_hz=10.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RealtimeScreen)
        await pilot.resize_terminal(60, 20)
        await until(lambda: not screen.in_sight, pilot=pilot)
        await pilot.pause(0.5)
        before = screen.fetches
        await pilot.pause(0.5)
        assert screen.fetches <= before + 1  # at most the fetch already under way
