"""``ax monitor realtime`` on the command line: bad options are refused before anything opens."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from axtui.cli import main


def test_an_unknown_theme_is_refused_with_the_list() -> None:
    result = CliRunner().invoke(main, ["monitor", "realtime", "--theme", "neon"])
    assert result.exit_code == 2
    assert "no theme named 'neon'" in result.output
    assert "dark, high-contrast, light" in result.output


def test_demo_and_url_exclude_each_other() -> None:
    result = CliRunner().invoke(main, ["monitor", "realtime", "--demo", "--url", "http://127.0.0.1:8787"])
    assert result.exit_code == 2
    assert "exclude each other" in result.output


def test_the_help_names_the_keys() -> None:
    result = CliRunner().invoke(main, ["monitor", "realtime", "--help"])
    assert result.exit_code == 0
    assert "--theme" in result.output and "? help" in result.output


def test_the_help_names_every_screen_the_dashboard_has() -> None:
    from axtui.tui.app import AxApp
    from axtui.tui.screens import SCREENS

    text = " ".join(CliRunner().invoke(main, ["monitor", "realtime", "--help"]).output.split())
    assert f"Keys: 1-{len(AxApp.MODES)} screens" in text
    assert "(" + ", ".join(title for mode, _, title in SCREENS if mode in AxApp.MODES) + ")" in text
    assert "ctrl+p or : palette" in text and "p pause/resume" in text


@pytest.mark.processes
def test_the_monitor_group_does_not_import_textual() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from axtui.cli import main\n"
        "r = CliRunner().invoke(main, ['monitor', '--help'])\n"
        "assert r.exit_code == 0 and 'realtime' in r.output, r.output\n"
        "print('textual' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.processes
def test_the_dashboards_help_does_not_import_textual() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from axtui.cli import main\n"
        "r = CliRunner().invoke(main, ['monitor', 'realtime', '--help'])\n"
        "assert r.exit_code == 0 and 'Keys: 1-6' in r.output, r.output\n"
        "print('textual' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
