"""The Costs screen's what-if panel: the range's calls replayed beside the real spend, following new calls."""

from __future__ import annotations

import re
import threading
from typing import Any

from textual.widgets import Input, Select, Static

from axtui.tui.screens.costs import CostsScreen
from axtui.tui.screens.realtime import RealtimeScreen
from axtui.tui.widgets.whatif import FOLLOW_EVERY_S, WhatIfFetch, WhatIfPanel, describe
from tests.support import until

from .helpers import make_app, open_screen, refetch
from .seed import Seeded


async def _open_panel(pilot: Any) -> WhatIfPanel:
    screen: CostsScreen = await open_screen(pilot, "2", CostsScreen)
    panel = screen.query_one(WhatIfPanel)
    assert not panel.display or not panel.is_open
    await pilot.press("w")
    return panel


class _Ticks:
    """The panel's clock, moved by the test: when the pace between replays allows the next one."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _text(panel: WhatIfPanel) -> str:
    return str(panel.query_one("#whatif-result", Static).render())


def _calls_shown(panel: WhatIfPanel) -> int:
    """The calls the replay on screen covers, as its text says (``moved 3 of 1,234 calls``)."""
    found = re.search(r"moved [\d,]+ of ([\d,]+) calls", _text(panel))
    assert found, _text(panel)
    return int(found.group(1).replace(",", ""))


async def test_the_panel_replays_the_range_under_a_picked_strategy(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 50)) as pilot:
        panel = await _open_panel(pilot)
        assert panel.is_open
        await until(pilot=pilot, condition=lambda: panel.result is not None)
        first = panel.result
        assert first is not None and first["total"]["calls"] > 0
        recorded = first["total"]["recorded_nanos"]
        assert recorded > 0
        panel.query_one("#whatif-strategy", Select).value = "cost"
        await until(pilot=pilot, condition=lambda: panel.result is not first)
        cheap = panel.result
        assert cheap is not None and cheap["policy"] == {"strategy": "cost"}
        assert cheap["total"]["recorded_nanos"] == recorded
        assert cheap["total"]["replayed_nanos"] < recorded
        text = str(panel.query_one("#whatif-result", Static).render())
        assert "recorded" in text and "what if" in text and "saves" in text
        await pilot.press("w")
        assert not panel.is_open


async def test_a_missing_price_file_is_said_in_the_panel(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 50)) as pilot:
        panel = await _open_panel(pilot)
        await until(pilot=pilot, condition=lambda: panel.result is not None)
        box = panel.query_one("#whatif-prices", Input)
        box.value = "/nowhere/prices.json"
        box.focus()
        await pilot.press("enter")
        out = panel.query_one("#whatif-result", Static)
        await until(pilot=pilot, condition=lambda: "no such price file" in str(out.render()))


def test_describe_says_when_a_policy_costs_more() -> None:
    group = {"calls": 3, "moved": 2, "recorded_nanos": 1_000_000_000, "replayed_nanos": 1_500_000_000,
             "recorded_p95_ms": 800.0, "projected_p95_ms": 1_200.0}
    text = describe({"total": group, "by_model": {"smart": group}, "notes": ["a note"]})
    assert "costs $0.5000 more (50%)" in text and "moved 2 of 3" in text and "smart" in text and "a note" in text


async def test_new_calls_are_replayed_and_the_title_says_how_current_the_figures_are(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 50)) as pilot:
        screen = await open_screen(pilot, "2", CostsScreen)
        panel = screen.query_one(WhatIfPanel)
        panel.clock = ticks = _Ticks()
        await pilot.press("w")
        await until(lambda: panel.result is not None, pilot=pilot)
        before = _calls_shown(panel)
        assert str(panel.border_title) == "What if · last 24h · as of 15:06:40"

        seeded.add_calls(30, seed=3)
        await refetch(pilot)  # the screen shows the new calls; the replay just ended: the next one waits
        assert "30 new calls since" in str(panel.border_title)
        assert _calls_shown(panel) == before

        ticks.now += FOLLOW_EVERY_S
        await refetch(pilot)
        await until(lambda: _calls_shown(panel) > before, pilot=pilot)
        assert "new call" not in str(panel.border_title) and "as of 15:06:40" in str(panel.border_title)


async def test_one_replay_at_a_time_and_none_out_of_sight(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 50)) as pilot:
        screen = await open_screen(pilot, "2", CostsScreen)
        panel = screen.query_one(WhatIfPanel)
        panel.clock = ticks = _Ticks()
        gate, lock = threading.Event(), threading.Lock()
        asked: list[str | None] = []
        running = [0, 0]  # now, most at once
        replay: WhatIfFetch = panel.fetch

        def held(range_name: str, strategy: str | None, prices: str | None) -> dict[str, Any]:
            with lock:
                asked.append(strategy)
                running[0] += 1
                running[1] = max(running)
            try:
                gate.wait(10)
                return replay(range_name, strategy, prices)
            finally:
                with lock:
                    running[0] -= 1

        panel.fetch = held
        await pilot.press("w")
        await until(lambda: asked == [None], pilot=pilot)
        panel.query_one("#whatif-strategy", Select).value = "cost"  # picked while the first replay runs
        seeded.add_calls(20, seed=4)
        ticks.now += FOLLOW_EVERY_S
        await refetch(pilot)  # new calls, and time enough: still, nothing starts beside the replay under way
        assert asked == [None] and "replaying" in _text(panel)
        gate.set()
        await until(lambda: panel.result is not None and panel.result["policy"] == {"strategy": "cost"}, pilot=pilot)
        assert asked == [None, "cost"] and running[1] == 1
        shown = _calls_shown(panel)

        await pilot.press("1")  # Costs out of sight: new calls wait for it
        realtime = pilot.app.screen
        assert isinstance(realtime, RealtimeScreen)
        seeded.add_calls(25, seed=5)
        ticks.now += FOLLOW_EVERY_S
        await refetch(pilot)
        await refetch(pilot)
        assert len(asked) == 2

        await pilot.press("2")  # back in sight: the panel catches up
        await until(lambda: _calls_shown(panel) > shown, pilot=pilot)
        assert asked[-1] == "cost" and running[1] == 1


async def test_the_panel_follows_new_calls_only_in_sight_and_live_whatever_its_host() -> None:
    from textual.app import App, ComposeResult
    from textual.screen import ModalScreen, Screen

    group = {"calls": 10, "moved": 0, "recorded_nanos": 1_000, "replayed_nanos": 1_000,
             "recorded_p95_ms": 100.0, "projected_p95_ms": 100.0}
    asked: list[str] = []

    def fetch(range_name: str, strategy: str | None, prices: str | None) -> dict[str, Any]:
        asked.append(range_name)
        return {"total": group, "by_model": {}, "notes": [], "until": 0.0}

    class Host(App[None]):
        """Any Textual app: not the dashboard, no dashboard screen."""

        def compose(self) -> ComposeResult:
            yield WhatIfPanel(fetch, "24h")

    app = Host()
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.query_one(WhatIfPanel)
        panel.clock = ticks = _Ticks()
        panel.traffic(("24h", 10, 1_000))  # the host drew its range; the panel is closed: nothing replays
        panel.toggle()
        await until(lambda: panel.result is not None and not panel.replaying, pilot=pilot)
        assert asked == ["24h"]

        await app.push_screen(Screen())  # another screen over the panel's: out of sight
        ticks.now += FOLLOW_EVERY_S
        panel.traffic(("24h", 11, 1_100))
        await pilot.pause()
        assert asked == ["24h"] and "1 new call since" in str(panel.border_title)

        app.pop_screen()
        await app.push_screen(ModalScreen())  # a dialog over it leaves it in sight
        panel.traffic(("24h", 12, 1_200))
        await until(lambda: len(asked) == 2 and not panel.replaying, pilot=pilot)
        app.pop_screen()

        ticks.now += FOLLOW_EVERY_S
        panel.traffic(("24h", 13, 1_300), live=False)  # a paused host drawn once: counted, not replayed
        await pilot.pause()
        assert len(asked) == 2 and "1 new call since" in str(panel.border_title)
        panel.traffic(("24h", 13, 1_300))
        await until(lambda: len(asked) == 3, pilot=pilot)
