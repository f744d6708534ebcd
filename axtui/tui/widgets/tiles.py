"""A headline number with its sparkline: one tile of the realtime header."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

__all__ = ["StatTile"]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


class StatTile(Vertical):
    """A label, a value and a sparkline of the value's recent history.

    Args:
        label: the short name shown before the value.
        tile_id: the widget id.
        peak: summarise each sparkline bar by its peak (latencies) rather than its mean (rates).
        short: the label on a narrow terminal.
    """

    def __init__(self, label: str, *, tile_id: str, peak: bool = False, short: str | None = None) -> None:
        super().__init__(id=tile_id, classes="tile")
        self.label = label
        self.short = short or label
        self.peak = peak
        self._value = ""
        self._tone = ""
        self._narrow = False

    def compose(self) -> ComposeResult:
        yield Static(self._line("–"), classes="tile-value")
        yield Sparkline([], summary_function=max if self.peak else _mean, classes="tile-spark")

    def _line(self, value: str) -> str:
        label = self.short if self.app.size.width < 110 else self.label
        return f"[dim]{label}[/] [b]{value}[/]"

    def show(self, value: str, series: Sequence[float], tone: str = "") -> None:
        """Set the value (redrawn only when its text changed) and the sparkline's data.

        ``tone`` is ``""``, ``warn`` or ``bad``: the tile's colour class.
        """
        narrow = self.app.size.width < 110
        if value != self._value or narrow != self._narrow:
            self._narrow = narrow
            self._value = value
            self.query_one(".tile-value", Static).update(self._line(value))
        if tone != self._tone:
            if self._tone:
                self.remove_class(f"-{self._tone}")
            if tone:
                self.add_class(f"-{tone}")
            self._tone = tone
        self.query_one(Sparkline).data = list(series)
