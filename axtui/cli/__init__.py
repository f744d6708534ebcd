"""The ``ax`` command. One module per command group, loaded on first use.

Loading lazily keeps ``ax --help`` and the headless commands fast, and keeps
``textual`` out of every command but ``ax monitor realtime``.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

from axtui import __version__

__all__ = ["main"]

#: command name -> (module, attribute, one-line help); the help is written out so that ``ax --help`` imports no
#: command, and a test checks that a list of subcommands in it names them all.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "call": ("axtui.cli.call", "call", "Send one prompt through the gateway and print the answer."),
    "cost": ("axtui.cli.cost", "cost", "Spending: summary, breakdown, estimate, whatif, budget, alerts, prices."),
    "ratelimit": ("axtui.cli.ratelimit", "ratelimit", "Rate limits: status, set, reset, delete, config."),
    "monitor": ("axtui.cli.monitor", "monitor", "The dashboard, alert rules and exports."),
    "cache": ("axtui.cli.cache", "cache", "The response cache: stats, clear, invalidate, eval."),
    "route": ("axtui.cli.route", "route", "Routing: explain a choice, health, rules, A/B tests."),
    "serve": ("axtui.cli.serve", "serve", "Run the OpenAI-compatible gateway server."),
    "sim": ("axtui.cli.sim", "sim", "The simulated provider fleet: serve it, drive load through ax."),
    "keys": ("axtui.cli.keys", "keys", "Gateway API keys: create, list, update, rotate, revoke."),
    "teams": ("axtui.cli.teams", "teams", "Teams: members, budgets, limits and allowed models."),
    "audit": ("axtui.cli.audit", "audit", "Every admin change: who, when, what, before and after."),
    "db": ("axtui.cli.db", "db", "The database: upgrade, path, backup."),
    "config": ("axtui.cli.config", "config", "The config file: path, show, init, import."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n, (mod, _, _) in COMMANDS.items() if importlib.util.find_spec(mod) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attr, _ = entry
        try:
            return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
        except ModuleNotFoundError as exc:
            if exc.name == module:
                return None
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ax")
def main() -> None:
    """ax: a local-first gateway for LLM provider calls.

    With no providers configured, ax serves a built-in simulated fleet, so
    every command works on a fresh machine. `ax config init` writes an
    example config with real providers.
    """


def run() -> Any:
    """Entry point for ``python -m axtui``."""
    return main()
