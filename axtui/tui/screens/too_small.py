"""What the dashboard shows when the terminal is too small to lay it out."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Middle
from textual.screen import Screen
from textual.widgets import Static

__all__ = ["TooSmallScreen"]


class TooSmallScreen(Screen[None]):
    """A clear message instead of a broken layout; it goes away when the terminal grows."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, minimum: tuple[int, int]) -> None:
        super().__init__()
        self.minimum = minimum

    def compose(self) -> ComposeResult:
        with Middle(), Center():
            yield Static(id="too-small-text")

    def on_mount(self) -> None:
        self._describe()

    def on_resize(self) -> None:
        self._describe()

    def _describe(self) -> None:
        w, h = self.app.size
        mw, mh = self.minimum
        self.query_one("#too-small-text", Static).update(
            f"[b]The terminal is too small[/]\n\n"
            f"ax needs {mw}×{mh}; this one is {w}×{h}.\n"
            f"Make the window larger, or the font smaller.\n\n[dim]q quits[/]"
        )
