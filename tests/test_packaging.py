"""A plain `pip install .` gives a working ax: migrations and themes travel in the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    [whl] = out.glob("axtui-*.whl")
    return whl


def test_wheel_ships_migrations_and_themes(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "axtui/migrations/env.py" in names
    assert any(n.startswith("axtui/migrations/versions/0001") for n in names)
    assert any(n.startswith("axtui/themes/") for n in names)
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)


def test_installed_ax_upgrades_a_database(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site), "AX_HOME": str(tmp_path / "home")}
    # Run from a folder without the source tree, so only the wheel's copy is importable.
    code = "import axtui, sys; assert axtui.__file__.startswith(sys.argv[1]), axtui.__file__; " \
           "from axtui.cli import main; sys.argv = ['ax', 'db', 'upgrade']; main()"
    done = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "database" in done.stdout
    assert (tmp_path / "home" / "ax.db").exists()
