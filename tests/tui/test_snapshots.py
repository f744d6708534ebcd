"""What every screen looks like, at 80×24, 120×40 and 200×50, on seeded data at a fixed time.

The pictures are SVGs in ``snapshots/`` at the repository root; after a
deliberate change of look, review them and accept with
``pytest tests/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from .helpers import make_app, settle
from .keys_seed import seed_keys
from .seed import Seeded

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40"),
         pytest.param((200, 50), id="200x50")]
SCREENS = [
    pytest.param("1", id="realtime"),
    pytest.param("2", id="costs"),
    pytest.param("3", id="budgets"),
    pytest.param("4", id="alerts"),
    pytest.param("5", id="routing"),
]

Compare = Callable[..., bool]


def _go(*keys: str, then: Callable[[Pilot[Any]], Awaitable[None]] | None = None) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        if then is not None:
            await then(pilot)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("key", SCREENS)
def test_screen(snap_compare: Compare, seeded: Seeded, key: str, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(seeded), terminal_size=size, run_before=_go(key))


@pytest.mark.parametrize("size", [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")])
def test_keys(snap_compare: Compare, seeded: Seeded, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]) -> None:
    seed_keys(seeded, monkeypatch)
    assert snap_compare(make_app(seeded), terminal_size=size, run_before=_go("6"))


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: Compare, seeded: Seeded, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(seeded), terminal_size=size, run_before=_go("3", "question_mark"))


def test_help_on_alerts(snap_compare: Compare, seeded: Seeded) -> None:
    assert snap_compare(make_app(seeded), terminal_size=(120, 40), run_before=_go("4", "question_mark"))


def test_call_details(snap_compare: Compare, seeded: Seeded) -> None:
    async def open_call(pilot: Pilot[Any]) -> None:
        from axtui.tui.widgets.calllog import CallLog

        pilot.app.screen.query_one(CallLog).focus()
        await pilot.press("k", "enter")
        await settle(pilot)
        await pilot.pause(0.3)

    assert snap_compare(make_app(seeded), terminal_size=(120, 40), run_before=_go("1", then=open_call))


def test_export_of_a_filtered_log(snap_compare: Compare, seeded: Seeded) -> None:
    async def export(pilot: Pilot[Any]) -> None:
        await pilot.press("slash", *"user=alice", "enter", "x")
        await pilot.pause()
        pilot.app.screen.query_one("#x-path", Input).value = "~/exports/ax-calls-user=alice.csv"
        await pilot.pause()

    assert snap_compare(make_app(seeded), terminal_size=(80, 24), run_before=_go("1", then=export))


def test_light_theme(snap_compare: Compare, seeded: Seeded) -> None:
    assert snap_compare(make_app(seeded, theme="light"), terminal_size=(120, 40), run_before=_go("1"))


def test_high_contrast_theme(snap_compare: Compare, seeded: Seeded) -> None:
    assert snap_compare(make_app(seeded, theme="high-contrast"), terminal_size=(120, 40), run_before=_go("3"))


def test_budget_amount_being_edited(snap_compare: Compare, seeded: Seeded) -> None:
    async def edit(pilot: Pilot[Any]) -> None:
        await pilot.press("enter", *"abc")

    assert snap_compare(make_app(seeded), terminal_size=(120, 40), run_before=_go("3", then=edit))


def test_add_alert_rule_form(snap_compare: Compare, seeded: Seeded) -> None:
    async def add(pilot: Pilot[Any]) -> None:
        await pilot.press("a", *"p95_latency_ms > 2000 fr 5m")

    assert snap_compare(make_app(seeded), terminal_size=(120, 40), run_before=_go("4", then=add))


def test_export_dialog(snap_compare: Compare, seeded: Seeded) -> None:
    async def export(pilot: Pilot[Any]) -> None:
        await pilot.press("x")
        await pilot.pause()
        # The default path lives under the test's own AX_HOME; a fixed one keeps the picture stable.
        pilot.app.screen.query_one("#x-path", Input).value = "~/exports/ax-costs.csv"
        await pilot.pause()

    assert snap_compare(make_app(seeded), terminal_size=(80, 24), run_before=_go("2", then=export))


def test_terminal_too_small(snap_compare: Compare, seeded: Seeded) -> None:
    assert snap_compare(make_app(seeded), terminal_size=(60, 18), run_before=_go())
