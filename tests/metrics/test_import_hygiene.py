"""Headless commands never load textual (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.processes

_PROBE = textwrap.dedent(
    """
    import json, sys
    args = json.loads(sys.argv[1])
    code = 0
    if args and args[0] == "import":
        import importlib
        importlib.import_module(args[1])
    else:
        from axtui.cli import main
        try:
            main(args, standalone_mode=False)
        except SystemExit as exc:
            code = exc.code or 0
    loaded = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
    sys.stdout.flush()
    print(json.dumps({"code": code, "textual": loaded[:5]}), file=sys.stderr)
    """
)


def _probe(args: list[str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)], capture_output=True, text=True, timeout=120, check=False
    )
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    try:
        return json.loads(last)  # type: ignore[no-any-return]
    except json.JSONDecodeError:
        raise AssertionError(f"the probe failed: {proc.stderr[-2000:]}") from None


@pytest.mark.parametrize(
    "args",
    [
        ["import", "axtui.cli.monitor"],
        ["monitor", "export", "--format", "csv"],
        ["monitor", "export", "--what", "alerts", "--format", "json"],
        ["monitor", "alerts", "list", "--json"],
        ["import", "axtui.metrics.monitoring"],
        ["cost", "summary", "--json"],
        ["ratelimit", "status", "--json"],
    ],
    ids=" ".join,
)
def test_headless_commands_never_load_textual(args: list[str]) -> None:
    result = _probe(args)
    assert result["textual"] == [], f"`{' '.join(args)}` loaded {result['textual']}"
    assert result["code"] == 0, f"`{' '.join(args)}` failed with {result['code']}"


def test_the_probe_would_notice_textual() -> None:
    """The check can fail: importing textual is seen."""
    result = _probe(["import", "textual"])
    assert "textual" in result["textual"]  # type: ignore[operator]
