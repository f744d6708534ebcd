"""The Costs screen's what-if panel: the range's calls replayed beside the real spend."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input, Select, Static

from axtui.tui.screens.costs import CostsScreen
from axtui.tui.widgets.whatif import WhatIfPanel, describe
from tests.support import until

from .helpers import make_app, settle
from .seed import Seeded


async def _open_panel(pilot: Any) -> WhatIfPanel:
    await settle(pilot)
    await pilot.press("2")
    await settle(pilot)
    assert isinstance(pilot.app.screen, CostsScreen)
    panel = pilot.app.screen.query_one(WhatIfPanel)
    assert not panel.display or not panel.is_open
    await pilot.press("w")
    return panel


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
