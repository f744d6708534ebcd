"""End users named by a trusted key live in its namespace: never the real user unless the operator maps them."""

from __future__ import annotations

import httpx
import pytest

from axtui.errors import InvalidRequest
from axtui.server.auth import Authenticator
from axtui.server.keys import create_key
from axtui.store import Store

from ._live import LiveServer


def _headers(token: str) -> dict[bytes, bytes]:
    return {b"authorization": f"Bearer {token}".encode()}


async def test_a_trusted_keys_end_users_are_namespaced_and_checked(store: Store) -> None:
    auth = Authenticator(store, cache_s=0, user_map={"acme/bob": "bob"})
    trusted, info = create_key(store, "acme", trusted=True)
    plain, _ = create_key(store, "carol")
    caller = await auth.caller(_headers(trusted), "alice")
    assert caller.user == "acme/alice" and caller.key == info.id
    assert (await auth.caller(_headers(trusted), None)).user == "acme"
    # The operator's map is the one way to the real user.
    assert (await auth.caller(_headers(trusted), "bob")).user == "bob"
    # A plain key's "user" field changes nothing.
    assert (await auth.caller(_headers(plain), "alice")).user == "carol"
    for bad in ("../alice", "alice/x", "a b", "a,b", "x" * 257, "al\nice", "\x1b]0;pwned\x07", "nul\x00"):
        with pytest.raises(InvalidRequest):
            await auth.caller(_headers(trusted), bad)


def test_a_trusted_key_cannot_read_alices_cache_or_spend_her_budget(
    monkeypatch: pytest.MonkeyPatch, live: LiveServer, store: Store
) -> None:
    alice, _ = create_key(store, "alice")
    acme, _ = create_key(store, "acme", trusted=True)
    url = f"{live.url}/v1/chat/completions"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "alice's secret plan"}]}
    first = httpx.post(url, json=body, headers={"Authorization": f"Bearer {alice}"})
    assert first.status_code == 200
    again = httpx.post(url, json=body, headers={"Authorization": f"Bearer {alice}"})
    assert again.headers["x-ax-cache"] == "exact"  # the cache is on: alice gets her own answer back
    posing = httpx.post(url, json={**body, "user": "alice"}, headers={"Authorization": f"Bearer {acme}"})
    assert posing.status_code == 200 and posing.headers["x-ax-cache"] == "miss"
    bad = httpx.post(url, json={**body, "user": "../alice"}, headers={"Authorization": f"Bearer {acme}"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "user"
