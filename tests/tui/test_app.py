"""The dashboard as a user drives it: screens, help, pause, refresh rate, size, themes, alerts."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import DataTable, Static

from axtui.cost.alerts import BudgetAlert
from axtui.metrics.alerts.model import AlertEvent
from axtui.tui.app import AxApp
from axtui.tui.screens import SCREENS as NAV_SCREENS
from axtui.tui.screens.alerts import AlertsScreen
from axtui.tui.screens.budgets import BudgetsScreen
from axtui.tui.screens.costs import CostsScreen
from axtui.tui.screens.help import HelpScreen
from axtui.tui.screens.realtime import RealtimeScreen
from axtui.tui.screens.routing import RoutingScreen
from axtui.tui.screens.too_small import TooSmallScreen
from axtui.tui.themes import load_themes
from axtui.tui.widgets.calllog import CallLog
from axtui.tui.widgets.navbar import NavBar

from .helpers import make_app, settle, until
from .seed import Seeded

SCREENS = {"1": RealtimeScreen, "2": CostsScreen, "3": BudgetsScreen, "4": AlertsScreen, "5": RoutingScreen}


async def test_number_keys_switch_screens_and_each_shows_data(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for key, kind in [*SCREENS.items(), ("1", RealtimeScreen)]:
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, kind)
            assert app.screen.fetches >= 1
            assert app.problem is None
        deployments = app.screen.query_one("#deployments", DataTable)
        assert deployments.row_count == 11  # every deployment of the demo fleet


async def test_clicking_a_tab_switches_screen(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        tab = next(t for t in app.screen.query(".tab") if "Alerts" in str(t.render()))
        await pilot.click(tab)
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)


@pytest.mark.parametrize("key", ["ctrl+p", "colon"])
async def test_command_palette_goes_to_a_screen(seeded: Seeded, key: str) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press(key)
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"screen costs")  # no ':' in it: that key would open the palette by itself
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, CostsScreen)


async def test_ctrl_p_opens_the_palette_from_a_text_box(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"a:b")  # the call log's filter box takes ':' as text
        await pilot.pause()
        assert not isinstance(app.screen, CommandPalette)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)


async def test_help_lists_the_screen_keys_and_closes(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one(Static).render())
        assert "Hard/soft" in text and "Delete" in text and "Export" in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, BudgetsScreen)


async def test_help_names_every_screen_and_each_key_once(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        lines = str(app.screen.query_one(Static).render()).splitlines()
    everywhere = lines[lines.index("Everywhere"):]
    keys = [line.split()[0] for line in everywhere[1:] if line.startswith("  ")]
    assert len(keys) == len(set(keys)), everywhere
    titles = [title for mode, _, title in NAV_SCREENS if mode in AxApp.MODES]
    assert len(titles) == len(AxApp.MODES) == 6
    screens = next(line for line in everywhere if line.split()[:3] == ["1", "…", "6"])
    assert screens.endswith(" " + ", ".join(titles)), screens
    assert any(line.split()[:4] == ["p", "Pause", "/", "Resume"] for line in everywhere), everywhere
    assert any(line.split()[:3] == ["ctrl+p", "/", ":"] for line in everywhere), everywhere


async def test_pause_freezes_the_screen_and_resume_moves_it_again(seeded: Seeded) -> None:
    app = make_app(seeded, refresh_hz=10)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, fetches=2)
        await pilot.press("p")
        assert app.paused
        await pilot.pause(0.3)
        frozen = app.screen.fetches
        await pilot.pause(0.5)
        assert app.screen.fetches == frozen
        assert "paused" in str(app.screen.query_one(NavBar).status)
        await pilot.press("p")
        await until(lambda: app.screen.fetches > frozen, pilot=pilot)


async def test_plus_and_minus_change_the_refresh_rate(seeded: Seeded) -> None:
    app = make_app(seeded, refresh_hz=2)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("plus")
        assert app.refresh_hz == 4
        await pilot.press("minus", "minus")
        assert app.refresh_hz == 1
        assert "1 Hz" in app.screen.query_one(NavBar).status


async def test_a_terminal_too_small_gets_a_clear_message(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen)
        text = str(app.screen.query_one("#too-small-text", Static).render())
        assert "80×24" in text and "70×20" in text
        await pilot.press("2")  # screens do not open under the notice
        assert isinstance(app.screen, TooSmallScreen)
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert isinstance(app.screen, RealtimeScreen)


async def test_every_screen_lays_out_at_80_by_24(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        for key, kind in SCREENS.items():
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, kind)
            assert app.problem is None


async def test_realtime_filter_shows_only_matching_calls(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        log = app.screen.query_one(CallLog)
        everything = log.shown
        errors = sum(1 for c in log.calls if c.status == "error")
        assert 0 < errors < everything
        await pilot.press("slash", *"status=error")
        await pilot.pause()
        assert log.shown == errors
        await pilot.press("enter")
        assert "filter: status=error" in app.screen.query_one("#log-box").border_title
        await pilot.press("escape")
        await pilot.pause()
        assert log.shown == min(everything, len(log.calls))


async def test_a_filter_that_does_not_parse_says_why(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"colour=red")
        await pilot.pause()
        box = app.screen.query_one("#filter")
        assert box.has_class("-invalid")
        assert "unknown field 'colour'" in app.screen.query_one("#log-box").border_title


async def test_window_and_sort_keys(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RealtimeScreen)
        await pilot.press("w")
        assert screen.window_s == 900
        assert "sparklines 15 min" in screen.query_one("#deployments-box").border_title
        await pilot.press("s")  # by req/s, busiest first
        table = screen.query_one("#deployments", DataTable)
        first = table.get_row_at(0)[0].plain
        busiest = max(screen._stats.values(), key=lambda s: s.rps).key
        assert first == busiest


async def test_theme_from_the_palette_and_a_broken_theme_file_is_reported(seeded: Seeded, ax_home: Path) -> None:
    user = ax_home / "themes"
    user.mkdir()
    (user / "broken.toml").write_text('name = "broken"\nprimary = "not a colour"\n')
    (user / "mine.toml").write_text('name = "mine"\nprimary = "#ff8800"\n')
    themes = load_themes()
    assert "mine" in themes.themes and "broken" not in themes.themes
    app = make_app(seeded, themes=themes)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        assert app.theme == "dark"
        assert any("not a colour" in n.message for n in app._notifications)
        await pilot.press("ctrl+p")
        await pilot.press(*"theme: high")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.theme == "high-contrast"


async def test_a_firing_alert_is_announced_on_any_screen(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await until(lambda: bool(app.firing), pilot=pilot)  # the seeded firing rule
        event = AlertEvent(id=99, ts=seeded.clock.now(), rule_id=2, rule_name="errors above 5%",
                           rule="error_rate > 0.05 for 5m", severity="critical", kind="firing", value=0.08,
                           threshold="0.05", labels={}, message="error_rate is 8% (> 0.05 for 5m)")
        app.backend._emit_alert(event)
        await pilot.pause()
        assert any("errors above 5%" in n.title for n in app._notifications)
        assert "2 firing" in app.screen.query_one(NavBar).status
        assert isinstance(app.screen, CostsScreen)


async def test_a_budget_alert_is_announced_as_one(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        alert = BudgetAlert(event_id=7, budget_id=3, scope="user:alice", period="day", period_start=0, threshold=80,
                            spent_nanos=8 * 10**9, limit_nanos=10 * 10**9, ts=seeded.clock.now(),
                            message="budget #3 (user:alice) reached 80% of $10.00 this day")
        app.backend._emit_alert(alert)
        await until(lambda: any(n.title == "Budget #3 at 80%" for n in app._notifications), pilot=pilot)
        assert not any("Alert firing" in n.title for n in app._notifications)


async def test_a_hidden_screen_fetches_nothing(seeded: Seeded) -> None:
    app = make_app(seeded, refresh_hz=10)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, fetches=2)
        realtime = app.screen
        await pilot.press("2")
        await settle(pilot)
        await pilot.pause(0.3)
        hidden = realtime.fetches
        await pilot.pause(0.6)
        assert realtime.fetches == hidden
        await pilot.press("1")
        await until(lambda: realtime.fetches > hidden, pilot=pilot)


async def test_the_local_store_feeds_the_live_numbers(seeded: Seeded) -> None:
    """Without windows of its own, the local backend reads every process's per-second rollups."""
    from axtui.tui.data_local import StoreBackend

    backend = StoreBackend(seeded.settings, seeded.clock, store=seeded.store)
    app = make_app(seeded)
    app.backend = backend
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        totals = app.screen._last.snapshot.totals  # type: ignore[attr-defined]
        assert totals.requests > 0
        assert app.screen.query_one(CallLog).shown > 0
        assert backend.metrics is not None and backend.metrics.source == "store"
