"""A key revoked, changed or rotated on this machine stops or changes at once, however long keys are cached.

Every gateway here remembers a verified key for ``server.key_cache_s``;
the change's marker (`axtui.store.markers`) makes each check its keys
again before the next request. The cache here keeps keys for ten minutes:
only the marker can make these pass.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from axtui.clock import SYSTEM_CLOCK
from axtui.errors import AuthenticationError, KeyExpired
from axtui.server.auth import Authenticator
from axtui.server.keys import KeyInfo, create_key, revoke_key, rotate_key, update_key
from axtui.store import Store

LONG_S = 600.0


async def test_a_key_revoked_by_another_process_is_refused_on_its_next_request(store: Store) -> None:
    raw, info = create_key(store, "alice")
    auth = Authenticator(store, cache_s=LONG_S)
    assert (await auth.key(raw)).id == info.id  # verified, and kept for ten minutes
    done = subprocess.run([sys.executable, "-m", "axtui", "keys", "revoke", info.id], env=dict(os.environ),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with pytest.raises(AuthenticationError, match="revoked"):
        await auth.key(raw)


async def test_an_expiry_set_or_a_rotation_applies_to_the_next_request(store: Store) -> None:
    raw, info = create_key(store, "alice")
    other_raw, _ = create_key(store, "bob")
    auth = Authenticator(store, cache_s=LONG_S)
    await auth.key(raw)
    await auth.key(other_raw)
    update_key(store, info.id, {"expires": SYSTEM_CLOCK.now() - 1})
    with pytest.raises(KeyExpired):
        await auth.key(raw)
    assert (await auth.key(other_raw)).user == "bob"  # the others are only asked again
    update_key(store, info.id, {"expires": None})
    await auth.key(raw)
    new_raw, _ = rotate_key(store, info.id)  # no grace: the old secret stops now
    with pytest.raises(AuthenticationError):
        await auth.key(raw)
    assert (await auth.key(new_raw)).id == info.id


async def test_a_check_under_way_when_the_key_is_revoked_is_not_kept(store: Store) -> None:
    raw, info = create_key(store, "alice")
    auth = Authenticator(store, cache_s=LONG_S)
    release = asyncio.Event()
    real_lookup = auth._lookup
    lookups = 0

    async def lookup(token: str) -> KeyInfo | None:
        nonlocal lookups
        lookups += 1
        if lookups == 1:  # the first is slow: it answers what the store said before the revocation
            await release.wait()
            return KeyInfo(id=info.id, user="alice")
        return await real_lookup(token)

    auth._lookup = lookup  # type: ignore[method-assign]
    first = asyncio.ensure_future(auth.key(raw))
    await asyncio.sleep(0)
    revoke_key(store, info.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await auth.key(raw)  # sees the change and asks again
    release.set()
    assert (await first).id == info.id  # it began before the revocation
    with pytest.raises(AuthenticationError, match="revoked"):
        await auth.key(raw)  # its stale answer was not kept
