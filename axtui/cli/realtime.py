"""``ax monitor realtime``: the full-screen dashboard.

Textual is imported only when the command runs, never by ``ax monitor``'s
other subcommands.
"""

from __future__ import annotations

import click

from axtui.cli._common import handle_errors
from axtui.tui.screens import screen_keys, screen_titles

__all__ = ["realtime"]


_HELP = f"""The live dashboard: traffic, costs, budgets, limits, alerts, routing, keys.

    Keys: {screen_keys()} screens ({screen_titles()}), ? help, ctrl+p or : palette,
    x export, p pause/resume, +/- refresh rate, q quit.

    \b
    Examples:
      ax monitor realtime --demo
      ax monitor realtime --url http://127.0.0.1:8787 --theme light
    """


@click.command(help=_HELP)
@click.option("--demo/--no-demo", default=None,
              help="Run the engine here on the simulated fleet with demo traffic "
                   "(the default when no provider is configured).")
@click.option("--url", metavar="GATEWAY", help="Watch a running `ax serve` (e.g. http://127.0.0.1:8787).")
@click.option("--theme", metavar="NAME", help="dark, light, high-contrast, or one of your own themes.")
@click.option("--refresh", "refresh_hz", type=click.FloatRange(0.1, 20), metavar="HZ",
              help="Screen refreshes per second (default: ui.refresh_hz, 2).")
@handle_errors
def realtime(demo: bool | None, url: str | None, theme: str | None, refresh_hz: float | None) -> None:
    """Run the dashboard (its help, `_HELP`, names the screens from the dashboard's own list)."""
    from axtui.store.audit import cli_actor, set_process_actor
    from axtui.tui import run_dashboard

    set_process_actor(cli_actor(), "dashboard")  # the dashboard's changes are audited as made there
    run_dashboard(demo=demo, url=url, theme=theme, refresh_hz=refresh_hz)
