"""A key's model allow-list holds on every /v1 route; /v1/models lists only what it may use; expiry is a 401."""

from __future__ import annotations

from typing import Any

import httpx

from axtui.server.keys import create_key, update_key
from axtui.store import Store

from ._live import LiveServer

_CHAT = {"messages": [{"role": "user", "content": "hello"}]}


def _routes(model: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("/v1/chat/completions", {"model": model, **_CHAT}),
        ("/v1/chat/completions", {"model": model, "stream": True, **_CHAT}),
        ("/v1/responses", {"model": model, "input": "hello"}),
        ("/v1/messages", {"model": model, "max_tokens": 16, **_CHAT}),
        ("/v1/messages", {"model": model, "max_tokens": 16, "stream": True, **_CHAT}),
        ("/v1/messages/count_tokens", {"model": model, **_CHAT}),
        ("/v1/embeddings", {"model": model, "input": "hello"}),
    ]


def test_a_model_outside_the_allow_list_is_refused_on_every_route(live: LiveServer, store: Store) -> None:
    raw, _ = create_key(store, "alice", models="gpt-4o-mini,text-embedding-*")
    headers = {"Authorization": f"Bearer {raw}"}
    for barred in ("gpt-4o", "smart", "fast", "anthropic/claude-haiku-4-5"):
        for path, body in _routes(barred):
            r = httpx.post(live.url + path, json=body, headers=headers)
            assert r.status_code == 403, (path, barred, r.text)
            error = r.json()["error"]
            assert error["code"] == "model_not_allowed" and error["param"] == "model"
            assert "gpt-4o-mini" in error["message"] and "claude" not in error["message"].split("may use:")[1]
    # What it may use is served.
    ok = httpx.post(live.url + "/v1/chat/completions", json={"model": "gpt-4o-mini", **_CHAT}, headers=headers)
    assert ok.status_code == 200, ok.text
    emb = httpx.post(live.url + "/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"},
                     headers=headers)
    assert emb.status_code == 200, emb.text


def test_v1_models_lists_only_what_the_key_may_use(live: LiveServer, store: Store) -> None:
    limited, _ = create_key(store, "alice", models="gpt-4o*,fast")
    free, _ = create_key(store, "bob")
    names = {m["id"] for m in httpx.get(live.url + "/v1/models", headers={"Authorization": f"Bearer {limited}"})
             .json()["data"]}
    # "fast" also lists claude and llama: the key may not use it, though the list names it.
    assert names == {"gpt-4o", "gpt-4o-mini"}
    everything = httpx.get(live.url + "/v1/models", headers={"Authorization": f"Bearer {free}"}).json()["data"]
    assert {"fast", "claude-haiku-4-5", "gpt-4o"} <= {m["id"] for m in everything}
    one = httpx.get(live.url + "/v1/models/claude-haiku-4-5", headers={"Authorization": f"Bearer {limited}"})
    assert one.status_code == 403 and one.json()["error"]["code"] == "model_not_allowed"


def test_an_expired_key_is_a_401_key_expired(live: LiveServer, store: Store) -> None:
    import time

    raw, info = create_key(store, "alice")
    update_key(store, info.id, {"expires": time.time() - 1})
    headers = {"Authorization": f"Bearer {raw}"}
    for path, body in _routes("gpt-4o-mini")[:1]:
        r = httpx.post(live.url + path, json=body, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "key_expired"
    r = httpx.get(live.url + "/v1/models", headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "key_expired"
