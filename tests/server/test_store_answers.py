"""Calls a broken store refuses: each client gets a clear 503, the log says why without repeating it per call."""

from __future__ import annotations

import logging

import pytest

from axtui.errors import RecorderFull, StoreLocked
from axtui.server import errors
from axtui.server.errors import error_payload


def test_a_store_refusing_every_call_is_logged_once_a_while_not_once_per_call(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    monkeypatch.setattr(errors, "_STORE_ANSWERS", errors.RepeatedWarning(every_s=10, clock=lambda: now[0]))
    full = RecorderFull("ax cannot write its call records right now, so the call was not served; retry shortly")
    locked = StoreLocked("the database sqlite:////x/ax.db stayed locked for more than 5s; close the other program")
    with caplog.at_level(logging.WARNING, logger="axtui.server.errors"):
        for _ in range(500):  # a read-only or full database under load: hundreds of refusals a second
            status, body, _ = error_payload(full)
            assert status == 503 and "cannot be used right now" in body["error"]["message"]
        error_payload(locked)  # another cause is said at once
        now[0] += 11
        error_payload(full)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert lines[0] == f"answered 503: {full.message}"
    assert "stayed locked" in lines[1]
    assert lines[2] == f"answered 503: {full.message} (and 499 more such answers in the last 11 s)"
