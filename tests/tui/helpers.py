"""Driving the dashboard in tests: build it on seeded data, wait for it to settle."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from axtui.tui.app import AxApp
from axtui.tui.screens.form import FormScreen
from axtui.tui.themes import ThemeSet, load_themes

from ..support import until
from .seed import Seeded


def make_app(seeded: Seeded, *, theme: str | None = None, themes: ThemeSet | None = None,
             refresh_hz: float = 2.0) -> AxApp:
    """The dashboard over the seeded store, still (no blinking, no animation)."""
    app = AxApp(seeded.backend(), theme=theme, themes=themes if themes is not None else load_themes(),
                refresh_hz=refresh_hz, blink=False)
    app.animation_level = "none"
    return app


async def settle(pilot: Pilot[Any], fetches: int = 1, timeout: float = 10.0) -> None:
    """Wait until the backend started and the screen on top has drawn ``fetches`` times."""
    app = pilot.app
    await until(lambda: getattr(app, "started", False) and getattr(app.screen, "fetches", fetches) >= fetches,
                pilot=pilot, timeout=timeout)


async def open_screen(pilot: Pilot[Any], key: str, kind: type) -> Any:
    """Press ``key`` (a screen's number) once the app has settled; the screen it opens, checked to be a ``kind``."""
    await settle(pilot)
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(pilot.app.screen, kind)
    return pilot.app.screen


async def refetch(pilot: Pilot[Any], screen: Any = None) -> None:
    """Make ``screen`` (the screen on top, by default) fetch again and wait for it to draw."""
    screen = pilot.app.screen if screen is None else screen
    before = screen.fetches
    screen.refresh_now()
    await until(lambda: screen.fetches > before, pilot=pilot)


async def open_form(pilot: Pilot[Any], key: str) -> FormScreen:
    """Press ``key`` on the screen on top and return the form it opens."""
    await pilot.press(key)
    await pilot.pause()
    form = pilot.app.screen
    assert isinstance(form, FormScreen), f"{key!r} opened {type(form).__name__}, not a form"
    return form
