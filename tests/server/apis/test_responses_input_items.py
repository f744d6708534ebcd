"""``client.responses.input_items.list``: what a stored response was given, through `ax serve` over `ax sim serve`.

The official OpenAI SDK lists the items, pages through them and reads them into its own types; tenancy
is the retrieve route's: a key lists only its own user's responses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, text

from axtui.server.responses_items import appended
from axtui.store import Store

from .._live import LiveServer
from ._sim_upstream import UPSTREAMS

WEATHER = {
    "type": "function", "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"]},
}
PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def client(live: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0, timeout=30)


def texts(items: list[Any]) -> list[str]:
    """Each listed message's text, ``(type)`` for other items."""
    out = []
    for item in items:
        if item.type == "message":
            out.append("".join(getattr(p, "text", None) or "<image>" for p in item.content))
        else:
            out.append(f"({item.type})")
    return out


def test_the_input_is_listed_newest_first_with_ids_that_stay(over_sim: LiveServer, key: str) -> None:
    api = client(over_sim, key)
    made = api.responses.create(model="gpt-4o-mini", instructions="Be brief.", input=[
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": [{"type": "input_text", "text": "What is in this picture?"},
                                     {"type": "input_image", "image_url": PIXEL, "detail": "low"}]},
        {"role": "assistant", "content": "A pixel."},
        {"role": "user", "content": "Describe it again"},
    ])
    listed = api.responses.input_items.list(made.id)
    assert listed.object == "list" and listed.has_more is False
    # Newest first by default, as OpenAI's API; the instructions are not an input item.
    assert texts(listed.data) == ["Describe it again", "A pixel.", "What is in this picture?<image>",
                                  "Answer in French."]
    assert [getattr(i, "role", None) for i in listed.data] == ["user", "assistant", "user", "developer"]
    assert all(i.id.startswith("msg_") for i in listed.data) and len({i.id for i in listed.data}) == 4
    assert (listed.first_id, listed.last_id) == (listed.data[0].id, listed.data[-1].id)
    oldest_first = api.responses.input_items.list(made.id, order="asc")
    assert [i.id for i in oldest_first.data] == [i.id for i in listed.data][::-1]
    # The image's URL only when asked for, as OpenAI does; its detail always.
    image = listed.data[2].content[1]
    assert image.type == "input_image" and image.detail == "low" and image.image_url is None
    asked = api.responses.input_items.list(made.id, include=["message.input_image.image_url"])
    assert asked.data[2].content[1].image_url == PIXEL
    assert [i.id for i in asked.data] == [i.id for i in listed.data]


@pytest.mark.parametrize("model", list(UPSTREAMS))
def test_a_continued_response_lists_the_earlier_turns_with_their_ids(over_sim: LiveServer, key: str,
                                                                    model: str) -> None:
    api = client(over_sim, key)
    first = api.responses.create(model=model, input="Check get_weather for Rome", tools=[WEATHER])
    call = next(o for o in first.output if o.type == "function_call")
    second = api.responses.create(model=model, previous_response_id=first.id, tools=[WEATHER], input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "clear"}'}])
    third = api.responses.create(model=model, previous_response_id=second.id, input="And tomorrow?")
    (asked,) = api.responses.input_items.list(first.id).data
    items = api.responses.input_items.list(third.id, order="asc").data
    assert [i.type for i in items] == ["message", "function_call", "function_call_output", "message", "message"]
    # The same item has the same id wherever it is listed; an answer keeps the id it was answered with.
    assert items[0].id == asked.id
    assert items[1].type == "function_call" and (items[1].id, items[1].call_id) == (call.id, call.call_id)
    assert items[2].type == "function_call_output" and items[2].output == '{"sky": "clear"}'
    assert items[3].id == second.output[-1].id and texts(items[3:]) == [second.output_text, "And tomorrow?"]
    again = api.responses.input_items.list(third.id, order="asc").data
    assert [i.id for i in again] == [i.id for i in items]
    # An earlier turn deleted, the later one still lists everything it was given, under the same ids.
    api.responses.delete(first.id)
    kept = api.responses.input_items.list(third.id, order="asc").data
    assert [(i.id, i.type) for i in kept] == [(i.id, i.type) for i in items] and texts(kept) == texts(items)


def test_pages_follow_after_and_limit(over_sim: LiveServer, key: str) -> None:
    api = client(over_sim, key)
    made = api.responses.create(model="gpt-4o-mini", input=[{"role": "user", "content": f"Line {i}"}
                                                            for i in range(7)])
    first = api.responses.input_items.list(made.id, limit=3)
    assert texts(first.data) == ["Line 6", "Line 5", "Line 4"] and first.has_more is True
    # The SDK pages on by itself, passing the last id as `after`.
    assert texts(list(api.responses.input_items.list(made.id, limit=3))) == [f"Line {i}" for i in range(6, -1, -1)]
    rest = api.responses.input_items.list(made.id, limit=3, after=first.data[-1].id, order="desc")
    assert texts(rest.data) == ["Line 3", "Line 2", "Line 1"] and rest.has_more is True
    last = api.responses.input_items.list(made.id, limit=3, after=rest.data[-1].id)
    assert texts(last.data) == ["Line 0"] and last.has_more is False
    ascending = api.responses.input_items.list(made.id, limit=2, order="asc", after=first.data[-1].id)
    assert texts(ascending.data) == ["Line 5", "Line 6"] and ascending.has_more is False


def test_only_the_keys_user_lists_and_unknown_ones_are_404_as_on_retrieve(over_sim: LiveServer, key: str,
                                                                          bob_key: str) -> None:
    alice, bob = client(over_sim, key), client(over_sim, bob_key)
    made = alice.responses.create(model="gpt-4o-mini", input="Name three rivers")
    assert texts(alice.responses.input_items.list(made.id).data) == ["Name three rivers"]
    with pytest.raises(openai.NotFoundError) as listing:
        bob.responses.input_items.list(made.id)
    with pytest.raises(openai.NotFoundError) as retrieving:
        bob.responses.retrieve(made.id)
    assert listing.value.body == retrieving.value.body
    assert isinstance(listing.value.body, dict) and listing.value.body["code"] == "not_found"
    unstored = alice.responses.create(model="gpt-4o-mini", input="Name three lakes", store=False)
    with pytest.raises(openai.NotFoundError):
        alice.responses.input_items.list(unstored.id)
    alice.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        alice.responses.input_items.list(made.id)
    assert httpx.get(f"{over_sim.url}/v1/responses/{made.id}/input_items").status_code == 401
    wrong = httpx.delete(f"{over_sim.url}/v1/responses/{made.id}/input_items",
                         headers={"authorization": f"Bearer {key}"})
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    assert wrong.headers["allow"] == "GET", "the methods this path takes"
    stored = httpx.put(f"{over_sim.url}/v1/responses/{made.id}", headers={"authorization": f"Bearer {key}"})
    assert stored.status_code == 405 and stored.headers["allow"] == "GET, DELETE"


@pytest.mark.parametrize(("query", "param"), [
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "²"}, "limit"), ({"order": "newest"}, "order"),
    ({"include": ["message.everything"]}, "include"), ({"after": "msg_nope"}, "after"),
])
def test_a_bad_query_is_400_naming_the_parameter(over_sim: LiveServer, key: str, query: dict[str, Any],
                                                 param: str) -> None:
    api = client(over_sim, key)
    made = api.responses.create(model="gpt-4o-mini", input="Name a mountain")
    with pytest.raises(openai.BadRequestError) as info:
        api.responses.input_items.list(made.id, **query)
    assert isinstance(info.value.body, dict) and info.value.body["param"] == param


def test_thinking_sent_back_is_listed_as_reasoning_and_encrypted_only_when_asked(over_sim: LiveServer,
                                                                                key: str) -> None:
    api = client(over_sim, key)
    ask: dict[str, Any] = {"model": "claude-haiku-4-5", "reasoning": {"effort": "low"}, "tools": [WEATHER]}
    first = api.responses.create(input="Use get_weather for Accra", **ask)
    sent = [o.model_dump(exclude_none=True) for o in first.output]
    result = {"type": "function_call_output", "call_id": sent[1]["call_id"], "output": "31C"}
    again = api.responses.create(input=[{"role": "user", "content": "Use get_weather for Accra"}, *sent, result],
                                 **ask)
    items = api.responses.input_items.list(again.id, order="asc").data
    assert [i.type for i in items] == ["message", "reasoning", "function_call", "function_call_output"]
    reasoning = items[1]
    assert reasoning.type == "reasoning" and reasoning.content and reasoning.content[0].text
    assert reasoning.encrypted_content is None
    shown = api.responses.input_items.list(again.id, order="asc", include=["reasoning.encrypted_content"]).data
    assert shown[1].type == "reasoning" and shown[1].encrypted_content == sent[0]["encrypted_content"]


def test_deleting_a_turn_in_the_middle_changes_no_id_and_no_cursor(over_sim: LiveServer, key: str) -> None:
    api = client(over_sim, key)
    first = api.responses.create(model="gpt-4o-mini", input="Name a river")
    second = api.responses.create(model="gpt-4o-mini", previous_response_id=first.id, input="And a lake?")
    third = api.responses.create(model="gpt-4o-mini", previous_response_id=second.id, input=[
        {"role": "user", "content": "And a sea?"}, {"role": "user", "content": "Or an ocean?"}])
    listed = api.responses.input_items.list(third.id, order="asc").data
    assert texts(listed) == ["Name a river", first.output_text, "And a lake?", second.output_text, "And a sea?",
                             "Or an ocean?"]
    newest = api.responses.input_items.list(third.id, limit=2)
    api.responses.delete(second.id)
    kept = api.responses.input_items.list(third.id, order="asc").data
    assert [(i.id, i.role) for i in kept] == [(i.id, i.role) for i in listed] and texts(kept) == texts(listed)
    # An earlier answer keeps the id it was answered with, though the response that answered it is gone.
    assert (kept[1].id, kept[3].id) == (first.output[-1].id, second.output[-1].id)
    # A page's cursor, taken before the deletion, still pages on through the same items.
    rest = api.responses.input_items.list(third.id, limit=2, after=newest.last_id)
    assert [i.id for i in rest.data] == [i.id for i in listed[3:1:-1]] and rest.has_more is True


def test_responses_stored_before_their_items_were_kept_list_as_before(over_sim: LiveServer, key: str,
                                                                     store: Store) -> None:
    api = client(over_sim, key)
    first = api.responses.create(model="gpt-4o-mini", input="Name a river")
    second = api.responses.create(model="gpt-4o-mini", previous_response_id=first.id, input="And a lake?")
    listed = api.responses.input_items.list(second.id, order="asc").data
    # Rows stored before responses kept their items (migration apis_0002) have none: read from the chain.
    with store.connect() as conn:
        conn.execute(text("UPDATE responses SET input_items = NULL"))
    assert [i.id for i in api.responses.input_items.list(second.id, order="asc").data] == [i.id for i in listed]
    # A turn continuing one of them keeps what the chain gave, and keeps it through a deletion.
    third = api.responses.create(model="gpt-4o-mini", previous_response_id=second.id, input="And a sea?")
    later = api.responses.input_items.list(third.id, order="asc").data
    assert [i.id for i in later[:3]] == [i.id for i in listed] and texts(later[3:]) == [second.output_text,
                                                                                         "And a sea?"]
    api.responses.delete(second.id)
    assert [i.id for i in api.responses.input_items.list(third.id, order="asc").data] == [i.id for i in later]


@contextmanager
def responses_read(store: Store) -> Iterator[list[str]]:
    """The statements reading the ``responses`` table while the block runs."""
    read: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM responses" in statement:
            read.append(statement)

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        yield read
    finally:
        event.remove(store.engine, "before_cursor_execute", note)


def test_listing_reads_the_listed_response_alone_however_long_its_chain(over_sim: LiveServer, key: str) -> None:
    # Listing once read every earlier turn's conversation, each the whole history up to it: its cost grew
    # with the square of the chain's length (0.7 to 2 s a page at 500 turns, against 5 ms now).
    api = client(over_sim, key)
    turns = [api.responses.create(model="gpt-4o-mini", input="Question 0")]
    for i in range(1, 12):
        turns.append(api.responses.create(model="gpt-4o-mini", previous_response_id=turns[-1].id,
                                          input=f"Question {i}"))
    assert over_sim.gateway.store is not None
    with responses_read(over_sim.gateway.store) as read:
        listed = api.responses.input_items.list(turns[-1].id, order="asc", limit=100).data
    assert texts(listed[::2]) == [f"Question {i}" for i in range(12)]
    assert [i.id for i in listed[1::2]] == [t.output[-1].id for t in turns[:-1]]
    assert len(read) == 1, read


ITEMS = st.lists(st.dictionaries(st.sampled_from(["type", "id", "text"]), st.text(max_size=8)), max_size=4)


@given(stored=ITEMS, more=ITEMS, indent=st.sampled_from([None, 1]))
def test_items_appended_to_stored_ones_read_back_as_both(stored: list[dict[str, Any]], more: list[dict[str, Any]],
                                                         indent: int | None) -> None:
    assert json.loads(appended(json.dumps(stored, indent=indent), more)) == stored + more
