"""A call's cost reaches its budget once, however the recorder and the budget counters interleave.

The recorder writes a call's record (and its spend rollups) while the budget
book writes the call's cost to the counters a moment later; every
``budgets.refresh_s`` a gateway raises a counter to the recorded spend, to
count calls that reached no counter. A record written before its cost was
must not be counted twice.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from axtui.config import Settings
from axtui.cost import enforcement
from axtui.cost._ledger import Ledger
from axtui.cost.budgets import Scope, set_budget
from axtui.cost.enforcement import BudgetBook
from axtui.engine.compose import build_gateway
from axtui.errors import StoreLocked
from axtui.store import Store
from axtui.types import Caller
from tests.support import chat_request

USD = 10**9


def _settings() -> Settings:
    return Settings.model_validate({
        "providers": [{"name": "openai", "kind": "sim", "profile": "fast", "models": ["gpt-4o-mini"]}],
        "cache": {"enabled": False},
    })


def _spent_and_recorded(store: Store) -> tuple[int, int]:
    with store.connect() as conn:
        spent = conn.execute(text("SELECT spent_nanos FROM cost_budget_windows")).scalar_one()
        recorded = conn.execute(text("SELECT sum(cost_nanos) FROM calls")).scalar_one()
    return int(spent), int(recorded)


async def test_a_record_written_before_its_cost_is_not_counted_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    # The book writes costs late (a busy database, a slow pass): the recorder gets there first.
    monkeypatch.setattr(enforcement, "_LINGER_S", 2.0)
    store = Store.open()
    set_budget(store, Scope("user", "alice"), "day", USD, hard=True, now=time.time())
    gateway = await build_gateway(_settings(), store=store)
    try:
        book = gateway.budgets
        assert isinstance(book, BudgetBook)
        for i in range(3):
            await gateway.call(chat_request("gpt-4o-mini", f"question {i}"), Caller("alice"))
        assert gateway.recorder is not None
        assert await asyncio.to_thread(gateway.recorder.flush)  # the records and their rollups
        book.refresh()  # what every gateway sharing the store does every refresh_s
        await book.flush()
        spent, recorded = _spent_and_recorded(store)
        assert recorded > 0
        assert spent == recorded
    finally:
        await gateway.aclose()
        store.close()


async def test_records_written_while_the_counters_could_not_be_are_not_counted_twice(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorder does not wait for the counters for ever: after a database outage its records may land first."""
    store = Store.open()
    set_budget(store, Scope("user", "alice"), "day", USD, hard=True, now=time.time())
    gateway = await build_gateway(_settings(), store=store)
    try:
        book = gateway.budgets
        assert isinstance(book, BudgetBook) and gateway.recorder is not None
        for i in range(3):
            await gateway.call(chat_request("gpt-4o-mini", f"question {i}"), Caller("alice"))

        def locked(*_args: object) -> None:
            raise StoreLocked("the database stayed locked for more than 5s; close the other program")

        with monkeypatch.context() as outage:
            outage.setattr(Ledger, "run", locked)  # the counters' writes fail; the records' go through
            assert await asyncio.to_thread(gateway.recorder.flush)
            book.refresh()
        await book.flush()
        spent, recorded = _spent_and_recorded(store)
        assert recorded > 0
        assert spent == recorded
    finally:
        await gateway.aclose()
        store.close()
