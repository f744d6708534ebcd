"""Help that lists choices lists all of them: subcommands in `ax --help`, `--by` values, routing strategies."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from axtui.cli import COMMANDS, main
from axtui.config import ROUTING_STRATEGIES


def _listed(line: str) -> list[str] | None:
    """The words after the colon of ``Rate limits: status, set, reset.``, or None when that is not a list of words."""
    _, colon, rest = line.partition(": ")
    items = [item.strip() for item in rest.rstrip(".").split(",")]
    return items if colon and all(re.fullmatch(r"[a-z-]+", item) for item in items) else None


def _group(name: str) -> click.Group | None:
    command = main.get_command(click.Context(main), name)
    return command if isinstance(command, click.Group) else None


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_list_of_subcommands_in_the_help_names_every_one(name: str) -> None:
    group = _group(name)
    if group is None:
        pytest.skip(f"ax {name} has no subcommands")
    subcommands = set(group.list_commands(click.Context(group)))
    for line in (COMMANDS[name][2], (group.help or "").strip().splitlines()[0]):
        listed = _listed(line)
        if listed is not None:
            assert set(listed) == subcommands, f"{line!r} should name {sorted(subcommands)}"


def test_ax_help_names_every_ratelimit_subcommand() -> None:
    out = CliRunner().invoke(main, ["--help"]).output
    line = next(line for line in out.splitlines() if line.strip().startswith("ratelimit"))
    assert all(word in line for word in ("status", "set", "delete", "reset", "config")), line


def test_breakdown_help_names_every_grouping() -> None:
    from axtui.cost.reports import BREAKDOWNS

    out = " ".join(CliRunner().invoke(main, ["cost", "breakdown", "--help"]).output.split())
    first = out.split("Spend grouped by ", 1)[1].split(".", 1)[0]
    assert re.split(r", | or ", first) == list(BREAKDOWNS)
    assert "[" + "|".join(BREAKDOWNS) + "]" in out


def test_the_example_config_names_every_strategy() -> None:
    from axtui.cli.config import EXAMPLE

    line = next(line for line in EXAMPLE.splitlines() if line.startswith("strategy = "))
    assert line.split("# ", 1)[1].split(" | ") == list(ROUTING_STRATEGIES)
