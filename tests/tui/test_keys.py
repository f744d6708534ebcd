"""The Keys screen (6): keys and teams with spend and limits; revoke and rotate after asking, the secret shown once."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable, Static

from axtui.server.keys import find_key, verify_key
from axtui.store.audit import AuditEntry, list_audit
from axtui.tui.screens.confirm import ConfirmScreen
from axtui.tui.screens.keys import KeysScreen, SecretScreen

from .helpers import make_app, refetch, settle, until
from .keys_seed import seed_keys
from .seed import Seeded


async def _open_keys(pilot: Any) -> KeysScreen:
    await settle(pilot)
    await pilot.press("6")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, KeysScreen)
    return screen


def _cell(screen: KeysScreen, table: str, row: str, column: str) -> str:
    return str(screen.query_one(f"#{table}", DataTable).get_cell(row, column).plain)


async def _cursor_to(pilot: Any, screen: KeysScreen, key_id: str) -> None:
    table = screen.query_one("#keys", DataTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(key_id))
    await pilot.pause()


async def test_the_screen_shows_keys_and_teams(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    made = seed_keys(seeded, monkeypatch)
    app = make_app(seeded)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await _open_keys(pilot)
        laptop, ci, old = made["laptop"][0], made["ci"][0], made["old"][0]
        assert screen.query_one("#keys", DataTable).row_count == 3
        assert _cell(screen, "keys", laptop, "user") == "alice"
        assert _cell(screen, "keys", laptop, "team") == "red"
        assert _cell(screen, "keys", laptop, "models") == "gpt-4o*,claude-*"
        assert _cell(screen, "keys", laptop, "status") == "active"
        assert _cell(screen, "keys", laptop, "expires") == "2025-07-15"
        assert _cell(screen, "keys", ci, "models") == "any"
        assert _cell(screen, "keys", ci, "limits") == "60 / 20,000"
        assert _cell(screen, "keys", ci, "budget") == "$10.00 0%"
        assert _cell(screen, "keys", old, "status") == "revoked"
        assert _cell(screen, "teams", "red", "members") == "alice, bob"
        assert _cell(screen, "teams", "red", "budget") == "$40.00/month soft"
        assert _cell(screen, "teams", "red", "limits") == "600 / –"
        assert "%" in _cell(screen, "teams", "red", "used")


async def test_an_expired_key_says_so(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    made = seed_keys(seeded, monkeypatch)
    seeded.clock.advance(31 * 86_400)  # past the laptop key's 30 days
    app = make_app(seeded)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await _open_keys(pilot)
        assert _cell(screen, "keys", made["laptop"][0], "status") == "expired"
        assert _cell(screen, "keys", made["ci"][0], "status") == "active"


async def test_revoke_asks_then_revokes_in_the_store(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    made = seed_keys(seeded, monkeypatch)
    ci, secret = made["ci"]
    app = make_app(seeded)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await _open_keys(pilot)
        await _cursor_to(pilot, screen, ci)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # no: nothing changes
        await pilot.pause(0.2)
        key = find_key(seeded.store, ci)
        assert key is not None and key.active
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(lambda: not _active(seeded, ci), pilot=pilot)
        await refetch(pilot)
        assert _cell(screen, "keys", ci, "status") == "revoked"
        verified = verify_key(seeded.store, secret)
        assert verified is not None and not verified.active
        entry = _last_change(seeded, ci)
        assert entry.action == "key.revoke" and entry.via == "dashboard"


def _last_change(seeded: Seeded, key_id: str) -> AuditEntry:
    return max((e for e in list_audit(seeded.store) if e.target == f"key:{key_id}"), key=lambda e: e.id)


def _active(seeded: Seeded, key_id: str) -> bool:
    key = find_key(seeded.store, key_id)
    return key is not None and key.active


async def test_rotate_asks_shows_the_secret_once_and_the_old_one_works_within_the_grace(
        seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    made = seed_keys(seeded, monkeypatch)
    laptop, old_secret = made["laptop"]
    app = make_app(seeded)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await _open_keys(pilot)
        await _cursor_to(pilot, screen, laptop)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")  # no
        await pilot.pause(0.2)
        assert verify_key(seeded.store, old_secret) is not None
        assert verify_key(seeded.store, old_secret).grace_until is None  # type: ignore[union-attr]
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("y")
        await until(lambda: isinstance(app.screen, SecretScreen), pilot=pilot)
        dialog = app.screen
        assert isinstance(dialog, SecretScreen)
        new_secret = str(dialog.query_one("#secret-value", Static).render())
        assert new_secret.startswith(f"axk_{laptop}_")
        assert new_secret != old_secret
        fresh = verify_key(seeded.store, new_secret)
        assert fresh is not None and fresh.id == laptop and fresh.grace_until is None
        # The old secret still opens the gateway for the grace (an hour), then no more.
        now = seeded.clock.now()
        within = verify_key(seeded.store, old_secret)
        assert within is not None and within.grace_until == pytest.approx(now + 3600)
        assert not within.expired(now + 3599) and within.expired(now + 3600)
        await pilot.press("escape")  # the secret is gone from the screen for good
        await pilot.pause()
        assert app.screen is screen
        assert not app.screen.query(SecretScreen)
        await refetch(pilot)
        assert _cell(screen, "keys", laptop, "status") == "active"
        entry = _last_change(seeded, laptop)
        assert entry.action == "key.rotate" and new_secret not in str(entry.after)


async def test_a_revoked_key_cannot_be_revoked_or_rotated_again(seeded: Seeded,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    made = seed_keys(seeded, monkeypatch)
    app = make_app(seeded)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await _open_keys(pilot)
        await _cursor_to(pilot, screen, made["old"][0])
        for key in ("d", "r"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is screen
            assert "revoked" in str(screen.query_one("#hint", Static).render())


async def test_no_keys_says_how_to_make_one(seeded: Seeded) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_keys(pilot)
        assert screen.query_one("#keys", DataTable).row_count == 0
        assert "ax keys create" in str(screen.query_one("#hint", Static).render())
        await pilot.press("d", "r")  # nothing under the cursor: nothing happens
        await pilot.pause()
        assert app.screen is screen


def test_the_demo_seeds_a_team_and_keys_once(seeded: Seeded) -> None:
    from axtui.governance.teams import list_teams
    from axtui.server.keys import list_keys
    from axtui.tui.demo_seed import DEMO_KEYS, seed_keys
    from axtui.tui.screens.keys import key_status

    seed_keys(seeded.store, seeded.clock.now())
    seed_keys(seeded.store, seeded.clock.now())  # a store with keys gets no more
    keys = list_keys(seeded.store)
    assert len(keys) == len(DEMO_KEYS)
    assert sorted(key_status(k, seeded.clock.now()) for k in keys) == ["active", "active", "active", "revoked"]
    (team,) = list_teams(seeded.store)
    assert team.name == "red" and team.members == ("user-1", "user-2")


async def test_a_key_revoked_elsewhere_meanwhile_is_not_rotated_and_the_hint_says_why(
        seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    from axtui.server import key_admin

    made = seed_keys(seeded, monkeypatch)
    laptop = made["laptop"][0]
    app = make_app(seeded)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await _open_keys(pilot)
        await _cursor_to(pilot, screen, laptop)
        key_admin.revoke(seeded.store, laptop, actor="someone", via="cli")  # the screen still shows it active
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("y")
        hint = screen.query_one("#hint", Static)
        await until(lambda: hint.has_class("-error"), pilot=pilot)
        assert "revoked" in str(hint.render())
        assert not app.screen.query(SecretScreen) and app.screen is screen
