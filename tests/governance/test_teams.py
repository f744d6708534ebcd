"""`ax teams`: a team's members, budget, limits and allow-list; a key's calls count for its team; all audited."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from axtui.cli import main
from axtui.cost.budgets import list_budgets
from axtui.errors import ModelNotAllowed
from axtui.routing.catalog import Catalog
from axtui.server.auth import Authenticator
from axtui.server.keys import create_key
from axtui.store import Store
from axtui.store.audit import list_audit
from axtui.store.tables_ratelimit import read_limits
from axtui.types import Deployment


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_team_lifecycle_from_the_cli_is_stored_and_audited() -> None:
    code, out, err = run("teams", "create", "red", "--budget", "50", "--period", "week", "--hard", "--rpm", "100",
                         "--tpm", "20000", "--models", "gpt-4o*", "--json")
    assert code == 0, err
    assert json.loads(out)["models"] == ["gpt-4o*"]
    assert run("teams", "add-user", "red", "alice")[0] == 0
    assert run("teams", "add-user", "red", "bob")[0] == 0
    run("teams", "create", "blue")
    code, _, err = run("teams", "add-user", "blue", "alice")
    assert code == 2 and "one team at most" in err
    assert run("teams", "remove-user", "red", "bob")[0] == 0
    code, out, _ = run("teams", "list", "--json")
    red = next(t for t in json.loads(out) if t["name"] == "red")
    assert red["members"] == ["alice"] and red["budget_usd"] == "50" and red["hard"] and red["rpm"] == 100
    store = Store.open()
    try:
        (budget,) = [b for b in list_budgets(store) if str(b.scope) == "team:red"]
        assert budget.period == "week" and budget.hard
        (limit,) = [r for r in read_limits(store) if r.scope == "team"]
        assert limit.subject == "red" and limit.requests == "100/minute" and limit.tokens == "20000/minute"
    finally:
        store.close()
    code, out, err = run("teams", "delete", "red")
    assert code == 0, err
    store = Store.open()
    try:
        assert not [b for b in list_budgets(store) if str(b.scope) == "team:red"]
        assert not [r for r in read_limits(store) if r.scope == "team"]
        actions = [(e.action, e.target) for e in reversed(list_audit(store)) if e.action.startswith("team.")]
    finally:
        store.close()
    assert actions == [("team.create", "team:red"), ("team.add_user", "team:red"), ("team.add_user", "team:red"),
                       ("team.create", "team:blue"), ("team.remove_user", "team:red"), ("team.delete", "team:red")]


@pytest.mark.parametrize(("args", "needle"), [
    (["teams", "create", "bad name"], "not valid"),
    (["teams", "create", "x", "--budget", "0"], "--budget"),
    (["teams", "create", "x", "--period", "day"], "--period needs --budget"),
    (["teams", "create", "x", "--models", "a;b"], "not valid"),
    (["teams", "add-user", "ghosts", "alice"], "no team"),
    (["teams", "delete", "ghosts"], "no team"),
])
def test_bad_team_input_is_refused(args: list[str], needle: str) -> None:
    code, _, err = run(*args)
    assert code == 2 and needle in err


def test_a_team_with_active_keys_is_not_deleted() -> None:
    run("teams", "create", "red")
    code, out, _ = run("keys", "create", "--user", "alice", "--team", "red", "--json")
    key_id = json.loads(out)["id"]
    code, _, err = run("teams", "delete", "red")
    assert code == 2 and key_id in err


async def test_a_keys_calls_count_for_its_team_or_its_users_team() -> None:
    run("teams", "create", "red", "--models", "gpt-4o-mini")
    run("teams", "create", "blue")
    run("teams", "add-user", "red", "alice")
    store = Store.open()
    try:
        by_user, _ = create_key(store, "alice")
        by_key, _ = create_key(store, "bob", team="blue")
        none, _ = create_key(store, "carol")
        auth = Authenticator(store, cache_s=0)
        catalog = Catalog([Deployment("openai", "gpt-4o", "gpt-4o"), Deployment("openai", "gpt-4o-mini", "gpt-4o-mini")])

        def headers(raw: str) -> dict[bytes, bytes]:
            return {b"authorization": f"Bearer {raw}".encode()}

        assert (await auth.caller(headers(by_user), None)).team == "red"
        assert (await auth.caller(headers(by_key), None)).team == "blue"
        assert (await auth.caller(headers(none), None)).team is None
        # The team's allow-list holds for a key that has none of its own.
        await auth.caller(headers(by_user), None, model="gpt-4o-mini", catalog=catalog)
        with pytest.raises(ModelNotAllowed, match="team red"):
            await auth.caller(headers(by_user), None, model="gpt-4o", catalog=catalog)
        await auth.caller(headers(by_key), None, model="gpt-4o", catalog=catalog)
    finally:
        store.close()


def test_the_budgets_screen_lists_a_teams_budget() -> None:
    import time

    from axtui.cost.budgets import budget_status
    from axtui.tui.screens.budgets import budget_cells
    from axtui.tui.widgets.palette import Palette

    code, _, err = run("teams", "create", "red", "--budget", "50", "--period", "month", "--hard")
    assert code == 0, err
    store = Store.open()
    try:
        (status,) = budget_status(store, time.time())
    finally:
        store.close()
    palette = Palette(ok="green", warn="yellow", bad="red", muted="dim", accent="blue", primary="blue")
    cells = budget_cells(status, time.time(), palette)
    assert str(cells[1]) == "team:red"


async def test_joining_or_leaving_a_team_applies_to_the_next_request_of_a_kept_key() -> None:
    run("teams", "create", "red", "--models", "gpt-4o-mini")
    store = Store.open()
    try:
        raw, _ = create_key(store, "alice")
        auth = Authenticator(store, cache_s=600)  # only the keys' change marker can refresh what it keeps
        catalog = Catalog([Deployment("openai", "gpt-4o", "gpt-4o"), Deployment("openai", "gpt-4o-mini", "gpt-4o-mini")])
        headers = {b"authorization": f"Bearer {raw}".encode()}
        assert (await auth.caller(headers, None, model="gpt-4o", catalog=catalog)).team is None
        run("teams", "add-user", "red", "alice")
        with pytest.raises(ModelNotAllowed, match="team red"):
            await auth.caller(headers, None, model="gpt-4o", catalog=catalog)
        run("teams", "remove-user", "red", "alice")
        assert (await auth.caller(headers, None, model="gpt-4o", catalog=catalog)).team is None
    finally:
        store.close()


def test_ax_call_for_a_teams_member_is_held_to_the_teams_budget() -> None:
    assert run("teams", "create", "blue")[0] == 0
    assert run("teams", "add-user", "blue", "nora")[0] == 0
    assert run("cost", "budget", "set", "0.000001", "--scope", "team:blue", "--hard")[0] == 0
    code, out, err = run("call", "Hello there", "--user", "nora", "--model", "gpt-4o-mini")
    assert code != 0 and "team:blue" in err + out, (code, out, err)
    # Someone outside the team is not.
    assert run("call", "Hello there", "--user", "olga", "--model", "gpt-4o-mini")[0] == 0, "olga is in no team"
