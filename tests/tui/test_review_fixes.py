"""What a demanding user noticed on the dashboard: each test fails on the screen as it was before."""

from __future__ import annotations

import dataclasses
from typing import Any

from textual_plotext import PlotextPlot

from axtui.tui.widgets.palette import Palette

from .helpers import make_app, open_screen, settle
from .seed import Seeded

PALETTE = Palette(ok="green", warn="yellow", bad="red", muted="grey50", accent="cyan", primary="blue")


def _plot_lines(plot: PlotextPlot) -> list[str]:
    return ["".join(segment.text for segment in plot.render_line(y)) for y in range(plot.size.height)]


# -- the spend chart -----------------------------------------------------------------------


async def test_a_chart_with_no_spend_reads_zero_dollars_not_negative_money(seeded: Seeded) -> None:
    from axtui.tui.screens.costs import CostsScreen

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "2", CostsScreen)
        app.paused = True  # no fetch draws the seeded spend over the chart drawn here
        await pilot.pause()
        screen._draw_chart(dataclasses.replace(screen._last, points=[]))
        await pilot.pause()
        lines = _plot_lines(screen.query_one("#spend-chart", PlotextPlot))
    ticks = [line.split("┤")[0].strip() for line in lines if "┤" in line]
    assert ticks == ["$0"], lines


async def test_the_spend_axis_starts_at_zero_and_reads_in_dollars(seeded: Seeded) -> None:
    from axtui.tui.screens.costs import CostsScreen

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "2", CostsScreen)
        screen.action_set_range("7d")  # hourly points, drawn as a line that plotext would start at its lowest
        await pilot.pause()
        from .helpers import refetch

        await refetch(pilot)
        lines = _plot_lines(screen.query_one("#spend-chart", PlotextPlot))
    ticks = [line.split("┤")[0].strip() for line in lines if "┤" in line]
    assert ticks[-1] == "$0" and all(t.startswith("$") for t in ticks), lines


# -- a limit saved as unlimited --------------------------------------------------------------


async def test_a_limit_saved_as_unlimited_keeps_its_row_and_says_what_it_did(seeded: Seeded) -> None:
    from textual.widgets import DataTable, Static

    from axtui.store.tables_ratelimit import read_limits
    from axtui.tui.screens.budgets import BudgetsScreen

    from .helpers import refetch, until

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "3", BudgetsScreen)
        limits = screen.query_one("#limits", DataTable)
        limits.focus()
        await pilot.pause()
        assert limits.coordinate_to_cell_key(limits.cursor_coordinate).row_key.value == "user:bob|requests"
        await pilot.press("enter", "ctrl+a", "ctrl+k", *"unlimited", "enter")
        await until(lambda: next(r for r in read_limits(seeded.store)
                                 if r.subject == "bob").requests == "unlimited", pilot=pilot)
        await refetch(pilot)
        row = [cell.plain for cell in limits.get_row("user:bob|requests")]
        hint = str(screen.query_one("#hint", Static).render())
        # The row is still there and says what the store holds; the cursor stays on it.
        assert row[:3] == ["user:bob", "requests", "unlimited"]
        assert limits.coordinate_to_cell_key(limits.cursor_coordinate).row_key.value == "user:bob|requests"
        assert "no requests limit applies to it now (unlimited)" in hint
        # d on that row removes the stored limit, as for any other.
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await until(lambda: all(r.subject != "bob" for r in read_limits(seeded.store)), pilot=pilot)


def test_unlimited_rows_list_each_unit_a_stored_limit_lifts_once() -> None:
    from axtui.ratelimit.rules import StoredLimit
    from axtui.tui.screens.budget_rows import limit_cells, unlimited_rows

    stored = [StoredLimit("user", "bob", requests="unlimited", tokens="1000/minute"),
              StoredLimit("key", "k1", requests=None, tokens="unlimited"),
              StoredLimit("global", "*", requests="100/minute")]
    rows = unlimited_rows(stored, [])
    assert [(r.label, r.unit) for r in rows] == [("user:bob", "requests"), ("key:k1", "tokens")]
    assert unlimited_rows(stored, rows) == []
    cells = [c.plain for c in limit_cells(rows[0], PALETTE)]
    assert cells[2] == "unlimited" and cells[3:6] == ["–", "–", "–"]


# -- copying a secret ------------------------------------------------------------------------


def test_the_clipboard_note_says_what_was_sent_and_what_may_stop_it() -> None:
    from axtui.tui.clipboard import clipboard_note

    in_tmux = clipboard_note({"TMUX": "/tmp/tmux-1000/default,1,0", "TERM": "tmux-256color"})
    assert "OSC 52" in in_tmux and "set -g set-clipboard on" in in_tmux
    assert "tmux" not in clipboard_note({"TERM": "xterm-256color"})
    assert clipboard_note({"TERM_PROGRAM": "Apple_Terminal"}).startswith("not copied")
    assert "screen" in clipboard_note({"STY": "1234.pts-0.host"})


async def test_copying_the_new_secret_in_tmux_does_not_claim_it_was_copied(
        seeded: Seeded, monkeypatch: Any) -> None:
    from axtui.server.keys import list_keys
    from axtui.tui.screens.keys import SecretScreen

    from .keys_seed import seed_keys

    monkeypatch.setenv("TMUX", "/tmp/tmux-1000/default,1,0")
    monkeypatch.delenv("TERM_PROGRAM", raising=False)
    seed_keys(seeded, monkeypatch)
    info = list_keys(seeded.store)[0]
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await app.push_screen(SecretScreen("axk_secret", info))
        await pilot.press("c")
        await pilot.pause()
        said = [n.message for n in app._notifications]
        assert app.clipboard == "axk_secret"
    assert not any("Copied" in m for m in said), said
    assert any("OSC 52" in m and "set -g set-clipboard on" in m for m in said), said


# -- a theme switch --------------------------------------------------------------------------


def _styles(table: Any, key: str) -> list[str]:
    return [str(cell.style) for cell in table.get_row(key)]


async def test_a_theme_switch_recolours_rows_whose_text_did_not_change(seeded: Seeded) -> None:
    from textual.widgets import DataTable

    from axtui.tui.screens.budgets import BudgetsScreen

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "3", BudgetsScreen)
        app.paused = True  # no fetch between: only the switch itself may redraw
        table = screen.query_one("#budgets", DataTable)
        dark = Palette.of(app)
        assert _styles(table, "1")[0] == dark.muted
        app.theme = "light"
        await pilot.pause()
        light = Palette.of(app)
        assert light.muted != dark.muted
        assert _styles(table, "1")[0] == light.muted


async def test_a_screen_shown_again_after_a_theme_switch_elsewhere_is_recoloured(seeded: Seeded) -> None:
    from textual.widgets import DataTable

    from axtui.tui.screens.budgets import BudgetsScreen
    from axtui.tui.screens.costs import CostsScreen

    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "3", BudgetsScreen)
        await open_screen(pilot, "2", CostsScreen)
        app.paused = True  # going back fetches nothing: the rows drawn before must change colour anyway
        app.theme = "light"
        await pilot.pause()
        await pilot.press("3")
        await pilot.pause()
        assert app.screen is screen
        table = screen.query_one("#budgets", DataTable)
        assert _styles(table, "1")[0] == Palette.of(app).muted


def test_a_cell_with_the_same_text_in_another_colour_is_not_the_same_cell() -> None:
    from rich.text import Text

    from axtui.tui.widgets.table_sync import same_cell

    assert same_cell(Text("–", style="grey50"), Text("–", style="grey50"))
    assert not same_cell(Text("–", style="grey50"), Text("–", style="#777777"))
    assert not same_cell(Text("4", justify="right"), Text("4", justify="left"))
    assert same_cell("4", "4") and not same_cell("4", "5")


# -- one export format ----------------------------------------------------------------------


async def test_a_filtered_log_exports_the_rows_ax_monitor_export_writes(seeded: Seeded, tmp_path: Any) -> None:
    import csv
    import io
    import re

    from textual.widgets import Input

    from axtui.metrics.export import ExportQuery, export
    from axtui.metrics.export_rows import CALL_COLUMNS
    from axtui.tui.screens.export import ExportScreen
    from axtui.tui.screens.realtime import RealtimeScreen
    from axtui.tui.widgets.calllog import CallLog

    from .helpers import until

    app = make_app(seeded)
    target = tmp_path / "alice.csv"
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "1", RealtimeScreen)
        await pilot.press("slash", *"user=alice", "enter")
        await pilot.pause()
        shown = [c.request_id for c in screen.query_one(CallLog).view]
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        app.screen.query_one("#x-path", Input).value = str(target)
        await pilot.press("ctrl+s")
        await until(lambda: target.exists() and not isinstance(app.screen, ExportScreen), pilot=pilot)
    with target.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    assert tuple(header) == CALL_COLUMNS
    assert [r[1] for r in rows] == shown  # the log's calls, in its order
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", r[0]) for r in rows)
    # Row for row what the CLI writes for the same calls.
    out = io.StringIO(newline="")
    export(seeded.store, out, "csv", ExportQuery(user="alice"))
    out.seek(0)
    by_id = {r[1]: r for r in list(csv.reader(out))[1:]}
    assert rows == [by_id[i] for i in shown]
    assert target.read_bytes().count(b"\r\n") == len(rows) + 1  # the CLI's CRLF line ends


def test_a_call_the_store_has_not_written_yet_exports_what_the_log_carried() -> None:
    from decimal import Decimal

    from axtui.metrics.export_rows import CALL_COLUMNS
    from axtui.metrics.snapshot import RecentCall
    from axtui.tui.export_view import live_call_row

    row = dict(zip(CALL_COLUMNS, live_call_row(RecentCall(
        ts=1_750_000_000.25, user="alice", requested_model="smart", status="ok", provider="openai",
        model="gpt-4o", deployment="openai/gpt-4o", latency_ms=840.0, cost_usd=Decimal("0.000123"),
        request_id="req-1")), strict=True))
    assert row["ts"] == "2025-06-15T15:06:40.250000Z"
    assert row["cost_usd"] == "0.000123" and row["request_id"] == "req-1" and row["provider"] == "openai"
    assert row["key"] is None and row["stream"] is None  # not carried by the live log: empty, not false


def test_the_spend_axis_is_round_dollars_from_zero() -> None:
    from axtui.tui.screens.costs import spend_axis

    assert spend_axis(0.0) == ([0.0], ["$0"], 1.0)
    assert spend_axis(0.5716) == ([0.0, 0.3, 0.6], ["$0", "$0.30", "$0.60"], 0.6)
    assert spend_axis(12.5)[1] == ["$0", "$7.50", "$15.00"]
    assert spend_axis(0.00062)[1] == ["$0", "$0.0004", "$0.0008"]
