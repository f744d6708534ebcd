"""The official OpenAI SDK against a live gateway: only base_url and key change."""

from __future__ import annotations

import openai
import pytest

from axtui.server.keys import create_key
from axtui.store import Store

from ._live import LiveServer

HELLO = [{"role": "user", "content": "Say hello in one line"}]


def client(live: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0, timeout=30)


def aclient(live: LiveServer, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0, timeout=30)


def recorded(live: LiveServer, request_id: str) -> dict[str, object]:
    """The stored row of a call, after the recorder's flush."""
    from sqlalchemy import text

    assert live.gateway.recorder is not None
    live.gateway.recorder.flush()
    with live.gateway.store.connect() as conn:  # type: ignore[union-attr]
        row = conn.execute(text("SELECT * FROM calls WHERE request_id = :r"), {"r": request_id}).mappings().one()
    return dict(row)


def test_plain_completion(live: LiveServer, key: str) -> None:
    raw = client(live, key).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HELLO)
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert completion.id == raw.headers["x-ax-request-id"]
    row = recorded(live, completion.id)
    assert row["user"] == "alice" and row["status"] == "ok" and row["stream"] == 0
    assert row["output_tokens"] == completion.usage.completion_tokens


def test_stream_with_usage(live: LiveServer, key: str) -> None:
    stream = client(live, key).chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    # The usage arrives on one last chunk with no choices.
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    row = recorded(live, chunks[0].id)
    assert row["stream"] == 1 and row["status"] == "ok"


def test_stream_without_usage_has_no_usage_chunk(live: LiveServer, key: str) -> None:
    chunks = list(client(live, key).chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True))
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_async_plain_and_stream(live: LiveServer, key: str) -> None:
    api = aclient(live, key)
    completion = await api.chat.completions.create(model="fast", messages=HELLO)
    assert completion.choices[0].message.content
    parts = []
    stream = await api.chat.completions.create(model="smart", messages=HELLO, stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    assert "".join(parts)
    await api.close()


def test_unknown_model_is_404_listing_served_models(live: LiveServer, key: str) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client(live, key).chat.completions.create(model="gpt-9", messages=HELLO)
    assert info.value.status_code == 404
    body = info.value.body
    assert isinstance(body, dict) and body["code"] == "model_not_found" and body["param"] == "model"
    assert "gpt-4o-mini" in body["message"] and "fast" in body["message"]


def test_invalid_request_names_the_field(live: LiveServer, key: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(live, key).chat.completions.create(model="gpt-4o-mini", messages=HELLO, temperature=7)
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "temperature" and body["type"] == "invalid_request_error"


async def test_async_errors(live: LiveServer) -> None:
    api = aclient(live, "axk_000000000000_not-a-real-secret-at-all")
    with pytest.raises(openai.AuthenticationError):
        await api.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    await api.close()


def test_wrong_key_is_401(live: LiveServer) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        client(live, "sk-something-else").chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert info.value.status_code == 401
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "invalid_api_key"


def test_models_list_and_retrieve(live: LiveServer, key: str) -> None:
    api = client(live, key)
    ids = {m.id for m in api.models.list()}
    assert {"gpt-4o-mini", "claude-haiku-4-5", "fast", "smart", "cheap"} <= ids
    assert api.models.retrieve("fast").owned_by == "ax-alias"
    assert api.models.retrieve("gpt-4o").owned_by == "azure,openai"
    with pytest.raises(openai.NotFoundError):
        api.models.retrieve("gpt-9")


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings(live: LiveServer, key: str, encoding: str) -> None:
    api = client(live, key)
    if encoding == "float":
        out = api.embeddings.create(model="text-embedding-3-small", input=["one", "two"], encoding_format="float")
    else:
        # The SDK asks for base64 by default and decodes it itself.
        out = api.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
    assert [d.index for d in out.data] == [0, 1]
    assert len(out.data[0].embedding) == 256
    assert out.data[0].embedding != out.data[1].embedding
    assert abs(sum(x * x for x in out.data[0].embedding) - 1.0) < 1e-3


def test_token_ids_embed_where_the_api_takes_them_and_elsewhere_say_what_to_send(live: LiveServer, key: str) -> None:
    """LangChain's OpenAIEmbeddings sends token ids by default: OpenAI's API takes them, so ax does."""
    api = client(live, key)
    many = api.embeddings.create(model="text-embedding-3-small", input=[[9906, 1917], [15339]], encoding_format="float")
    one = api.embeddings.create(model="text-embedding-3-small", input=[9906, 1917], encoding_format="float")
    assert [d.index for d in many.data] == [0, 1] and len(one.data) == 1
    assert one.data[0].embedding == many.data[0].embedding != many.data[1].embedding
    with pytest.raises(openai.BadRequestError) as info:  # Gemini's embeddings take text only
        api.embeddings.create(model="text-embedding-004", input=[[9906, 1917]])
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "input"
    assert "check_embedding_ctx_length=False" in info.value.body["message"]
    assert api.embeddings.create(model="text-embedding-004", input=["Hello world"]).data


def test_trusted_key_names_its_end_users(live: LiveServer, store: Store) -> None:
    trusted, _ = create_key(store, "app", trusted=True)
    plain, _ = create_key(store, "bob")
    one = client(live, trusted).chat.completions.create(model="gpt-4o-mini", messages=HELLO, user="carol")
    two = client(live, plain).chat.completions.create(model="gpt-4o-mini", messages=HELLO, user="mallory")
    # The end user lives in the trusted key's namespace, never the real carol.
    assert recorded(live, one.id)["user"] == "app/carol"
    # An untrusted key cannot speak for someone else: its own user is charged.
    assert recorded(live, two.id)["user"] == "bob"


def test_no_auth_serves_without_a_key(open_live: LiveServer) -> None:
    api = openai.OpenAI(base_url=f"{open_live.url}/v1", api_key="anything", max_retries=0)
    done = api.chat.completions.create(model="gpt-4o-mini", messages=HELLO, user="dana")
    anon = api.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert recorded(open_live, done.id)["user"] == "dana"
    assert recorded(open_live, anon.id)["user"] == "local"
