"""What looking at the demo dashboard as a user showed wrong, each checked the way a user would see it."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
from rich.text import Text
from textual import events
from textual.widgets import DataTable, Select, Static
from textual.widgets._footer import FooterKey, FooterLabel
from textual.widgets._select import SelectCurrent

from axtui.config import ROUTING_STRATEGIES
from axtui.metrics.snapshot import RecentCall
from axtui.tui import fmt
from axtui.tui.data import DeploymentState, LiveView
from axtui.tui.screens.base import DashboardScreen
from axtui.tui.screens.costs import CostsScreen
from axtui.tui.screens.help import HelpScreen
from axtui.tui.screens.realtime import RealtimeScreen
from axtui.tui.screens.routing import RoutingScreen
from axtui.tui.widgets.calllog import CallLog, format_call, log_header
from axtui.tui.widgets.palette import Palette
from axtui.tui.widgets.tables import FitTable
from axtui.tui.widgets.whatif import WhatIfPanel, describe
from tests.support import until

from .helpers import make_app, open_screen, settle
from .keys_seed import seed_keys
from .seed import Seeded

# -- keys typed right after q --------------------------------------------------------------------


@pytest.mark.parametrize(("screen_key", "then"), [("1", "x"), ("6", "r")])
async def test_a_key_typed_right_after_q_does_not_end_in_a_traceback(
        seeded: Seeded, monkeypatch: pytest.MonkeyPatch, screen_key: str, then: str) -> None:
    seed_keys(seeded, monkeypatch)
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press(screen_key)
        await settle(pilot)
        # Both keys arrive before the app handles the first, as when typed quickly in a terminal.
        for key in ("q", then):
            app.post_message(events.Key(key, key))
        await pilot.pause()
    assert app.return_code == 0 and not app.is_running


# -- the help reads as paragraphs ----------------------------------------------------------------


def _help_lines(app: Any) -> tuple[list[str], int]:
    text = app.screen.query_one("#help Static", Static)
    return [text.render_line(y).text.rstrip() for y in range(text.size.height)], text.content_region.width


@pytest.mark.parametrize("key", ["1", "3", "5"])
async def test_help_notes_fill_their_lines(seeded: Seeded, key: str) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press(key)
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        lines, width = _help_lines(app)
        notes = lines[lines.index("") + 1: lines.index("Everywhere") - 1]
        assert len(notes) >= 2
        for line, after in pairwise(notes):
            if not after or line.endswith((".", ":")):
                continue
            assert len(line) + 1 + len(after.split()[0]) > width, f"a ragged line: {line!r} before {after!r}"


# -- every key of the footer is on screen --------------------------------------------------------


def _footer(app: Any) -> dict[str, int]:
    """What the footer offers (each key's word, a group's words), and where on the line it ends."""
    keys = {str(k.description): k.region.right for k in app.screen.query(FooterKey) if k.description}
    groups = {str(g.render()): g.region.right for g in app.screen.query(FooterLabel)}
    return keys | groups


def _cut_footer_keys(app: Any) -> list[str]:
    return [word for word, right in _footer(app).items() if right > app.size.width]


async def test_the_footer_fits_80_columns_on_every_screen(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_keys(seeded, monkeypatch)
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        for key in "123456":
            screen = await open_screen(pilot, key, DashboardScreen)
            await pilot.pause()
            assert _cut_footer_keys(app) == [], screen.MODE


async def test_the_routing_footer_offers_what_applies_and_fits(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot, "5", RoutingScreen)
        offered = _footer(app)
        assert "Save" not in offered and "Move rule" not in offered  # nothing staged; no rule selected
        await pilot.press("enter", "3", "enter")  # a weight staged
        screen.query_one("#route-rules", DataTable).focus()
        await pilot.pause()
        assert screen.dirty
        assert {"Save", "Undo", "Move rule", "Quit"} <= set(_footer(app))
        assert _cut_footer_keys(app) == []


# -- headings sit over their figures -------------------------------------------------------------


def _columns(table: FitTable) -> list[tuple[str, int, int]]:
    """(key, first character, end) of each column on a rendered line."""
    out, x = [], 0
    for column in table.ordered_columns:
        width = column.get_render_width(table)
        out.append((str(column.key.value), x + table.cell_padding, x + width - table.cell_padding))
        x += width
    return out


async def test_a_heading_over_right_aligned_figures_ends_where_they_end(
        seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_keys(seeded, monkeypatch)
    app = make_app(seeded)
    async with app.run_test(size=(200, 50)) as pilot:
        checked: set[str] = set()
        for key in "123456":
            screen = await open_screen(pilot, key, DashboardScreen)
            await pilot.pause()
            for table in screen.query(FitTable):
                if not table.row_count:
                    continue
                heading, row = table.render_line(0).text, table.render_line(1).text
                first = table.get_row_at(0)
                for (name, start, end), cell in zip(_columns(table), first, strict=True):
                    figure = row[start:end]
                    if not (isinstance(cell, Text) and cell.justify == "right" and figure.strip()):
                        continue
                    label = heading[start:end]
                    assert len(label.rstrip()) == len(figure.rstrip()), f"{table.id}.{name}: {label!r} over {figure!r}"
                    checked.add(f"{table.id}.{name}")
        assert {"deployments.p95", "breakdown.cost", "budgets.amount", "keys.spent"} <= checked


def test_the_log_headings_line_up_with_their_fields() -> None:
    palette = Palette(ok="green", warn="yellow", bad="red", muted="grey50", accent="cyan", primary="blue")
    call = RecentCall(ts=0.0, user="alice", requested_model="smart", status="ok", deployment="openai/gpt-4o",
                      latency_ms=120.0, input_tokens=1234, output_tokens=20, cost_usd=Decimal("0.0001"),
                      cache="exact", request_id="r1")
    for width in (100, 120, 200):
        head, line = log_header(width), format_call(call, palette, width).plain
        assert head.index("latency") + len("latency") == line.index("120ms") + len("120ms")
        assert head.index("in→out") + len("in") == line.index("1,234→") + len("1,234")
        assert head.index("cost") + len("cost") == line.index("$0.000100") + len("$0.000100")
        assert head.index("cache") == line.index("exact")


# -- what has no figure goes last ----------------------------------------------------------------


async def test_ordering_the_log_puts_calls_without_the_figure_last(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "1", RealtimeScreen)
        log = screen.query_one(CallLog)
        refused = [c for c in log.view if c.status not in ("ok", "error")]
        assert refused  # the seeded calls have some refused ones, with no latency and no cost
        await pilot.press("o")  # by latency, the quickest first
        assert log.order == "latency" and not log.descending
        assert all(c.status in ("ok", "error") for c in list(log.view)[: -len(refused)])
        await pilot.press("o")  # by cost, the cheapest first
        assert log.order == "cost" and not log.descending
        head = list(log.view)[:5]
        assert all(c.status == "ok" and c.cost_usd is not None for c in head)
        assert "$" in format_call(head[0], Palette.of(screen.app), 120).plain


def _row_keys(table: DataTable[Any]) -> list[str]:
    """The rows' keys as the table shows them, top to bottom."""
    return [str(row.key.value) for row in table.ordered_rows]


async def test_idle_deployments_stay_last_whichever_way_they_are_sorted(
        seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(seeded)
    live = app.backend.live
    idle = {"aa/idle", "zz/idle"}  # first and last by name: where they end up is the sort's doing

    def with_idle_ones(series_s: int) -> LiveView:
        view = live(series_s)
        for name in idle:
            view.health.setdefault(name, DeploymentState(name))
        return view

    monkeypatch.setattr(app.backend, "live", with_idle_ones)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "1", RealtimeScreen)
        table = screen.query_one("#deployments", DataTable)
        assert idle <= {str(k.value) for k in table.rows}
        await pilot.press("s", "s")  # by p95, the slowest first
        order = _row_keys(table)
        assert set(order[-len(idle):]) == idle
        await pilot.press("S")  # the quickest first
        await until(lambda: _row_keys(table) != order, pilot=pilot)
        assert set(_row_keys(table)[-len(idle):]) == idle


# -- the what-if panel's strategy picker ---------------------------------------------------------


async def test_the_what_if_strategy_picker_shows_every_choice_on_one_line(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 50)) as pilot:
        screen = await open_screen(pilot, "2", CostsScreen)
        await pilot.press("w")
        await pilot.pause()
        picker = screen.query_one(WhatIfPanel).query_one("#whatif-strategy", Select)
        label = picker.query_one(SelectCurrent).query_one("#label", Static)
        longest = max(["routing as recorded", *(f"strategy {s}" for s in ROUTING_STRATEGIES)], key=len)
        assert label.content_region.width >= len(longest)


# -- an empty table or log says why --------------------------------------------------------------


async def test_an_empty_table_says_why_once_its_data_came(seeded: Seeded) -> None:
    app = make_app(seeded)  # no gateway keys, no teams
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "6", DashboardScreen)
        teams = screen.query_one("#teams", FitTable)
        assert teams.row_count == 0 and teams.size.height == 2  # the heading, and one line saying why
        assert "no teams: ax teams create NAME makes one" in teams.render_line(1).text


async def test_a_log_filtered_down_to_nothing_says_so(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "1", RealtimeScreen)
        log = screen.query_one(CallLog)
        await pilot.press("slash", *"user=nobody", "enter")
        await until(lambda: not log.view, pilot=pilot)
        assert log.render_line(0).text.startswith("no recent call matches user=nobody")


def test_counts_of_one_are_singular() -> None:
    one = {"calls": 1, "moved": 0, "recorded_nanos": 5, "replayed_nanos": 5, "recorded_p95_ms": None,
           "projected_p95_ms": None}
    assert "moved 0 of 1 call" in describe({"total": one}) and "1 calls" not in describe({"total": one})
    assert fmt.counted(1, "hit") == "1 hit" and fmt.counted(0, "hit") == "0 hits"
    assert fmt.counted(12_345, "call") == "12,345 calls"


async def test_the_export_toast_reads_as_a_sentence(seeded: Seeded, tmp_path: Any) -> None:
    from .test_dashboard_bugs import _export_view

    app = make_app(seeded)
    toasts: list[str] = []
    notify = app.notify

    def kept(message: str, **kw: Any) -> None:
        toasts.append(message)
        notify(message, **kw)

    app.notify = kept  # type: ignore[method-assign]
    target = tmp_path / "costs.csv"
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "2", CostsScreen)
        rows = screen.query_one("#breakdown", DataTable).row_count
        await _export_view(pilot, target)
    assert f"{rows} rows of costs by provider 24h → {target}" in toasts
