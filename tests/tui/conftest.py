"""Dashboard tests: seeded data, a fixed clock, UTC, no animations, snapshots under snapshots/."""

from __future__ import annotations

import os

# Read by Textual when it is first imported, so set before anything imports it.
os.environ["TEXTUAL_ANIMATIONS"] = "none"

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_textual_snapshot import SVGImageExtension

from .seed import Seeded, seed

#: Where the dashboard's SVG snapshots live: ``snapshots/`` at the repository root.
SNAPSHOTS = Path(__file__).resolve().parents[2] / "snapshots"


def _snapshots_dirname(cls: type, *, test_location: Any) -> str:
    # One folder per test module, as syrupy expects (it checks the module name is in the path).
    return str(SNAPSHOTS / test_location.basename)


# snap_compare always uses SVGImageExtension, so its folder is changed on the class itself.
SVGImageExtension.dirname = classmethod(_snapshots_dirname)  # type: ignore[method-assign, assignment]


@pytest.fixture(autouse=True)
def _still_and_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times print in UTC and nothing animates, so pictures do not depend on the machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ", raising=False)
    time.tzset()


@pytest.fixture(scope="session")
def _seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded database, written once per test session."""
    folder = tmp_path_factory.mktemp("seeded-template")
    data = seed(folder)
    data.store.close()
    return folder / "seeded.db"


@pytest.fixture
def seeded(tmp_path: Path, _seeded_template: Path) -> Iterator[Seeded]:
    """A store and live windows full of seeded calls, at a fixed time (a fresh copy per test)."""
    data = seed(tmp_path, template=_seeded_template)
    yield data
    data.store.close()
