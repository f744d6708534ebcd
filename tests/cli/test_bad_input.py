"""Bad input as a demanding user types it: one clear line naming the problem and the fix, never a traceback.

Exit code 2 for usage, config and store problems; 1 when something failed
(a bug in ax included, said in one line).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from axtui import locations
from axtui.cli import COMMANDS, main
from axtui.cli._common import handle_errors

FAST_FLEET = """
[[providers]]
name = "sim"
kind = "sim"
profile = "fast"
models = ["gpt-4o-mini"]
"""


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``ax ARGS``; a Python exception escaping the command fails the test with its traceback."""
    result = CliRunner().invoke(main, list(args), env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def assert_usage_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"


@pytest.fixture
def fast_fleet(ax_home: Path) -> Path:
    path = locations.config_path()
    path.write_text(FAST_FLEET)
    return path


# -- numbers: nan and infinity pass click's ranges unless refused ------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["cost", "summary", "--time", "nan"],
        ["cost", "summary", "--time", "1e999"],
        ["cache", "eval", "PAIRS", "--threshold", "nan"],
        ["sim", "load", "--rps", "nan"],
        ["sim", "load", "--duration", "1e999"],
        ["sim", "load", "--duration", "nan"],
        ["call", "hi", "--temperature", "nan"],
        ["call", "hi", "--wait", "inf"],
        ["route", "status", "--since", "nan"],
        ["route", "ab", "report", "x", "--since", "inf"],
        ["ratelimit", "config", "--poll", "nan"],
    ],
    ids=" ".join,
)
def test_non_finite_numbers_are_refused_by_the_option(args: list[str], tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"a": "x", "b": "y", "same": false}\n')
    args = [str(pairs) if a == "PAIRS" else a for a in args]
    code, _, err = run(*args)
    assert_usage_error(code, err, "not a finite number", args[-2])


def test_a_load_run_longer_than_a_week_is_refused() -> None:
    code, _, err = run("sim", "load", "--duration", "1e300")
    assert_usage_error(code, err, "--duration", "604800")


# -- times before 1970 mean "everything" ---------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["cost", "summary", "--time", "99999999999"],
        ["cost", "breakdown", "--since", "99999999d"],
        ["cost", "breakdown", "--since", "0001-01-01"],
    ],
    ids=" ".join,
)
def test_a_range_reaching_before_1970_covers_everything(args: list[str]) -> None:
    code, out, err = run(*args)
    assert code == 0, err
    assert "1970-01-01" in out


# -- the database -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["cost", "summary"], ["keys", "list"], ["db", "upgrade"], ["monitor", "export"], ["ratelimit", "status"],
     ["cache", "stats"], ["route", "status"], ["call", "hi"]],
    ids=" ".join,
)
def test_a_file_that_is_not_a_database_is_named_with_the_fix(ax_home: Path, args: list[str]) -> None:
    locations.db_path().write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    code, _, err = run(*args)
    assert_usage_error(code, err, str(locations.db_path()), "not a SQLite database", "Move the file aside")
    assert locations.db_path().read_bytes().startswith(b"this is not a database")  # left untouched


@pytest.mark.parametrize("url", ["mysql://u:pw@127.0.0.1/x", "nonsense", "redis://127.0.0.1/0"])
def test_an_unsupported_database_url_names_the_variable_and_the_forms(url: str) -> None:
    code, _, err = run("cost", "summary", env={"AX_DATABASE_URL": url})
    assert_usage_error(code, err, "AX_DATABASE_URL", "sqlite:///", "postgresql://")
    assert "pw" not in err  # the password is never echoed


# -- gateway keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--budget", "1e999"], "too large"),
        (["--budget", "0.0000000000001"], "nano-dollar"),
        (["--budget", "nan"], "finite"),
        (["--rpm", "99999999999999999999999"], "--rpm"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_key_limits_that_cannot_be_kept_are_refused(args: list[str], needle: str) -> None:
    code, _, err = run("keys", "create", "--user", "bob", *args)
    assert_usage_error(code, err, needle)
    code, out, _ = run("keys", "list", "--json")
    assert json.loads(out) == []  # nothing half-made


def test_key_list_never_cuts_the_id_revoke_needs() -> None:
    code, out, _ = run("keys", "create", "--user", "a-user-with-a-rather-long-name", "--name", "a long label too",
                       "--json")
    key_id = json.loads(out)["id"]
    result = CliRunner().invoke(main, ["keys", "list"], env={"COLUMNS": "80"}, terminal_width=80)
    assert key_id in result.stdout
    code, out, err = run("keys", "revoke", key_id)
    assert code == 0, err


# -- ax sim load against a gateway ---------------------------------------------------------


def test_sim_load_target_must_be_a_url() -> None:
    code, _, err = run("sim", "load", "--target", "notaurl", "--duration", "1")
    assert_usage_error(code, err, "--target", "http://127.0.0.1:8787")


def test_sim_load_that_serves_nothing_fails_and_says_why(free_port: int) -> None:
    port = free_port
    code, out, err = run("sim", "load", "--target", f"http://127.0.0.1:{port}", "--rps", "4", "--duration", "0.5",
                         "--json")
    assert code == 1
    assert "Traceback" not in err
    assert "none of the 2 calls was served" in err and f"127.0.0.1:{port}" in err
    assert json.loads(out)["reasons"]


# -- the last line of defence: nothing escapes as a traceback --------------------------------


@click.command()
@click.argument("what")
@handle_errors
def _broken(what: str) -> None:
    if what == "bug":
        raise ValueError("cannot convert float NaN to integer")
    if what == "os":
        raise PermissionError(13, "Permission denied", "/somewhere/x.csv")
    if what == "pipe":
        raise BrokenPipeError(32, "Broken pipe")
    raise click.BadParameter("a usage error click reports itself", param_hint="WHAT")


def test_a_bug_is_one_line_with_the_way_to_the_traceback() -> None:
    result = CliRunner().invoke(_broken, ["bug"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr
    assert "ValueError: cannot convert float NaN to integer" in result.stderr and "AX_DEBUG=1" in result.stderr


def test_ax_debug_shows_the_real_exception() -> None:
    result = CliRunner().invoke(_broken, ["bug"], env={"AX_DEBUG": "1"})
    assert isinstance(result.exception, ValueError)


def test_a_refused_file_names_the_path() -> None:
    result = CliRunner().invoke(_broken, ["os"])
    assert result.exit_code == 2
    assert "/somewhere/x.csv" in result.stderr and "Permission denied" in result.stderr


def test_a_reader_that_went_away_ends_the_command_quietly() -> None:
    """`ax config show | head -1`: no message about a pipe the user closed on purpose."""
    result = CliRunner().invoke(_broken, ["pipe"])
    assert result.exit_code == 1 and result.stderr == ""


def test_click_usage_errors_keep_their_usage_line() -> None:
    result = CliRunner().invoke(_broken, ["other"])
    assert result.exit_code == 2 and "Usage:" in result.stderr and "a usage error" in result.stderr


def _leaves(group: click.Group, path: list[str]) -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    for name, sub in group.commands.items():
        if isinstance(sub, click.Group):
            out += _leaves(sub, [*path, name])
        else:
            out.append((" ".join([*path, name]), sub))
    return out


def test_every_command_turns_failures_into_messages() -> None:
    ctx = click.Context(main)
    missing = []
    for name in COMMANDS:
        cmd = main.get_command(ctx, name)
        assert cmd is not None, name
        leaves = _leaves(cmd, [name]) if isinstance(cmd, click.Group) else [(name, cmd)]
        missing += [n for n, c in leaves if getattr(c.callback, "__wrapped__", None) is None]
    assert not missing, f"commands without @handle_errors: {missing}"


# -- config files that parse but cannot work --------------------------------------------------


@pytest.mark.parametrize(
    ("config", "needles"),
    [
        ('[[providers]]\nname = "a"\nkind = "openai"\nbase_url = "not a url"\nmodels = ["m"]\n',
         ["line 4", "base_url", "https://api.openai.com/v1"]),
        ('[[providers]]\nname = "a"\nkind = "openai"\napi_key_env = "sk-proj-SECRET123abcdef"\nmodels = ["m"]\n',
         ["line 4", "api_key_env", "not the key itself", "export OPENAI_API_KEY"]),
        ('[[deployments]]\nmodel = "x"\nprovider = "nope"\n',
         ["demo fleet", "'nope'", "ax config init"]),
        ('[routing]\naliases = { fast = ["nope"] }\n',
         ["alias 'fast' lists nope", "routing.aliases", "gpt-4o-mini"]),
        ('[[routing.rules]]\nname = "eu"\nuser = "eu-["\nstrategy = "cost"\n',
         ["rule 'eu', field user", "never closes", "[[]"]),
        ('[[routing.rules]]\nname = "night"\nhours = "25-30"\nstrategy = "cost"\n',
         ["rule 'night', field hours", "START 0..23"]),
        ('[[routing.ab_tests]]\nname = "t"\nmodel = "fast"\nvariants = [{ name = "a", model = "gpt-4o", '
         'percent = 50 }, { name = "b", model = "gpt-4o-mini", percent = 40 }]\n',
         ["A/B test 't'", "add up to 100, not 90"]),
        ('[[providers]]\nname = "x"\nkind = "nope"\nmodels = ["fast"]\n', ["unknown kind 'nope'", "openai"]),
        ('[server]\nport = "abc"\n', ["line 2", "server.port"]),
        ('[server]\nportt = 5\n', ["line 2", "unknown setting 'portt'"]),
        ("providers = [\n", ["not valid TOML"]),
        ('[[providers]]\nname = "a"\nkind = "openai"\nresponses = "sometimes"\nmodels = ["m"]\n',
         ["line 4", "responses", '"native"', '"translate"', "'sometimes'"]),
        ('[[providers]]\nname = "c"\nkind = "anthropic"\nresponses = "native"\nmodels = ["m"]\n',
         ["provider 'c'", 'kinds "openai" and "azure"', "leave responses out"]),
    ],
    ids=["base_url not a URL", "a key pasted as api_key_env", "deployment beside the demo fleet",
         "alias serving nothing", "unclosed glob", "bad hours", "A/B split not 100", "unknown provider kind",
         "wrong type", "unknown key", "bad TOML", "responses neither native nor translate",
         "native responses on another kind"],
)
def test_config_that_cannot_work_is_named_with_the_fix(ax_home: Path, config: str, needles: list[str]) -> None:
    locations.config_path().write_text(config)
    code, _, err = run("call", "hi", "--model", "fast")
    assert_usage_error(code, err, *needles)
    assert "SECRET123" not in err  # a key pasted in the wrong place is never printed back


def test_sim_load_asks_for_models_the_config_serves(fast_fleet: Path) -> None:
    """A config without the demo fleet's aliases (fast, smart, cheap) still gets a load that is served."""
    code, out, err = run("sim", "load", "--rps", "40", "--duration", "0.5", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["ok"] == data["calls"] == 20 and data["reasons"] == {}


# -- alert rules that could never fire ---------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ("p95_latency_ms > 2000 for 99999999999d", "at most 30d"),
        ("p95_latency_ms > 1e999", "a number up to 1000000000000"),
        ("p95 >", "expected a metric name"),
        ("p95_latency_ms > 2000 for 5x", "expected a duration"),
    ],
)
def test_alert_rules_that_cannot_work_point_at_the_column(rule: str, needle: str) -> None:
    code, _, err = run("monitor", "alerts", "add", rule)
    assert_usage_error(code, err, needle, "^")
    code, out, _ = run("monitor", "alerts", "list", "--json")
    assert json.loads(out) == []


# -- the cache's own options ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["cache", "invalidate", "--older-than", "nan"], "not a duration"),
        (["cache", "invalidate", "--older-than", "inf"], "not a duration"),
        (["cache", "stats", "--since", "nan"], "not a duration"),
        (["cache", "invalidate", "--scope", "alice"], "user:NAME, key:ID or global"),
        (["cache", "invalidate", "--scope", "user:"], "user:NAME, key:ID or global"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_cache_filters_that_match_nothing_by_mistake_are_refused(args: list[str], needle: str) -> None:
    code, _, err = run(*args)
    assert_usage_error(code, err, needle)


# -- files and ports the system refuses ------------------------------------------------------


@pytest.mark.parametrize("where", ["under a file", "in /proc"])
def test_db_backup_to_an_unwritable_place_names_it(tmp_path: Path, where: str) -> None:
    if where == "under a file":
        (tmp_path / "plain").write_text("x")
        dest = tmp_path / "plain" / "b.db"
    else:
        dest = Path("/proc/ax-backup.db")
    code, _, err = run("db", "backup", str(dest))
    assert_usage_error(code, err, str(dest), "choose a writable folder")


@pytest.mark.parametrize("command", [["serve"], ["sim", "serve"]], ids=" ".join)
def test_a_port_in_use_is_refused_before_anything_is_announced(command: list[str]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        code, out, err = run(*command, "--port", str(port))
    assert_usage_error(code, err, f"port {port}", "already in use", "--port")
    assert "on http://" not in out


@pytest.mark.parametrize("command", [["serve"], ["sim", "serve"]], ids=" ".join)
def test_a_privileged_port_says_so(command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import socket

    def refuse(self: socket.socket, address: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(socket.socket, "bind", refuse)
    code, _, err = run(*command, "--port", "80")
    assert_usage_error(code, err, "port 80 is privileged", "--port of 1024 or more")


@pytest.mark.parametrize("command", [["serve"], ["sim", "serve"]], ids=" ".join)
def test_an_address_not_on_this_machine_names_host_and_port(command: list[str]) -> None:
    # 192.0.2.1 is TEST-NET-1: never a local address, and binding sends nothing anywhere.
    code, _, err = run(*command, "--host", "192.0.2.1", "--port", "8790")
    assert_usage_error(code, err, "192.0.2.1:8790", "--host")


# -- rate limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["alice", "60/minut"], ["unknown period 'minut'", "did you mean 'minute'"]),
        (["alice", "0/minute"], ["at least 1"]),
        (["alice", "99999999999999999999999/second"], ["at most 1,000,000,000,000,000", "unlimited"]),
        (["global:eu", "5/minute"], ["global takes no name"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and "/" in " ".join(v) else None,
)
def test_rate_limits_that_cannot_be_kept_are_refused(args: list[str], needles: list[str]) -> None:
    code, _, err = run("ratelimit", "set", *args)
    assert_usage_error(code, err, *needles)


# -- one way to write a time -------------------------------------------------------------------


@pytest.mark.parametrize("when", ["1h30m", "90s", "2w", "today", "yesterday", "@1767225600", "2026-11-01",
                                  "2026-11-01T09:30Z"])
@pytest.mark.parametrize("command", [["cost", "breakdown"], ["monitor", "export"], ["monitor", "alerts", "events"]],
                         ids=" ".join)
def test_every_since_takes_the_same_times(command: list[str], when: str) -> None:
    code, _, err = run(*command, "--since", when)
    assert code == 0, err


@pytest.mark.parametrize("when", ["yesterdayish", "@nan", "@inf", "1h30", "7days ago"])
@pytest.mark.parametrize("command", [["cost", "breakdown"], ["monitor", "export"]], ids=" ".join)
def test_a_time_that_is_not_one_lists_the_forms(command: list[str], when: str) -> None:
    code, _, err = run(*command, "--since", when)
    assert_usage_error(code, err, "--since", "is not a time", "1h30m", "@1767225600")


# -- ax serve checks what it will serve before it starts --------------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("broken", ["database", "provider kind", "routing rule"])
def test_serve_refuses_a_broken_setup_before_starting(broken: str, workers: str, free_port: int) -> None:

    if broken == "database":
        locations.db_path().write_bytes(b"garbage, not a database\n" * 100)
        needle = "not a SQLite database"
    elif broken == "provider kind":
        locations.config_path().write_text('[[providers]]\nname = "x"\nkind = "nope"\nmodels = ["m"]\n')
        needle = "unknown kind 'nope'"
    else:
        locations.config_path().write_text('[[routing.rules]]\nname = "r"\ndeployments = ["nope/model"]\n')
        needle = "'nope/model' is not a deployment"
    code, out, err = run("serve", "--no-auth", "--port", str(free_port), "--workers", workers)
    assert_usage_error(code, err, needle)
    assert "ax gateway on" not in err + out  # nothing announced that does not run


@pytest.mark.parametrize(("option", "needle"), [("--user", "--user is empty"), ("--model", "--model is empty")])
def test_call_with_an_empty_name_is_refused(option: str, needle: str) -> None:
    code, _, err = run("call", "hi", option, " ")
    assert_usage_error(code, err, needle)


# -- text that is not UTF-8, times no date can show ----------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["keys", "create", "--user", "al\udcffice"],
    ["cost", "budget", "set", "5", "--scope", "user:al\udcffice"],
    ["ratelimit", "set", "al\udcffice", "5/minute"],
], ids=["key-user", "budget-scope", "ratelimit-subject"])
def test_an_argument_that_is_not_utf8_is_named_with_the_fix(args: list[str]) -> None:
    # A terminal in another encoding passes bytes Python keeps as lone surrogates ('\udcff' for 0xff).
    code, _, err = run(*args)
    assert_usage_error(code, err, "not UTF-8", "\\udcff")
    assert "bug in ax" not in err


@pytest.mark.parametrize("when", ["@99999999999999999", "@253402300800", "9999-12-31T23:59:59-14:00"])
def test_a_time_past_the_year_9999_reads_as_its_end(when: str) -> None:
    code, out, err = run("cost", "summary", "--since", when)
    assert code == 0, err
    assert "9999-12-3" in out, out
