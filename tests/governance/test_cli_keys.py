"""`ax keys create|update|rotate|revoke` with policies; each change lands in the audit trail."""

from __future__ import annotations

import json
import time

from click.testing import CliRunner

from axtui.cli import main
from axtui.server.keys import verify_key
from axtui.store import Store
from axtui.store.audit import cli_actor, list_audit


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_create_update_rotate_revoke_and_their_audit() -> None:
    code, out, err = run("keys", "create", "--user", "alice", "--models", "gpt-4o*,fast", "--expires", "30d",
                         "--tpm", "5000", "--rpm", "60", "--tags", "app,prod", "--json")
    assert code == 0, err
    made = json.loads(out)
    assert made["models"] == ["gpt-4o*", "fast"] and made["tags"] == ["app", "prod"]
    assert abs(made["expires"] - (time.time() + 30 * 86400)) < 60
    assert any("5000 tokens/minute" in line for line in made["applied"])

    code, out, _ = run("keys", "list", "--json")
    (listed,) = json.loads(out)
    assert listed["spent_usd_this_month"] == "0" and listed["budget_used_pct"] is None
    assert run("keys", "list")[0] == 0
    code, out, err = run("keys", "update", made["id"], "--models", "gpt-4o-mini", "--expires", "never")
    assert code == 0, err
    code, out, err = run("keys", "rotate", made["id"], "--grace", "1h", "--json")
    assert code == 0, err
    rotated = json.loads(out)
    store = Store.open()
    try:
        old = verify_key(store, made["key"])
        assert old is not None and old.grace_until is not None and old.grace_until > time.time() + 3500
        assert verify_key(store, rotated["key"]) is not None
        code, out, err = run("keys", "revoke", made["id"])
        assert code == 0, err
        entries = [e for e in list_audit(store) if e.action.startswith("key.")]
        limits = [e for e in list_audit(store) if e.action == "ratelimit.set"]
    finally:
        store.close()
    assert [e.action for e in entries] == ["key.revoke", "key.rotate", "key.update", "key.create"]
    assert limits and limits[-1].target == f"key:{made['id']}"  # the key's rpm/tpm, as a rate limit
    assert all(e.via == "cli" and e.actor == cli_actor() and e.target == f"key:{made['id']}" for e in entries)
    update = entries[2]
    assert update.before is not None and update.after is not None
    assert update.before["models"] == ["gpt-4o*", "fast"] and update.after["models"] == ["gpt-4o-mini"]
    assert update.after["expires"] is None
    # Secrets never: neither key, nor a salt or digest.
    text = json.dumps([e.to_json() for e in entries])
    for secret in (made["key"], rotated["key"], made["key"].split("_", 2)[2]):
        assert secret not in text
    assert "salt" not in text and "digest" not in text


def test_bad_policies_are_refused_and_nothing_is_audited() -> None:
    for args in (["--models", "a b"], ["--expires", "yesterday"], ["--team", "ghosts"], ["--tpm", "0"],
                 ["--expires", "2001-01-01"]):
        code, _, err = run("keys", "create", "--user", "alice", *args)
        assert code == 2, (args, err)
    code, _, err = run("keys", "rotate", "deadbeef0000")
    assert code == 2 and "ax keys list" in err
    code, _, err = run("keys", "update", "deadbeef0000", "--rpm", "5")
    assert code == 2
    store = Store.open()
    try:
        assert list_audit(store) == []
    finally:
        store.close()
