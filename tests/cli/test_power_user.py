"""The CLI as a power user met it (issue 22): each check failed before its fix."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from axtui.cli import main
from axtui.ratelimit.parse import parse_rate
from axtui.ratelimit.rules import Limit
from axtui.store import Store
from tests.metrics.conftest import call, record_calls


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.open()
    yield s
    s.close()


def ax(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "80"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_route_status_since_reports_the_window_asked_for(store: Store) -> None:
    record_calls(store, [call(time.time() - 300, deployment="openai/gpt-4o", provider="openai", model="gpt-4o")])
    code, out, _ = ax("route", "status", "--since", "600", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["window_s"] == 600
    assert next(d for d in data["deployments"] if d["deployment"] == "openai/gpt-4o")["calls"] == 1
    code, out, _ = ax("route", "status", "--since", "600")
    assert "last 10m" in out
    default = json.loads(ax("route", "status", "--json")[1])
    assert next(d for d in default["deployments"] if d["deployment"] == "openai/gpt-4o")["calls"] == 0


def test_cost_summary_takes_since_as_the_readme_says(store: Store) -> None:
    now = time.time()
    record_calls(store, [call(now - 3 * 86_400, cost_nanos=7_000), call(now - 60, cost_nanos=1_000)])
    code, out, err = ax("cost", "summary", "--since", "7d", "--json")
    assert code == 0, err
    assert json.loads(out)["calls"] == 2
    assert json.loads(ax("cost", "summary", "--json")[1])["calls"] == 1  # the default stays 24 h
    code, _, err = ax("cost", "summary", "--since", "7d", "--time", "3")
    assert code == 2 and "not both" in err


def test_estimate_of_an_unknown_model_prints_no_stray_backslash() -> None:
    code, _, err = ax("cost", "estimate", "mystery-9000", "--input", "1", "--output", "1")
    assert code == 2
    assert "[prices]" in err and "\\" not in err


def test_budget_check_prints_each_alert_once(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    record_calls(store, [call(time.time() - 60, user="u1", cost_nanos=10**9)])
    assert ax("cost", "budget", "set", "1.5", "--scope", "user:u1", "--period", "day")[0] == 0
    with caplog.at_level(logging.WARNING):
        code, out, err = ax("cost", "budget", "check")
    assert code == 0, err
    said = out + err + caplog.text
    assert said.count("reached 50%") == 1, said


def test_a_tag_header_of_two_tags_breaks_down_as_two_tags(store: Store) -> None:
    record_calls(store, [call(time.time() - 60, tags=("a", "b"), cost_nanos=10)])
    code, out, _ = ax("cost", "breakdown", "--by", "tag", "--json")
    assert code == 0
    data = json.loads(out)
    assert sorted(r["tag"] for r in data["rows"]) == ["a", "b"]
    assert data["calls"] == 1


@pytest.mark.parametrize(("rate", "text"), [("1/minute", "1 request per minute"),
                                            ("2/minute", "2 requests per minute")])
def test_one_request_is_singular(rate: str, text: str) -> None:
    assert Limit.make("requests", parse_rate(rate), "sliding-window").describe() == text


def test_db_backup_into_a_folder_gets_a_backup_file_name(tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    code, out, err = ax("db", "backup", f"{folder}/")
    assert code == 0, err
    (made,) = folder.iterdir()
    assert made.name.startswith("ax-backup-") and made.suffix == ".db"
    assert str(made) in out.replace("\n", "")


def test_db_backup_creates_no_missing_folder(tmp_path: Path) -> None:
    code, _, err = ax("db", "backup", f"{tmp_path}/not/there/")
    assert code == 2 and "does not exist" in err and "mkdir -p" in err
    assert not (tmp_path / "not").exists()
    code, _, err = ax("db", "backup", str(tmp_path / "nope" / "b.db"))
    assert code == 2 and not (tmp_path / "nope").exists()


def test_db_backup_replaces_a_file_only_with_force(tmp_path: Path) -> None:
    target = tmp_path / "b.db"
    target.write_text("precious")
    code, _, err = ax("db", "backup", str(target))
    assert code == 2 and "--force" in err
    assert target.read_text() == "precious"
    code, _, err = ax("db", "backup", str(target), "--force")
    assert code == 0, err
    assert target.read_bytes().startswith(b"SQLite format 3")


@pytest.mark.parametrize(("text", "line"), [
    # a rule without its name: the rule's own header, not the next `name =` further down
    ('[[routing.rules]]\nmodel = "*"\n\n[[providers]]\nname = "p"\nkind = "sim"\nmodels = ["m"]\n', 1),
    # the second provider's bad value, though the first has the same key
    ('[[providers]]\nname = "a"\nkind = "sim"\ntimeout_s = 5\nmodels = ["m"]\n\n'
     '[[providers]]\nname = "b"\nkind = "sim"\nmodels = ["m"]\ntimeout_s = "slow"\n', 11),
    # a key of the same name in an earlier table is not the one
    ('[alerts]\nwindow_s = 60\n\n[metrics]\nrecent_s = 30\nwindow_s = 5\n', 6),
    # dotted keys
    ('routing.window_s = 1\n', 1),
])
def test_a_config_error_names_the_line_of_the_bad_value(text: str, line: int) -> None:
    from axtui.config import parse_settings
    from axtui.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_settings(text, "ax.toml")
    assert f"ax.toml, line {line}:" in caught.value.message


def test_an_unknown_provider_kind_fails_config_show_naming_its_line(ax_home: Path) -> None:
    (ax_home / "config.toml").write_text('[[providers]]\nname = "x"\nkind = "sim"\nmodels = ["m"]\n\n'
                                         '[[providers]]\nname = "y"\nkind = "nope"\nmodels = ["m"]\n')
    code, _, err = ax("config", "show")
    assert code == 2
    assert "line 8" in err and "unknown kind 'nope'" in err and "openai" in err


def test_a_provider_whose_key_is_unset_is_warned_of_and_calling_it_is_a_config_error(
    ax_home: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AX_TEST_UNSET_KEY", raising=False)
    (ax_home / "config.toml").write_text('[[providers]]\nname = "oai"\nkind = "openai"\n'
                                         'api_key_env = "AX_TEST_UNSET_KEY"\nmodels = ["gpt-4o-mini"]\n\n'
                                         '[[providers]]\nname = "local"\nkind = "openai"\n'
                                         'base_url = "http://127.0.0.1:9/v1"\nmodels = ["llama"]\n')
    code, _, err = ax("config", "show")
    assert code == 0
    assert "AX_TEST_UNSET_KEY" in err and "'oai'" in err
    assert "'local'" not in err  # a local server needs no key
    code, _, err = ax("call", "hi", "--model", "gpt-4o-mini")
    assert code == 2, err
    assert "AX_TEST_UNSET_KEY" in err


async def test_sim_load_sends_for_the_duration_then_waits_as_long_as_it_said() -> None:
    from axtui.config import Settings
    from axtui.engine.compose import build_gateway
    from axtui.engine.load import run_load
    from axtui.providers.sim.workload import Workload
    from tests.engine.fakes import ScriptedProvider

    slow = ScriptedProvider("slow", ["hang"] * 100)
    settings = Settings.model_validate({"providers": [{"name": "slow", "kind": "openai", "models": ["m"],
                                                       "max_retries": 0}], "cache": {"enabled": False}})
    gateway = await build_gateway(settings, providers={"slow": slow})
    told: list[tuple[int, float]] = []
    try:
        summary = await run_load(Workload(seed=1, models={"m": 1.0}), rps=40, duration=0.25, gateway=gateway,
                                 wait_s=0.2, waiting=lambda n, s: told.append((n, s)))
    finally:
        await gateway.aclose()
    assert summary.calls == 10 and summary.unanswered == 10 and summary.errors == 10
    assert told and told[0][0] == 10
    data = summary.as_dict()
    assert data["unanswered"] == 10 and "no answer within the 0.2 s" in next(iter(data["reasons"]))
    assert data["sending_s"] < data["elapsed_s"]


def test_a_second_sim_load_with_the_default_seed_is_not_all_cache_hits(ax_home: Path) -> None:
    (ax_home / "config.toml").write_text('[[providers]]\nname = "sim"\nkind = "sim"\nprofile = "fast"\n'
                                         'models = ["gpt-4o-mini"]\n')
    runs = []
    for _ in range(2):
        code, out, err = ax("sim", "load", "--rps", "40", "--duration", "0.5", "--json")
        assert code == 0, err
        runs.append(json.loads(out))
    assert runs[1]["cache_hits"] < runs[1]["calls"] * 0.9
    assert runs[0]["seed"] != runs[1]["seed"]
    code, out, _ = ax("sim", "load", "--rps", "40", "--duration", "0.5", "--seed", str(runs[0]["seed"]), "--json")
    assert json.loads(out)["seed"] == runs[0]["seed"]


def test_a_firing_rule_nobody_evaluates_any_more_is_shown_as_stale(store: Store) -> None:
    from axtui.metrics.alerts.grammar import parse_rule
    from axtui.metrics.alerts.state import Transition
    from axtui.metrics.alerts.storage import add_rule, mark_evaluated, record_transition

    now = time.time()
    info = add_rule(store, "error_rate > 5% for 1m", now=now - 900)
    t = Transition(kind="firing", previous="ok", state="firing", at=now - 600, value=0.2)
    store.run(lambda conn: record_transition(conn, info, parse_rule(info.rule), t, "errors", "none"))
    mark_evaluated(store, [info.id], now - 600)  # the gateway that evaluated it stopped ten minutes ago
    code, out, _ = ax("monitor", "alerts", "list")
    assert code == 0 and "firing (stale)" in out and "no running ax has evaluated" in " ".join(out.split())
    assert json.loads(ax("monitor", "alerts", "list", "--json")[1])[0]["stale"] is True
    mark_evaluated(store, [info.id], time.time())  # a gateway is evaluating it now
    code, out, _ = ax("monitor", "alerts", "list")
    assert "firing" in out and "stale" not in out


async def test_the_evaluator_notes_when_it_looked_at_the_rules(store: Store) -> None:
    from axtui.clock import FakeClock
    from axtui.config import Settings
    from axtui.metrics.alerts.evaluator import AlertEvaluator
    from axtui.metrics.alerts.storage import add_rule, get_rule
    from axtui.metrics.live import LiveMetrics

    clock = FakeClock()
    info = add_rule(store, "error_rate > 5% for 1m", now=clock.now())
    settings = Settings()
    live = LiveMetrics(settings.metrics, clock=clock)
    evaluator = AlertEvaluator(store, live, settings, clock=clock)
    try:
        await evaluator.evaluate_once()
        found = get_rule(store, info.id)
        assert found is not None and found.evaluated_at == clock.now()
    finally:
        await evaluator.aclose()
