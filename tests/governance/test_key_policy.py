"""Key policies: model allow-lists with globs and aliases, expiry and rotation grace on a fake clock."""

from __future__ import annotations

import pytest

from axtui.clock import FakeClock
from axtui.errors import AuthenticationError, InvalidRequest, KeyExpired, ModelNotAllowed
from axtui.governance.policy import ModelPolicy, parse_duration, parse_expiry, parse_globs
from axtui.routing.catalog import Catalog
from axtui.server.auth import Authenticator
from axtui.server.keys import create_key, rotate_key, update_key, verify_key
from axtui.store import Store
from axtui.types import Deployment


def _catalog() -> Catalog:
    deps = [
        Deployment("openai", "gpt-4o", "gpt-4o"),
        Deployment("openai", "gpt-4o-mini", "gpt-4o-mini"),
        Deployment("anthropic", "claude-haiku", "claude-haiku-4-5"),
    ]
    # "gpt-4o-cheap" matches the glob gpt-4o* by name but sends calls to claude.
    return Catalog(deps, {"fast": ["gpt-4o-mini"], "gpt-4o-cheap": ["claude-haiku"], "mixed": ["gpt-4o", "claude-haiku"]})


def _headers(token: str) -> dict[bytes, bytes]:
    return {b"authorization": f"Bearer {token}".encode()}


@pytest.fixture
def store() -> Store:
    s = Store.open()
    yield s  # type: ignore[misc]
    s.close()


def test_globs_and_aliases() -> None:
    catalog = _catalog()
    policy = ModelPolicy(parse_globs("gpt-4o*,fast"))
    for ok in ("gpt-4o", "gpt-4o-mini", "fast", "openai/gpt-4o-mini"):
        policy.check(ok, catalog)
    # An alias is allowed only if what it resolves to is: a glob matching its name is not enough.
    for barred in ("gpt-4o-cheap", "mixed", "claude-haiku", "anthropic/claude-haiku-4-5"):
        with pytest.raises(ModelNotAllowed) as info:
            policy.check(barred, catalog)
        assert info.value.allowed == ["fast", "gpt-4o", "gpt-4o-mini"]
        assert "claude-haiku" not in info.value.allowed
    # An alias whose models are all allowed is usable without being listed.
    assert ModelPolicy(parse_globs("gpt-4o*")).allowed_names(catalog) == ["fast", "gpt-4o", "gpt-4o-mini"]
    # No list: everything.
    ModelPolicy().check("mixed", catalog)
    assert ModelPolicy().allowed_names(catalog) == catalog.names()


def test_a_team_list_and_a_key_list_both_hold() -> None:
    catalog = _catalog()
    policy = ModelPolicy(parse_globs("gpt-4o*"), parse_globs("gpt-4o-mini,claude-*"), team="red")
    policy.check("gpt-4o-mini", catalog)
    with pytest.raises(ModelNotAllowed, match="team red"):
        policy.check("gpt-4o", catalog)
    with pytest.raises(ModelNotAllowed, match="key's allow-list"):
        policy.check("claude-haiku", catalog)
    assert policy.allowed_names(catalog) == ["fast", "gpt-4o-mini"]


@pytest.mark.parametrize("bad", ["gpt 4o", "a;b", "x" * 200, "$(rm)"])
def test_hostile_globs_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"not valid|longer"):
        parse_globs(bad)


def test_expiry_parsing() -> None:
    now = 1_750_000_000.0
    assert parse_duration("1h") == 3600 and parse_duration("30d") == 30 * 86400
    assert parse_expiry("30d", now) == now + 30 * 86400
    assert parse_expiry("2099-01-01", now) == 4070908800.0
    for bad in ("soon", "-1d", "2001-01-01"):
        with pytest.raises(ValueError):
            parse_expiry(bad, now)


async def test_an_expired_key_is_refused_on_a_fake_clock(store: Store) -> None:
    clock = FakeClock()
    raw, info = create_key(store, "alice", expires=clock.now() + 3600, clock=clock)
    auth = Authenticator(store, cache_s=60, clock=clock)
    assert (await auth.key(raw)).id == info.id
    clock.advance(3599)
    await auth.key(raw)  # still cached, still valid
    clock.advance(1)
    with pytest.raises(KeyExpired, match="expired"):
        await auth.key(raw)  # the cache does not outlive the expiry
    # Extending it brings it back.
    update_key(store, info.id, {"expires": clock.now() + 60})
    auth.forget(info.id)
    await auth.key(raw)


async def test_rotation_grace_on_a_fake_clock(store: Store) -> None:
    clock = FakeClock()
    old, info = create_key(store, "alice", clock=clock)
    auth = Authenticator(store, cache_s=0, clock=clock)
    new, rotated = rotate_key(store, info.id, grace_s=3600, clock=clock)
    assert new != old and rotated.id == info.id and rotated.prev_until == clock.now() + 3600
    assert (await auth.key(new)).id == info.id
    assert (await auth.key(old)).id == info.id  # within the grace
    clock.advance(3600)
    with pytest.raises(KeyExpired, match="rotated"):
        await auth.key(old)
    assert (await auth.key(new)).id == info.id
    # A rotation without grace stops the old secret at once; a second rotation drops the first's grace.
    newer, _ = rotate_key(store, info.id, clock=clock)
    with pytest.raises(AuthenticationError):
        await auth.key(new)
    assert verify_key(store, newer) is not None


def test_revoked_keys_are_neither_rotated_nor_updated(store: Store) -> None:
    from axtui.server.keys import revoke_key

    _, info = create_key(store, "alice")
    revoke_key(store, info.id)
    with pytest.raises(InvalidRequest, match="revoked"):
        rotate_key(store, info.id)
    with pytest.raises(InvalidRequest, match="revoked"):
        update_key(store, info.id, {"rpm": 5})


def test_update_validates(store: Store) -> None:
    _, info = create_key(store, "alice")
    for changes in ({"rpm": 0}, {"models": "a b"}, {"team": "nobody"}, {"salt": "x"}, {"tags": "a b"}):
        with pytest.raises(InvalidRequest):
            update_key(store, info.id, changes)
    before, after = update_key(store, info.id, {"models": "gpt-4o*", "tags": "app,prod", "tpm": 1000})
    assert before.models is None and after.models == ("gpt-4o*",) and after.tags == ("app", "prod")
    assert after.tpm == 1000
    _, cleared = update_key(store, info.id, {"models": "", "tags": ""})
    assert cleared.models is None and cleared.tags == ()


async def test_the_keys_tags_join_the_callers(store: Store) -> None:
    raw, info = create_key(store, "alice", tags="app,prod")
    auth = Authenticator(store, cache_s=0)
    caller = await auth.caller({**_headers(raw), b"x-ax-tags": b"web,prod"}, None)
    assert caller.tags == ("app", "prod", "web") and caller.key == info.id


@pytest.mark.parametrize("changes", [{"name": "lap\x1b[2Jtop"}, {"name": "bell\x07"}, {"name": "c1\x9bcode"},
                                     {"tags": "app,\x1b]0;owned\x07"}])
def test_a_key_name_or_tag_that_would_drive_a_terminal_is_refused(store: Store, changes: dict[str, str]) -> None:
    # Names and tags are printed in terminals (`ax keys list`, the dashboard): an escape sequence would run there.
    field = next(iter(changes))
    with pytest.raises(InvalidRequest, match="control character") as info:
        create_key(store, "alice", **changes)  # type: ignore[arg-type]
    assert info.value.param == field
    _, key = create_key(store, "alice", name="laptop · prod ✓", tags="app,prod")
    with pytest.raises(InvalidRequest, match="control character"):
        update_key(store, key.id, changes)


async def test_a_callers_tags_lose_their_control_characters(store: Store) -> None:
    raw, _ = create_key(store, "alice")
    auth = Authenticator(store, cache_s=0)
    caller = await auth.caller({**_headers(raw), b"x-ax-tags": b"web,\x1b]0;owned\x07,pr\tod"}, None)
    assert caller.tags == ("web", "]0;owned", "prod")
