"""A headline number with its sparkline: one tile of the realtime header."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult, RenderResult
from textual.color import Color
from textual.containers import Vertical
from textual.strip import Strip
from textual.widgets import Sparkline, Static

__all__ = ["StatTile", "WindowSpark", "spark_rows"]

_LEVELS = " ▁▂▃▄▅▆▇█"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def spark_rows(values: Sequence[float | None], width: int, height: int, *, floor: float = 0.0,
               summary: Callable[[Sequence[float]], float] = max) -> list[list[tuple[str, float]]]:
    """The cells of a sparkline: ``height`` rows of ``width`` (character, fill ratio), top row first.

    The whole window always spans the width, so five and fifteen minutes
    draw differently even when the source started a minute ago; seconds
    not observed (None) stay blank. Bars rise from zero to the larger of
    the highest value and ``floor``, so a 0.1 % error rate under a 5 %
    floor is a sliver, not a full bar.
    """
    if width <= 0 or height <= 0:
        return []
    n = len(values)
    known = [v for v in values if v is not None]
    top = max([floor, *known]) or 1.0
    columns: list[float | None] = []
    for i in range(width):
        lo, hi = i * n // width, max((i + 1) * n // width, i * n // width + 1)
        bucket = [v for v in values[lo:min(hi, n)] if v is not None]
        columns.append(summary(bucket) / top if bucket and n else None)
    rows: list[list[tuple[str, float]]] = []
    for r in range(height):
        below = height - 1 - r  # rows beneath this one
        row = []
        for ratio in columns:
            if ratio is None:
                row.append((" ", 0.0))
                continue
            eighths = round(max(0.0, min(1.0, ratio)) * height * 8) - below * 8
            if below == 0:
                eighths = max(1, eighths)  # an observed zero still shows as a floor line
            row.append((_LEVELS[max(0, min(8, eighths))], ratio))
        rows.append(row)
    return rows


class WindowSpark(Sparkline):
    """A sparkline over a fixed window with a fixed floor of scale (see `spark_rows`).

    Args:
        floor: the value a full bar stands for at least.
        summary: how the values under one bar are summarised (max for latencies, mean for rates).
    """

    def __init__(self, *, floor: float = 0.0, summary: Callable[[Sequence[float]], float] = _mean,
                 classes: str | None = None) -> None:
        super().__init__([], summary_function=summary, classes=classes)
        self.floor = floor
        self.values: list[float | None] = []
        self._rows: tuple[tuple[int, int], list[list[tuple[str, float]]]] | None = None

    def set_values(self, values: Sequence[float | None]) -> None:
        """Draw ``values`` (None for seconds not observed), oldest first."""
        values = list(values)
        if values != self.values:
            self.values = values
            self._rows = None
            self.refresh()

    def render(self) -> RenderResult:
        return ""

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        if self._rows is None or self._rows[0] != (width, height):
            # Computed once per new data or size, not once per line of each frame.
            self._rows = ((width, height), spark_rows(self.values, width, height, floor=self.floor,
                                                      summary=self.summary_function))
        rows = self._rows[1]
        if not 0 <= y < len(rows):
            return Strip.blank(width)
        _, base = self.background_colors
        low = base + self.get_component_styles("sparkline--min-color").color
        high = base + self.get_component_styles("sparkline--max-color").color
        segments = []
        for char, ratio in rows[y]:
            color: Color = low.blend(high, ratio)
            segments.append(Segment(char, Style(color=color.rich_color, bgcolor=base.rich_color)))
        return Strip(segments, width)


class StatTile(Vertical):
    """A label, a value and a sparkline of the value's recent history.

    Args:
        label: the short name shown before the value.
        tile_id: the widget id.
        peak: summarise each sparkline bar by its peak (latencies) rather than its mean (rates).
        short: the label on a narrow terminal.
    """

    def __init__(self, label: str, *, tile_id: str, peak: bool = False, short: str | None = None,
                 floor: float = 0.0) -> None:
        super().__init__(id=tile_id, classes="tile")
        self.label = label
        self.short = short or label
        self.peak = peak
        self.floor = floor
        self._value = ""
        self._tone = ""
        self._narrow = False

    def compose(self) -> ComposeResult:
        yield Static(self._line("–"), classes="tile-value")
        yield WindowSpark(floor=self.floor, summary=max if self.peak else _mean, classes="tile-spark")

    def _line(self, value: str) -> str:
        label = self.short if self.app.size.width < 110 else self.label
        return f"[dim]{label}[/] [b]{value}[/]"

    def show(self, value: str, series: Sequence[float | None], tone: str = "") -> None:
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
        self.query_one(WindowSpark).set_values(series)
