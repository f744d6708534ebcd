"""Headless paths never import textual: each command runs in a fresh interpreter that then lists what it loaded.

Only `ax monitor realtime` may load the dashboard's toolkit; a server, a
cron job or a CI step running the others must not pay for it (or need it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from axtui import locations

pytestmark = pytest.mark.processes

_PROBE = textwrap.dedent(
    """
    import json, sys
    args = json.loads(sys.argv[1])
    code = 0
    if args[0] == "import":
        import importlib
        for name in args[1:]:
            importlib.import_module(name)
    else:
        from axtui.cli import main
        try:
            main(args, standalone_mode=False)
        except SystemExit as exc:
            code = exc.code or 0
    loaded = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
    sys.stdout.flush()
    print("\\n" + json.dumps({"code": code, "textual": loaded[:5]}), file=sys.stderr)
    """
)

FAST_FLEET = """
[[providers]]
name = "sim"
kind = "sim"
profile = "fast"
models = ["gpt-4o-mini"]
"""


def _probe(args: list[str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)], capture_output=True, text=True, timeout=180, check=False
    )
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    try:
        return json.loads(last)  # type: ignore[no-any-return]
    except json.JSONDecodeError:
        raise AssertionError(f"the probe of {args} failed:\n{proc.stderr[-3000:]}") from None


@pytest.fixture(autouse=True)
def _fast_fleet(ax_home: Path) -> None:
    locations.config_path().write_text(FAST_FLEET)


@pytest.mark.parametrize(
    "args",
    [
        ["cost", "summary"],
        ["ratelimit", "status"],
        ["monitor", "export"],
        ["cache", "stats"],
        ["route", "status"],
        ["keys", "list"],
        ["db", "path"],
        ["call", "hello", "--model", "gpt-4o-mini"],
        ["import", "axtui.server.app"],
        ["import", "axtui.engine"],
    ],
    ids=" ".join,
)
def test_headless_path_never_loads_textual(args: list[str]) -> None:
    result = _probe(args)
    assert result["code"] == 0, f"`{' '.join(args)}` failed with exit code {result['code']}"
    assert result["textual"] == [], f"`{' '.join(args)}` loaded {result['textual']}"


def test_the_probe_sees_textual_when_it_is_loaded() -> None:
    """The check can fail: a path that imports textual is caught."""
    result = _probe(["import", "textual"])
    assert "textual" in result["textual"]  # type: ignore[operator]
