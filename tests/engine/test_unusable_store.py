"""A store the gateway cannot use: refused before serving, explained while serving, never a hang on stop."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DatabaseError

from axtui.config import Settings
from axtui.cost._ledger import Ledger
from axtui.cost.budgets import Scope, set_budget
from axtui.engine.compose import build_gateway
from axtui.errors import StoreError
from axtui.store import Store
from axtui.types import Caller
from tests.support import chat_request

USD = 10**9


def _settings() -> Settings:
    return Settings.model_validate({
        "providers": [{"name": "openai", "kind": "sim", "profile": "fast", "models": ["gpt-4o-mini"]}],
        "cache": {"enabled": False},
        "budgets": {"lease_s": 1},
    })


def _budget_for_alice() -> None:
    store = Store.open()
    set_budget(store, Scope("user", "alice"), "day", USD, hard=True, now=time.time())
    store.close()


def _read_only(dbapi_conn: Any, _record: Any) -> None:
    # As a read-only file, folder or disk does: every write is refused ("attempt to write a readonly database").
    dbapi_conn.execute("PRAGMA query_only = ON")


async def test_a_gateway_that_records_refuses_a_store_it_cannot_write() -> None:
    """Served calls whose records could never be written would be lost: it says so before serving any."""
    store = Store.open()
    event.listen(store.engine, "connect", _read_only)
    store.engine.dispose()
    with pytest.raises(StoreError, match="is read-only to ax; check that this user may write both the file and its folder"):
        await build_gateway(_settings(), store=store)
    gateway = await build_gateway(_settings(), store=store, record=False)  # one that records nothing may read it
    await gateway.aclose()
    store.close()


def _malformed(*_args: Any) -> None:
    raise DatabaseError("UPDATE cost_budget_windows SET …", {}, sqlite3.DatabaseError("database disk image is malformed"))


async def test_a_damaged_database_under_the_budget_counters_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    _budget_for_alice()
    gateway = await build_gateway(_settings())
    try:
        monkeypatch.setattr(Ledger, "run", _malformed)
        with pytest.raises(StoreError) as refused:
            await gateway.call(chat_request("gpt-4o-mini"), Caller("alice"))
        assert "is not a SQLite database or is damaged" in refused.value.message
        assert "[SQL" not in refused.value.message
        monkeypatch.setattr(type(gateway.budgets), "_reconcile", _malformed)
        with pytest.raises(StoreError, match="is not a SQLite database or is damaged"):
            gateway.budgets.refresh()  # type: ignore[attr-defined]
    finally:
        monkeypatch.undo()
        await gateway.aclose()


async def test_a_stop_gives_up_on_budget_counters_the_store_refuses_and_still_writes_the_records(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _budget_for_alice()
    gateway = await build_gateway(_settings())
    await gateway.call(chat_request("gpt-4o-mini"), Caller("alice"))  # its cost waits to be written

    def full(*_args: Any) -> None:
        raise StoreError("the disk holding ax.db is full; free some space (or move AX_HOME) and retry")

    monkeypatch.setattr(Ledger, "run", full)
    with caplog.at_level(logging.ERROR, logger="axtui.cost.enforcement"):
        # A stop that waited for the counters for ever never reached the records (the guard only stops a hang).
        await asyncio.wait_for(gateway.aclose(), 15)
    assert "the cost of 1 call(s)" in caplog.text and "could not be written before stopping" in caplog.text
    assert "the disk holding ax.db is full" in caplog.text
    store = Store.open()
    with store.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM calls WHERE user = 'alice'")).scalar_one() == 1
    store.close()
