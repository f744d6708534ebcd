"""Hostile request bodies get a 4xx naming the problem, in the route's error shape, never a 500.

Each case is one a fuzzer found answered with a 500 (or a message naming
no field): content blocks whose ``type`` is not a string, JSON nested past
what a parser recurses into, lone UTF-16 surrogates (``"\\ud800"``) that no
UTF-8 store or file can hold, and errors of a field that takes one of two
shapes.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from axtui.store import Store

from ._live import ADMIN, LiveServer

#: A JSON value nested deeper than any parser should follow (and than Python's stack allows).
DEEP = b'{"model": "claude-haiku-4-5", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}"


def _post(server: LiveServer, path: str, body: bytes | dict[str, Any], token: str, method: str = "POST"
          ) -> httpx.Response:
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    return httpx.request(method, f"{server.url}{path}", content=content, timeout=30,
                         headers={"authorization": f"Bearer {token}", "content-type": "application/json"})


def _anthropic_400(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
    error: dict[str, Any] = body["error"]
    return error


# -- /v1/messages: a content block's type ------------------------------------------------------


@pytest.mark.parametrize("kind", [["text"], {"text": "hi"}, 7, None], ids=["list", "object", "number", "null"])
@pytest.mark.parametrize("role", ["user", "assistant"])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
@pytest.mark.parametrize("model", ["claude-haiku-4-5", "gpt-4o-mini"])
def test_a_content_block_whose_type_is_not_a_string_is_a_400_naming_it(
        live: LiveServer, key: str, path: str, role: str, kind: Any, model: str) -> None:
    turns = [{"role": "user", "content": "Hi"}] if role == "assistant" else []
    turns.append({"role": role, "content": [{"type": kind, "text": "hello"}]})
    if role == "assistant":
        turns.append({"role": "user", "content": "Go on"})
    where = f"messages.{len(turns) - 2 if role == 'assistant' else 0}.content.0.type"
    error = _anthropic_400(_post(live, path, {"model": model, "max_tokens": 20, "messages": turns}, key))
    assert error["param"] == where, error
    assert where in error["message"] and "'text'" in error["message"], error


def test_a_block_without_a_type_is_refused_at_every_deployment_alike(live: LiveServer, key: str) -> None:
    for model in ("claude-haiku-4-5", "gpt-4o-mini"):
        error = _anthropic_400(_post(live, "/v1/messages", {"model": model, "max_tokens": 20, "messages": [
            {"role": "user", "content": [{"text": "hello"}]}]}, key))
        assert error["param"] == "messages.0.content.0.type", error


# -- JSON nested past any parser's depth --------------------------------------------------------


def test_deeply_nested_json_on_messages_is_a_400(live: LiveServer, key: str) -> None:
    error = _anthropic_400(_post(live, "/v1/messages", DEEP, key))
    assert "not valid JSON" in error["message"]


def test_deeply_nested_json_on_count_tokens_is_a_400(live: LiveServer, key: str) -> None:
    error = _anthropic_400(_post(live, "/v1/messages/count_tokens", DEEP, key))
    assert "not valid JSON" in error["message"]


# -- the admin API reads JSON as strictly as the model routes --------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", "/api/budgets", b'{"amount": "5", "scope": "user:al\\ud800ice"}'),
    ("PUT", "/api/ratelimits", b'{"subject": "al\\udfffice", "requests": "5/minute"}'),
    ("PUT", "/api/routing", b'{"routing": {"rules": [{"name": "r", "region": "eu\\ud800"}]}}'),
    ("POST", "/api/keys", '{"user": "alice", "name": "lap\ud800top"}'.encode("utf-8", "surrogatepass")),
    ("PUT", "/api/budgets", b'{"amount": "5", "scope": "user:\xff\xfe"}'),
    ("PUT", "/api/budgets", b'{"amount": "5", "scope": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
], ids=["escaped-surrogate", "low-surrogate", "routing-file", "raw-surrogate", "not-utf-8", "deep"])
def test_a_body_no_utf8_store_or_file_can_hold_is_a_400_naming_it(
        admin_live: LiveServer, store: Store, method: str, path: str, body: bytes) -> None:
    before = httpx.get(f"{admin_live.url}/api/budgets", headers={"authorization": f"Bearer {ADMIN}"}).json()
    with httpx.Client(base_url=admin_live.url, timeout=30) as client:
        answer = client.request(method, path, content=body,
                                headers={"authorization": f"Bearer {ADMIN}", "content-type": "application/json"})
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["code"] == "invalid_json", error
        assert "not valid JSON" in error["message"] and "send one JSON object" in error["message"], error
        # The same connection serves the next request: nothing broke it.
        after = client.get("/api/budgets", headers={"authorization": f"Bearer {ADMIN}"})
    assert after.status_code == 200 and after.json() == before


@pytest.mark.parametrize(("body", "hint"), [
    (b'"\\ud800x"', "its pair"),
    (b'"\\udc00"', "its pair"),
    (b'"\xff"', "UTF-8"),
], ids=["high-surrogate", "low-surrogate", "not-utf-8"])
def test_text_that_is_not_unicode_is_named_with_the_fix(admin_live: LiveServer, key: str, body: bytes,
                                                         hint: str) -> None:
    for method, path, token, raw in [
            ("PUT", "/api/budgets", ADMIN, b'{"amount": "5", "scope": ' + body + b"}"),
            ("POST", "/v1/chat/completions", key, b'{"model": "gpt-4o-mini", "messages": [{"role": "user", '
                                                  b'"content": ' + body + b"}]}")]:
        answer = _post(admin_live, path, raw, token, method=method)
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["code"] == "invalid_json" and hint in error["message"], (path, error)


def test_an_admin_body_that_parses_still_reaches_its_route(admin_live: LiveServer) -> None:
    # Numbers Python and pydantic both read (NaN too) go on to the route's own checks, as before.
    answer = _post(admin_live, "/api/budgets", b'{"amount": NaN, "scope": "user:alice"}', ADMIN, method="PUT")
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "amount", answer.text
    made = _post(admin_live, "/api/budgets", b'\xef\xbb\xbf{"amount": "5", "scope": "user:alice"}', ADMIN,
                 method="PUT")
    assert made.status_code == 200, made.text


# -- a field of two shapes: the field is named, not pydantic's name for a shape ------------------------------


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": 5}]},
     "messages.0.content"),
    ("/v1/responses", {"model": "gpt-4o-mini", "input": 5}, "input"),
    ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [5]}]},
     "messages.0.content.0"),
])
def test_a_field_of_two_shapes_is_named_as_the_client_sent_it(
        live: LiveServer, key: str, path: str, body: dict[str, Any], param: str) -> None:
    answer = _post(live, path, body, key)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param, error
    assert "list[" not in error["message"] and "dict[" not in error["message"], error
    assert f"{param}: " in error["message"], error


# -- PUT /api/routing: a weight no deployment can have ------------------------------------------------------


@pytest.mark.parametrize("before", [None, 2.0], ids=["new-weight", "weight-in-the-file"])
@pytest.mark.parametrize("weight", [-1, "NaN"], ids=["negative", "nan"])
def test_a_weight_no_deployment_can_have_is_named_where_it_was_sent(
        admin_live: LiveServer, before: float | None, weight: Any) -> None:
    url, admin = f"{admin_live.url}/api/routing", {"authorization": f"Bearer {ADMIN}",
                                                   "content-type": "application/json"}
    if before is not None:
        saved = httpx.put(url, json={"routing": {}, "weights": {"openai/gpt-4o-mini": before}}, headers=admin)
        assert saved.status_code == 200, saved.text
    body = b'{"routing": {}, "weights": {"openai/gpt-4o-mini": ' + str(weight).encode() + b"}}"
    answer = httpx.put(url, content=body, headers=admin)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == "weights.openai/gpt-4o-mini", error
    assert "pydantic" not in error["message"] and "\n" not in error["message"], error
    assert ("finite number" if weight == "NaN" else "greater than or equal to 0") in error["message"], error
