"""The demo engine in-process: a budget edited from the keyboard holds in the next call."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from textual.widgets import DataTable, Input

from axtui.config import Settings
from axtui.cost.budgets import list_budgets
from axtui.errors import BudgetExceeded
from axtui.tui.app import AxApp
from axtui.tui.data_demo import DemoBackend, wave_rps
from axtui.tui.screens.budgets import BudgetsScreen
from axtui.tui.screens.form import FormScreen
from axtui.tui.widgets.cell_editor import CellEditor
from axtui.types import Caller, ChatRequest

from .helpers import open_form, settle, until

_asked = itertools.count()


def _call(backend: DemoBackend, user: str) -> Any:
    """One call through the demo engine, on its own loop; the record, or the refusal.

    Every call asks something new, so none is answered from the cache (a cached answer costs nothing).
    """
    assert backend.engine is not None
    gateway = backend.engine.gateway
    question = f"Question {next(_asked)} from {user}: what is {next(_asked)} squared?"
    request = ChatRequest.model_validate({"model": "gpt-4o-mini", "max_tokens": 64,
                                          "messages": [{"role": "user", "content": question}]})
    try:
        return backend.engine.run(gateway.call(request, Caller(user=user)), timeout=60).record
    except BudgetExceeded as exc:
        return exc


async def test_a_budget_edited_from_the_keyboard_holds_in_the_next_call() -> None:
    backend = DemoBackend(Settings(), traffic=False)
    app = AxApp(backend, blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, timeout=60)
        assert backend.engine is not None and backend.error is None
        ok = await asyncio.to_thread(_call, backend, "tester")
        assert ok.status == "ok" and ok.cost_nanos

        await pilot.press("3")
        await settle(pilot)
        assert isinstance(app.screen, BudgetsScreen)
        form = await open_form(pilot, "a")
        form.query_one("#f-scope", Input).value = "user:tester"
        form.query_one("#f-amount", Input).value = "0.000001"
        form.query_one("#f-hard").value = True  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await until(lambda: not isinstance(app.screen, FormScreen), pilot=pilot)  # saved, and the engine told
        assert any(str(b.scope) == "user:tester" for b in list_budgets(backend.store))
        refused = await asyncio.to_thread(_call, backend, "tester")
        assert isinstance(refused, BudgetExceeded)
        assert (await asyncio.to_thread(_call, backend, "someone-else")).status == "ok"

        screen = app.screen
        assert isinstance(screen, BudgetsScreen)
        await until(lambda: screen.query_one("#budgets", DataTable).row_count == len(list_budgets(backend.store)), pilot=pilot)
        budget = next(b for b in list_budgets(backend.store) if str(b.scope) == "user:tester")
        table = screen.query_one("#budgets", DataTable)
        table.focus()
        table.move_cursor(row=table.get_row_index(str(budget.id)))
        await pilot.press("enter")
        await pilot.pause()
        assert screen.query(CellEditor)
        await pilot.press(*"5", "enter")
        await until(lambda: not screen.query(CellEditor), pilot=pilot)  # saved, and the engine told
        assert next(b for b in list_budgets(backend.store) if b.id == budget.id).limit_nanos == 5_000_000_000
        again = await asyncio.to_thread(_call, backend, "tester")
        assert not isinstance(again, BudgetExceeded) and again.status == "ok"


@pytest.mark.parametrize("t", [0.0, 10.0, 30.0, 45.0, 60.0, 89.0])
def test_demo_traffic_stays_between_the_floor_and_the_peak(t: float) -> None:
    extra = wave_rps(t)
    assert 0.0 <= extra <= 46.0
