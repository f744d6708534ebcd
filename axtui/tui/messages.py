"""Messages between the dashboard's parts: small dataclasses, nothing else.

Backends run in other threads; they reach the UI only by posting these
(``App.post_message`` is thread-safe).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from axtui.bus import AlertChanged, BudgetCrossed

__all__ = ["AlertEventArrived", "BackendFailed", "BackendStarted", "DataChanged", "SwitchScreen"]


@dataclass
class AlertEventArrived(Message):
    """An alert rule changed state, or a budget crossed a threshold."""

    event: AlertChanged | BudgetCrossed


@dataclass
class BackendStarted(Message):
    """The backend finished starting; screens may fetch."""


@dataclass
class BackendFailed(Message):
    """The backend could not start; ``error`` says why and what to do."""

    error: str


@dataclass
class DataChanged(Message):
    """Something was written (a budget, a limit, a rule): screens showing ``what`` fetch now."""

    what: str


@dataclass
class SwitchScreen(Message):
    """Go to the screen (mode) named ``mode``: a click on the navigation bar."""

    mode: str
