"""``ax monitor realtime``: the full-screen dashboard.

Textual is imported only when the command runs, never by ``ax monitor``'s
other subcommands.
"""

from __future__ import annotations

import click

from axtui.cli._common import handle_errors

__all__ = ["realtime"]


@click.command()
@click.option("--demo/--no-demo", default=None,
              help="Run the engine here on the simulated fleet with demo traffic "
                   "(the default when no provider is configured).")
@click.option("--url", metavar="GATEWAY", help="Watch a running `ax serve` (e.g. http://127.0.0.1:8787).")
@click.option("--theme", metavar="NAME", help="dark, light, high-contrast, or one of your own themes.")
@click.option("--refresh", "refresh_hz", type=click.FloatRange(0.1, 20), metavar="HZ",
              help="Screen refreshes per second (default: ui.refresh_hz, 2).")
@handle_errors
def realtime(demo: bool | None, url: str | None, theme: str | None, refresh_hz: float | None) -> None:
    """The live dashboard: traffic, costs, budgets and limits, alerts, routing.

    \b
    Keys: 1-5 screens, ? help, ctrl+p palette, x export, p pause, +/- refresh rate, q quit.

    \b
    Examples:
      ax monitor realtime --demo
      ax monitor realtime --url http://127.0.0.1:8787 --theme light
    """
    from axtui.store.audit import cli_actor, set_process_actor
    from axtui.tui import run_dashboard

    set_process_actor(cli_actor(), "dashboard")  # the dashboard's changes are audited as made there
    run_dashboard(demo=demo, url=url, theme=theme, refresh_hz=refresh_hz)
