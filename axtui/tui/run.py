"""Starting the dashboard from the command line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from axtui import locations
from axtui.clock import SYSTEM_CLOCK
from axtui.errors import ConfigError

__all__ = ["log_path", "run_dashboard"]


def log_path() -> Path:
    """Where the dashboard's process logs while the screen is taken (warnings from the engine, …)."""
    return locations.data_dir() / "dashboard.log"


@contextmanager
def _logs_to_file() -> Iterator[None]:
    """Send log records to `log_path` while the app owns the terminal, so none lands on the screen."""
    root = logging.getLogger()
    on_terminal = [h for h in root.handlers if isinstance(h, logging.StreamHandler)
                   and not isinstance(h, logging.FileHandler)]
    for handler in on_terminal:
        root.removeHandler(handler)
    path = locations.create_private(log_path())  # engine warnings name users and models: the owner's only
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_file.setLevel(logging.WARNING)
    root.addHandler(to_file)
    try:
        yield
    finally:
        root.removeHandler(to_file)
        to_file.close()
        for handler in on_terminal:
            root.addHandler(handler)


def run_dashboard(*, demo: bool | None, url: str | None, theme: str | None, refresh_hz: float | None = None) -> None:
    """Open the dashboard on the backend the options name; returns when the user quits.

    Raises:
        ConfigError: an unknown theme, a broken config file, or both ``demo`` and ``url``.
        SystemExit: the app crashed (Textual has printed the traceback); the status is non-zero.
    """
    from axtui.tui.app import AxApp
    from axtui.tui.data import open_backend
    from axtui.tui.themes import load_themes

    themes = load_themes()
    if theme is not None and theme not in themes.themes:
        names = ", ".join(themes.names()) or "none (the themes folder is missing)"
        raise ConfigError(f"no theme named {theme!r}; themes: {names}. Add your own as a .toml file in "
                          f"{locations.user_themes_dir()}")
    backend = open_backend(demo=demo, url=url, clock=SYSTEM_CLOCK)
    app = AxApp(backend, theme=theme, themes=themes, refresh_hz=refresh_hz)
    with _logs_to_file():
        app.run()
    if app.return_code:
        raise SystemExit(app.return_code)
