"""Theme colours for Rich text (table cells, log lines), which CSS variables cannot reach."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import App
from textual.color import Color

__all__ = ["Palette"]


@dataclass(frozen=True, slots=True)
class Palette:
    """The current theme's status colours as Rich style strings."""

    ok: str
    warn: str
    bad: str
    muted: str
    accent: str
    primary: str

    @classmethod
    def of(cls, app: App[object]) -> Palette:
        """The palette of ``app``'s current theme (cached per theme)."""
        cache: dict[str, Palette] = app.__dict__.setdefault("_ax_palettes", {})
        found = cache.get(app.theme)
        if found is None:
            v = app.get_css_variables()
            found = cache[app.theme] = cls(
                ok=v.get("success", "green"),
                warn=v.get("warning", "yellow"),
                bad=v.get("error", "red"),
                muted=_muted(v.get("foreground", "#E0E0E0"), v.get("background", "#121212")),
                accent=v.get("accent", "cyan"),
                primary=v.get("primary", "blue"),
            )
        return found

    def status(self, status: str) -> str:
        """The colour of a call status."""
        if status == "ok":
            return self.ok
        if status in ("rate_limited", "budget_refused", "cancelled"):
            return self.warn
        return self.bad


def _muted(foreground: str, background: str) -> str:
    """The foreground 40 % of the way to the background: secondary text."""
    try:
        return Color.parse(foreground).blend(Color.parse(background), 0.4).hex
    except Exception:  # an odd theme value: plain grey reads on any background
        return "grey50"
