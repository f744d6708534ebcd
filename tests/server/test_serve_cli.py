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


def test_no_auth_on_a_network_address_refuses_to_start_unless_told() -> None:
    result = CliRunner().invoke(main, ["serve", "--no-auth", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2
    assert "--no-auth" in result.stderr and "--allow-no-auth-remote" in result.stderr


def test_a_short_admin_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AX_ADMIN_KEY", "hunter2")
    result = CliRunner().invoke(main, ["serve", "--port", "1"])
    assert result.exit_code != 0
    assert "AX_ADMIN_KEY" in result.stderr and "at least 16" in result.stderr


def test_library_modules_leave_process_settings_alone() -> None:
    """The recorder no longer sets the switch interval; the `ax serve` entry point does."""
    from axtui.server.run import SWITCH_INTERVAL_S, tune_process
    from axtui.store import Store
    from axtui.store.recorder import Recorder

    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        store = Store.open()
        Recorder(store).close()
        store.close()
        assert sys.getswitchinterval() == 0.005
        tune_process()
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S
    finally:
        sys.setswitchinterval(before)


def test_routers_do_not_import_the_app() -> None:
    """The app imports its routers and the dependencies they share; nothing imports the app back."""
    import ast
    from pathlib import Path

    import axtui.server

    folder = Path(axtui.server.__file__).parent
    for module in folder.glob("*.py"):
        if module.name in ("__init__.py", "app.py", "run.py"):
            continue
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "axtui.server.app", f"{module.name} imports the app"
