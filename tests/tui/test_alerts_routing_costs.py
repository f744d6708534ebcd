"""Alerts, routing, costs and export, driven from the keyboard and checked in the store and the files."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from textual.widgets import DataTable, Input, Static

from axtui.config import load_settings
from axtui.metrics.alerts.storage import get_rule, list_rules
from axtui.tui.screens.alerts import AlertsScreen
from axtui.tui.screens.confirm import ConfirmScreen
from axtui.tui.screens.costs import CostsScreen
from axtui.tui.screens.export import ExportScreen
from axtui.tui.screens.routing import RoutingScreen
from axtui.tui.widgets.cell_editor import CellEditor

from .helpers import make_app, open_form, open_screen, refetch, settle, until
from .seed import Seeded

# -- alerts --------------------------------------------------------------------------------


async def test_adding_a_rule_checks_it_as_typed_and_saves_it(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(pilot, "4", AlertsScreen)
        form = await open_form(pilot, "a")
        await pilot.press(*"p95_latency_ms >> 2000")
        await pilot.pause()
        help_line = str(form.query_one("#e-rule", Static).render())
        assert "column" in help_line
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert app.screen is form and len(list_rules(seeded.store)) == 3
        box = form.query_one("#f-rule", Input)
        box.value = "rps > 40 for 1m where provider=groq"
        await pilot.press("ctrl+s")
        await until(lambda: len(list_rules(seeded.store)) == 4, pilot=pilot)
        added = list_rules(seeded.store)[-1]
        assert added.rule == "rps > 40 for 1m where provider=groq" and added.severity == "warning"
        await refetch(pilot)
        assert app.screen.query_one("#rules", DataTable).row_count == 4


async def test_removing_a_rule_asks_first(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(pilot, "4", AlertsScreen)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause(0.2)
        assert len(list_rules(seeded.store)) == 3
        await pilot.press("d", "y")
        await until(lambda: get_rule(seeded.store, 1) is None, pilot=pilot)


async def test_acknowledge_and_silence_a_firing_rule(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "4", AlertsScreen)
        assert screen.query_one("#rules", DataTable).get_cell("1", "state").plain.startswith("▲ firing")
        await pilot.press("c")
        await until(lambda: get_rule(seeded.store, 1).acknowledged_at is not None, pilot=pilot)  # type: ignore[union-attr]
        await pilot.press("s")
        now = seeded.clock.now()
        await until(lambda: (get_rule(seeded.store, 1).silenced_until or 0) == now + 3600, pilot=pilot)  # type: ignore[union-attr]
        await refetch(pilot)
        rules = screen.query_one("#rules", DataTable)
        assert rules.get_cell("1", "state").plain == "▲ firing ✓"  # silenced, and still marked acknowledged
        assert rules.get_cell("1", "quiet").plain == "1h"
        assert rules.get_cell("2", "quiet").plain == ""


async def test_a_silence_set_while_paused_shows_at_once(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "4", AlertsScreen)
        await pilot.press("p", "s")
        rules = screen.query_one("#rules", DataTable)
        await until(lambda: rules.get_cell("1", "quiet").plain == "1h", pilot=pilot)
        assert app.paused


async def test_from_the_events_table_keys_act_on_the_selected_events_rule_and_name_it(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "4", AlertsScreen)
        rules = screen.query_one("#rules", DataTable)
        await pilot.press("j")  # the rules' cursor on #2; its cursor is not drawn once the events have the focus
        assert rules.cursor_row == 1
        await pilot.press("tab")
        assert app.focused is screen.query_one("#events", DataTable)  # on an event of rule #1, azure slow
        await pilot.press("s")
        await until(lambda: get_rule(seeded.store, 1).silenced_until is not None, pilot=pilot)  # type: ignore[union-attr]
        assert get_rule(seeded.store, 2).silenced_until is None  # type: ignore[union-attr]
        hint = str(screen.query_one("#hint", Static).render())
        assert "Rule #1 (azure slow), the selected event's rule, silenced for 1h" in hint
        assert rules.cursor_row == 0  # back on the rules table, the cursor is on the rule acted on
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "rule #1 (azure slow), the selected event's rule?" in app.screen.question
        await pilot.press("n")
        await pilot.pause(0.2)
        assert get_rule(seeded.store, 1) is not None


async def test_editing_a_rule_keeps_the_old_one_when_the_new_text_is_wrong(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(pilot, "4", AlertsScreen)
        form = await open_form(pilot, "enter")
        box = form.query_one("#f-rule", Input)
        assert box.value == "p95_latency_ms > 1500 for 1m where provider=azure"
        box.value = "p95_latency_ms > 1500 for 1m where colour=azure"
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        assert app.screen is form
        assert get_rule(seeded.store, 1).rule == "p95_latency_ms > 1500 for 1m where provider=azure"  # type: ignore[union-attr]
        box.value = "p95_latency_ms > 3000 for 1m where provider=azure"
        await pilot.press("ctrl+s")
        await until(lambda: get_rule(seeded.store, 1).rule.startswith("p95_latency_ms > 3000"), pilot=pilot)  # type: ignore[union-attr]


# -- routing -------------------------------------------------------------------------------


async def test_a_weight_edit_is_staged_then_saved_to_the_config_file(seeded: Seeded, ax_home: Path) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "5", RoutingScreen)
        health = screen.query_one("#health", DataTable)
        assert health.get_cell("anthropic/claude-haiku-4-5", "weight").plain == "1"
        await pilot.press("enter", *"x")
        await pilot.pause()
        assert screen.query_one(CellEditor).has_class("-invalid")
        await pilot.press("ctrl+a", "ctrl+k", *"3", "enter")
        await pilot.pause()
        assert screen.dirty
        assert health.get_cell("anthropic/claude-haiku-4-5", "weight").plain == "● 3"
        assert not (ax_home / "config.toml").exists()
        await pilot.press("ctrl+s")
        await until(lambda: (ax_home / "config.toml").exists(), pilot=pilot)
        saved = load_settings(ax_home / "config.toml")
        assert [(d.provider, d.model, d.weight) for d in saved.deployments] == [
            ("anthropic", "claude-haiku-4-5", 3.0)
        ]
        await until(lambda: not screen.dirty, pilot=pilot)


async def test_explain_shows_the_chosen_deployment_and_why(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "5", RoutingScreen)
        await pilot.press("e", *"gpt-4o", "enter")
        result = screen.query_one("#explain-result", Static)
        await until(lambda: "1st" in str(result.render()), pilot=pilot)
        text = str(result.render())
        assert "gpt-4o" in text and "strategy latency" in text
        await pilot.press("ctrl+a", "ctrl+k", *"no-such-model", "enter")
        await until(lambda: "no-such-model" in str(result.render()) and "1st" not in str(result.render()), pilot=pilot)


async def test_undo_drops_staged_edits(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "5", RoutingScreen)
        await pilot.press("enter", *"7", "enter", "u")
        await pilot.pause()
        assert not screen.dirty
        assert screen.query_one("#health", DataTable).get_cell("anthropic/claude-haiku-4-5", "weight").plain == "1"


async def test_save_and_undo_with_nothing_staged_say_so(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        screen = await open_screen(pilot, "5", RoutingScreen)
        footer = {b.binding.description for b in app.screen.active_bindings.values() if b.binding.show}
        assert not screen.dirty and not {"Save", "Undo"} & footer  # the footer offers neither
        await pilot.press("ctrl+s")
        await pilot.press("u")
        await pilot.pause()
        said = [n.message for n in app._notifications]
        assert said == ["Nothing to save: no edit is staged.", "Nothing to undo: no edit is staged."]
        await pilot.press("enter", *"3")  # a weight typed, not staged yet
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert [n.message for n in app._notifications][-1].startswith(
            "Nothing to save yet: enter stages the weight of anthropic/claude-haiku-4-5")
        await pilot.press("enter", "ctrl+s")  # staged: ctrl+s saves, and says nothing of the kind
        await until(lambda: not screen.dirty, pilot=pilot)
        assert [n.message for n in app._notifications][-1].startswith("Routing saved to ")


# -- costs ---------------------------------------------------------------------------------


async def test_range_grouping_and_order_keys(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "2", CostsScreen)
        table = screen.query_one("#breakdown", DataTable)
        assert table.get_row_at(0)[0].plain == "openai"  # most expensive first
        await pilot.press("b")
        await refetch(pilot)
        assert screen.by == "model" and table.get_row_at(0)[0].plain == "gpt-4o"
        await pilot.press("o")  # by calls
        calls = [int(table.get_row_at(i)[3].plain.replace(",", "")) for i in range(table.row_count)]
        assert calls == sorted(calls, reverse=True)
        await pilot.press("r")
        await refetch(pilot)
        assert screen.range == "7d"
        assert "over the last 7d" in str(screen.query_one("#cost-summary", Static).render())


async def test_clicking_a_range_selects_it(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "2", CostsScreen)
        choice = next(c for c in screen.query(".choice") if getattr(c, "value", "") == "1h")
        await pilot.click(choice)
        await refetch(pilot)
        assert screen.range == "1h"
        assert choice.has_class("-active")


# -- export --------------------------------------------------------------------------------


async def test_export_writes_the_file_with_the_headless_exporter(seeded: Seeded, tmp_path: Path) -> None:
    app = make_app(seeded)
    target = tmp_path / "out" / "calls.csv"
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ExportScreen)
        path = dialog.query_one("#x-path", Input)
        assert path.value.endswith(".csv") and "ax-calls-" in path.value
        path.value = str(target)
        await pilot.press("ctrl+s")
        await until(lambda: target.exists() and not isinstance(app.screen, ExportScreen), pilot=pilot)
    with target.open(newline="") as f:
        rows = list(csv.DictReader(f))
    recent = [r for r in seeded.records if r.ts >= seeded.clock.now() - 86_400]
    assert len(rows) == len(recent)
    assert {"ts", "user", "provider", "model", "status", "cost_usd"} <= set(rows[0])


async def test_export_to_a_folder_is_refused_with_a_reason(seeded: Seeded, tmp_path: Path) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#x-path", Input).value = str(tmp_path)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        assert "is a folder" in str(dialog.query_one("#form-error", Static).render())


async def _export_as_offered(pilot: Any) -> Path:
    """``x``, then ctrl+s on the file the dialog offers; returns the file written."""
    app = pilot.app
    await pilot.press("x")
    await pilot.pause()
    dialog = app.screen
    assert isinstance(dialog, ExportScreen)
    offered = Path(dialog.query_one("#x-path", Input).value)
    await pilot.press("ctrl+s")
    await until(lambda: offered.exists() and not isinstance(app.screen, ExportScreen), pilot=pilot)
    return offered


async def test_a_second_export_in_the_same_minute_gets_a_new_name(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        first = await _export_as_offered(pilot)
        written = first.read_bytes()
        second = await _export_as_offered(pilot)  # the clock has not moved: the same minute
    assert second != first and second.name == first.name.replace(".csv", "-2.csv")
    assert first.read_bytes() == written and second.exists()


async def test_an_export_to_a_file_that_exists_keeps_it_and_offers_a_free_name(seeded: Seeded, tmp_path: Path) -> None:
    mine = tmp_path / "calls.csv"
    mine.write_text("mine\n")
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()
        dialog = app.screen
        box = dialog.query_one("#x-path", Input)
        box.value = str(mine)
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert app.screen is dialog
        assert "calls.csv exists and is kept" in str(dialog.query_one("#form-error", Static).render())
        assert box.value == str(tmp_path / "calls-2.csv")
        await pilot.press("ctrl+s")
        await until(lambda: (tmp_path / "calls-2.csv").exists(), pilot=pilot)
    assert mine.read_text() == "mine\n"


async def test_x_on_routing_and_keys_offers_what_the_screen_shows(seeded: Seeded, tmp_path: Path) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        routing = await open_screen(pilot, "5", RoutingScreen)
        await pilot.press("x")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ExportScreen) and dialog.what == "view"
        assert "deployments of the Deployments table" in str(dialog.query_one("#x-says", Static).render())
        target = tmp_path / "deployments.csv"
        dialog.query_one("#x-path", Input).value = str(target)
        await pilot.press("ctrl+s")
        await until(lambda: target.exists() and not isinstance(app.screen, ExportScreen), pilot=pilot)
        health = routing.query_one("#health", DataTable)
        shown = [health.get_row_at(i)[0].plain for i in range(health.row_count)]
        await pilot.press("6")
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ExportScreen) and dialog.what == "view"
        assert "keys the Keys table shows" in str(dialog.query_one("#x-says", Static).render())
        await pilot.press("escape")
    with target.open(newline="") as f:
        assert [r["deployment"] for r in csv.DictReader(f)] == shown


def _with_routing(seeded: Seeded, ax_home: Path) -> Any:
    """The seeded app over a config file that has two rules and an A/B test."""
    from axtui.config import ABTestConfig, ABVariant, RoutingRule, Settings, save_settings
    from axtui.engine.compose import effective_providers
    from axtui.tui.data_local import StoreBackend

    raw = Settings(routing={  # type: ignore[arg-type]
        "rules": [RoutingRule(name="big-prompts", min_prompt_tokens=2000, strategy="cost"),
                  RoutingRule(name="alice-latency", user="alice", strategy="latency")],
        "ab_tests": [ABTestConfig(name="four-vs-mini", model="gpt-4o", variants=[
            ABVariant(name="big", model="gpt-4o", percent=50), ABVariant(name="mini", model="gpt-4o-mini", percent=50),
        ])],
    })
    save_settings(raw, ax_home / "config.toml")
    app = make_app(seeded)
    app.backend = StoreBackend(effective_providers(raw), seeded.clock, store=seeded.store, metrics=seeded.metrics)
    return app


async def test_rules_move_and_splits_rebalance_then_save(seeded: Seeded, ax_home: Path) -> None:
    app = _with_routing(seeded, ax_home)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "5", RoutingScreen)
        rules = screen.query_one("#route-rules", DataTable)
        rules.focus()
        await pilot.press("shift+down")
        assert screen.dirty
        assert [rules.get_row_at(i)[1].plain for i in range(2)] == ["alice-latency", "big-prompts"]
        ab = screen.query_one("#ab", DataTable)
        ab.focus()
        await pilot.press("enter", *"30", "enter")
        await pilot.pause()
        assert ab.get_cell("four-vs-mini/big", "split").plain == "● 30%"
        assert ab.get_cell("four-vs-mini/mini", "split").plain == "● 70%"
        await pilot.press("ctrl+s")
        await until(lambda: not screen.dirty, pilot=pilot)
    saved = load_settings(ax_home / "config.toml")
    assert [r.name for r in saved.routing.rules] == ["alice-latency", "big-prompts"]
    assert [(v.name, v.percent) for v in saved.routing.ab_tests[0].variants] == [("big", 30.0), ("mini", 70.0)]
    assert not saved.providers  # the demo fleet is not written into the file
