"""The dashboard bugs a power user found (issue 22), each driven the way they were found."""

from __future__ import annotations

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
