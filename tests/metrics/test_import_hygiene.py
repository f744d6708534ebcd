"""Headless commands never load textual (checked in a fresh interpreter)."""

from __future__ import annotations

import importlib.util
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


def _needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} does not exist yet (another engineer's command group); nothing to check")


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("axtui.cli.monitor", ["import", "axtui.cli.monitor"]),
        ("axtui.cli.monitor", ["monitor", "export", "--format", "csv"]),
        ("axtui.cli.monitor", ["monitor", "export", "--what", "alerts", "--format", "json"]),
        ("axtui.cli.monitor", ["monitor", "alerts", "list", "--json"]),
        ("axtui.metrics", ["import", "axtui.metrics.monitoring"]),
        ("axtui.cli.cost", ["cost", "summary", "--json"]),
        ("axtui.cli.ratelimit", ["ratelimit", "status", "--json"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_headless_commands_never_load_textual(module: str, args: list[str]) -> None:
    _needs(module)
    result = _probe(args)
    assert result["textual"] == [], f"`{' '.join(args)}` loaded {result['textual']}"
    assert result["code"] == 0, f"`{' '.join(args)}` failed with {result['code']}"


def test_the_probe_would_notice_textual() -> None:
    """The check can fail: importing textual is seen."""
    _needs("textual")
    result = _probe(["import", "textual"])
    assert "textual" in result["textual"]  # type: ignore[operator]
