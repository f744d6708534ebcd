"""`ax serve` as a user meets it: clear refusals, and no dashboard code loaded."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from axtui.cli import main


def test_port_in_use_is_a_clear_usage_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--port", str(port)])
    assert result.exit_code == 2
    assert f"port {port}" in result.stderr and "--port" in result.stderr


def test_bad_port_is_refused_by_the_option() -> None:
    result = CliRunner().invoke(main, ["serve", "--port", "70000"])
    assert result.exit_code == 2 and "70000" in result.output


@pytest.mark.processes
def test_the_server_never_imports_textual() -> None:
    code = (
        "import sys\n"
        "from axtui.cli.serve import serve\n"
        "from axtui.cli.keys import keys\n"
        "from axtui.server.app import create_app\n"
        "import axtui.server.metrics_api, axtui.server.admin_api, axtui.server.run\n"
        "create_app()\n"
        "assert 'textual' not in sys.modules, sorted(m for m in sys.modules if m.startswith('textual'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
