"""Starting the dashboard from the command line."""

from __future__ import annotations

from axtui.clock import SYSTEM_CLOCK
from axtui.errors import ConfigError

__all__ = ["run_dashboard"]


def run_dashboard(*, demo: bool | None, url: str | None, theme: str | None, refresh_hz: float | None = None) -> None:
    """Open the dashboard on the backend the options name; returns when the user quits.

    Raises:
        ConfigError: an unknown theme, a broken config file, or both ``demo`` and ``url``.
    """
    from axtui.tui.app import AxApp
    from axtui.tui.data import open_backend
    from axtui.tui.themes import load_themes

    themes = load_themes()
    if theme is not None and theme not in themes.themes:
        names = ", ".join(themes.names()) or "none (the themes folder is missing)"
        raise ConfigError(f"no theme named {theme!r}; themes: {names}. Add your own as a .toml file in "
                          f"{__import__('axtui.locations').locations.user_themes_dir()}")
    backend = open_backend(demo=demo, url=url, clock=SYSTEM_CLOCK)
    AxApp(backend, theme=theme, themes=themes, refresh_hz=refresh_hz).run()
