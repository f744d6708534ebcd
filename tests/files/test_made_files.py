"""What ax makes beside the store is its owner's too: exports and their folder, the dashboard's log, imported prices."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from axtui import locations
from axtui.cli import main
from axtui.config import Settings
from axtui.cost.sheet import user_prices_path
from axtui.store import Store
from tests.metrics.conftest import call, record_calls


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most systems run with, which alone would make files 0644 and folders 0755."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def nested_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An AX_HOME that does not exist yet, two folders deep."""
    home = tmp_path / "fresh" / "ax"
    monkeypatch.setenv("AX_HOME", str(home))
    return home


def test_the_dashboards_exports_and_their_folder_are_private() -> None:
    from axtui.tui.data_local import StoreBackend
    from axtui.tui.export_view import ViewRows, write_view

    store = Store.open()
    record_calls(store, [call(1_750_000_000.0, user="alice")])
    backend = StoreBackend(Settings(), store=store)
    try:
        whole = backend.default_export_path("calls", "csv")
        assert backend.export("calls", "csv", whole, None, None).rows == 1
        view = write_view(ViewRows("calls", "the log", ("user",), [("alice",)]), "json",
                          backend.default_export_path("calls user=alice", "json")).path
    finally:
        store.close()
    assert whole.parent == view.parent == locations.data_dir() / "exports"
    assert _mode(whole.parent) == 0o700
    assert _mode(whole) == _mode(view) == 0o600
    assert sorted(p.name for p in whole.parent.iterdir()) == sorted([whole.name, view.name])  # no temp files left


def test_the_dashboards_log_is_private(nested_home: Path) -> None:
    from axtui.tui.run import _logs_to_file, log_path

    with _logs_to_file():
        logging.getLogger("axtui.test").warning("alice called gpt-4o")
    assert "alice called gpt-4o" in log_path().read_text(encoding="utf-8")
    assert _mode(log_path()) == 0o600
    assert _mode(nested_home) == _mode(nested_home.parent) == 0o700  # every folder ax made, not the last only


def test_imported_prices_are_private(tmp_path: Path, nested_home: Path) -> None:
    cost_map = tmp_path / "model_prices_and_context_window.json"
    cost_map.write_text(json.dumps({"gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
                                               "litellm_provider": "openai", "mode": "chat"}}))
    result = CliRunner().invoke(main, ["cost", "prices", "import", str(cost_map)])
    assert result.exit_code == 0, result.output
    assert _mode(user_prices_path()) == 0o600 and _mode(user_prices_path().parent) == 0o700


def test_a_file_replaced_keeps_its_mode_and_a_failed_write_leaves_it_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "mine" / "prices.json"
    path.parent.mkdir()
    path.write_text("old")
    os.chmod(path, 0o644)
    with locations.replace_private(path) as out:
        out.write("new")
    assert path.read_text() == "new" and _mode(path) == 0o644
    with pytest.raises(RuntimeError), locations.replace_private(path) as out:
        out.write("half")
        raise RuntimeError("the disk is full")
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["prices.json"]


def test_a_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    with pytest.raises(NotADirectoryError):
        locations.private_dir(tmp_path / "taken" / "exports")
