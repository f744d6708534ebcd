"""Saving the config (routing from the dashboard or the API, budgets and limits from the CLI) keeps the user's file."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

from axtui.config import RoutingConfig, Settings, load_settings, save_settings
from axtui.engine.compose import build_catalog
from axtui.routing.build import save_routing

CONFIG = """\
# ax config for the staging box -- owned by ops, ask before changing.
[[providers]]
name = "sim"      # the simulated fleet
kind = "sim"
models = ["gpt-4o-mini", "claude-haiku"]

[[deployments]]
model = "gpt-4o-mini"
provider = "sim"
weight = 2.0  # twice the traffic

[routing]
# latency by default; cost for batch jobs (see rules)
strategy = "latency"
exploration = 0.05   # spelled out on purpose, although it is the default

[budgets]
thresholds = [50, 80, 100]
"""


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_saving_routing_keeps_comments_order_mode_and_untouched_settings(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    os.chmod(path, 0o640)
    settings = load_settings(path)
    catalog = build_catalog(settings)
    routing = settings.routing.model_copy(update={"strategy": "cost"})
    new = save_routing(path, routing, {"sim/gpt-4o-mini": 3.0}, catalog)
    text = path.read_text(encoding="utf-8")
    assert new.routing.strategy == "cost"
    assert _mode(path) == 0o640
    for comment in ("# ax config for the staging box", "# the simulated fleet", "# latency by default",
                    "# spelled out on purpose"):  # fmt: skip
        assert comment in text
    assert 'strategy = "cost"' in text and "weight = 3.0" in text
    assert "exploration = 0.05" in text  # a default the user wrote stays written
    assert text.index("[[providers]]") < text.index("[[deployments]]") < text.index("[routing]") < text.index("[budgets]")
    reread = load_settings(path)
    assert reread.routing.strategy == "cost" and reread.deployments[0].weight == 3.0
    assert reread.providers == settings.providers


def test_a_new_config_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = save_settings(Settings(routing=RoutingConfig(strategy="cost")), tmp_path / "ax" / "config.toml")
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert tomllib.loads(path.read_text())["routing"]["strategy"] == "cost"


def test_settings_that_change_and_disappear_are_edited_in_place(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG + '\n[ratelimit]\n# per user\nuser_requests = "60/minute"\n', encoding="utf-8")
    settings = load_settings(path)
    settings.budgets.thresholds = [90]
    settings.budgets.webhook = "https://hooks.example.com/ax"
    settings.deployments = []
    save_settings(settings, path)
    text = path.read_text()
    assert "# per user" in text and "[[deployments]]" not in text
    again = load_settings(path)
    assert again.budgets.thresholds == [90] and again.budgets.webhook == "https://hooks.example.com/ax"
    assert again.ratelimit == settings.ratelimit and again.deployments == []


def test_a_symlinked_config_stays_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "ax.toml"
    real.parent.mkdir()
    real.write_text(CONFIG, encoding="utf-8")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    settings = load_settings(link)
    settings.routing.strategy = "cost"
    save_settings(settings, link)
    assert link.is_symlink() and load_settings(real).routing.strategy == "cost"


def test_config_init_writes_a_private_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from axtui import locations
    from axtui.cli import main

    result = CliRunner().invoke(main, ["config", "init"])
    assert result.exit_code == 0, result.output
    assert _mode(locations.config_path()) == 0o600
