"""The top line of every screen: the screens by number, and the state of the feed."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.events import Click
from textual.reactive import reactive
from textual.widgets import Static

from axtui.tui.messages import SwitchScreen
from axtui.tui.screens import SCREENS

__all__ = ["NavBar"]


class _Tab(Static):
    """One screen's name; a click goes there."""

    def __init__(self, mode: str, key: str, title: str, active: bool) -> None:
        super().__init__(f"[b]{key}[/] {title}", classes="tab -active" if active else "tab")
        self.mode = mode

    def on_click(self, event: Click) -> None:
        event.stop()
        self.post_message(SwitchScreen(self.mode))


class NavBar(Horizontal):
    """Screen tabs on the left; source, live state, firing alerts and the clock on the right."""

    #: Text of the status area (source, live state, clock).
    status: reactive[str] = reactive("", layout=False)

    def __init__(self, active: str) -> None:
        super().__init__()
        self.active = active
        self._status = Static(id="nav-status", markup=True)

    def compose(self) -> ComposeResult:
        yield Static("ax", classes="brand")
        for mode, key, title in SCREENS:
            yield _Tab(mode, key, title, mode == self.active)
        yield self._status

    def watch_status(self, value: str) -> None:
        # Held, not queried: the status may change while the bar's children are being mounted or removed.
        self._status.update(value)
