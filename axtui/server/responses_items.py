"""``GET /v1/responses/{id}/input_items``: what a stored response was given, as the Responses API lists it.

A response's input items are everything the model was given before it
answered, instructions aside: with ``previous_response_id``, the earlier
turns (their inputs and outputs) and then this request's ``input``. They
are worked out once, when the response is stored, and kept with it
(``input_items`` of `axtui.store.tables_responses`): the items of the
response it continued, then that response's answer and its own input
(`turn_items`). Listing reads that one row, so it costs the length of
the list, and nothing that happens to other responses later (a deletion,
the 30-day retention) changes an item or its id.

- an earlier turn's output items are listed as that response answered
  them, with their ids; inputs are turned back into items from the stored
  chat conversation (messages with ``input_text``/``input_image`` parts,
  ``function_call``, ``function_call_output``, Anthropic's thinking as
  ``reasoning``);
- an input item's id is derived from the response whose request sent it and
  its place there (`stable_id`), so listing twice, or listing a later turn,
  gives the same ids. Ids a client put on its input items are not kept.

Rows stored before the items were kept have none; theirs are read from the
chain of responses still kept (`context_items`), as they always were.

Items ax keeps only natively (hosted tools' calls, files) are not in the
conversation, so they are not listed. Image URLs and ``encrypted_content``
are left out unless ``include`` asks for them, as OpenAI does.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from axtui.errors import InvalidRequest
from axtui.server import responses_wire as rw
from axtui.store.tables_responses import StoredResponse
from axtui.types import Message

__all__ = ["INCLUDABLE", "ItemsQuery", "appended", "context_items", "page", "stable_id", "turn_items"]

#: The ``include`` values the SDK sends (``ResponseIncludable``); ax's items carry only the last two.
INCLUDABLE = frozenset({
    "file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
    "computer_call_output.output.image_url", "code_interpreter_call.outputs", "message.output_text.logprobs",
    "message.input_image.image_url", "reasoning.encrypted_content",
})
_IMAGE_URLS = "message.input_image.image_url"
_ENCRYPTED = "reasoning.encrypted_content"


@dataclass(frozen=True, slots=True)
class ItemsQuery:
    """The query of one listing: ``after`` (an item id), ``limit`` (1–100), ``order``, ``include``."""

    after: str | None = None
    limit: int = 20
    order: str = "desc"
    include: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, query_string: bytes) -> ItemsQuery:
        """The query from a URL's query string (``include`` repeated, or as ``include[]``, as the SDK sends it).

        Raises:
            InvalidRequest: a value out of range; the message names the parameter.
        """
        after: str | None = None
        limit = "20"
        order = "desc"
        include: set[str] = set()
        for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if name in ("include", "include[]"):
                include.update(v for v in value.split(",") if v)
            elif name == "after":
                after = value or None
            elif name == "limit":
                limit = value
            elif name == "order":
                order = value
        if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= 100:
            raise InvalidRequest(f"limit must be a whole number from 1 to 100, not {limit!r}", param="limit")
        if order not in ("asc", "desc"):
            raise InvalidRequest(f"order must be asc or desc, not {order!r}", param="order")
        unknown = sorted(include - INCLUDABLE)
        if unknown:
            raise InvalidRequest(f"include: {', '.join(map(repr, unknown))} unknown; the values are "
                                 f"{', '.join(sorted(INCLUDABLE))}", param="include")
        return cls(after=after, limit=int(limit), order=order, include=frozenset(include))


def stable_id(prefix: str, response_id: str, index: int) -> str:
    """The id of the ``index``-th input item the request of ``response_id`` sent: the same every time."""
    digest = hashlib.blake2b(f"{response_id}\0{index}".encode(), digest_size=12).hexdigest()
    return f"{prefix}_{digest}"


def _input_part(part: dict[str, Any]) -> dict[str, Any]:
    if part.get("type") in ("image_url", "input_image"):
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        detail = (image.get("detail") if isinstance(image, dict) else None) or part.get("detail") or "auto"
        return {"type": "input_image", "image_url": url, "detail": detail, "file_id": None}
    return {"type": "input_text", "text": str(part.get("text", ""))}


def _reasoning(ident: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    text = "".join(str(b.get("thinking", "")) for b in blocks if b.get("type") == "thinking")
    return {"type": "reasoning", "id": ident, "summary": [],
            "content": [{"type": "reasoning_text", "text": text}] if text else [],
            "encrypted_content": base64.b64encode(json.dumps(blocks).encode()).decode(), "status": "completed"}


def _chat_items(messages: Sequence[Message], response_id: str) -> list[dict[str, Any]]:
    """Stored chat messages as listed items, ids derived from ``response_id`` and their place."""
    items: list[dict[str, Any]] = []

    def ident(prefix: str) -> str:
        return stable_id(prefix, response_id, len(items))

    for m in messages:
        if m.role == "tool":
            items.append({"type": "function_call_output", "id": ident("fco"), "call_id": m.tool_call_id or "",
                          "output": m.text(), "status": "completed"})
            continue
        if m.role == "assistant":
            blocks = (m.model_extra or {}).get("thinking_blocks")
            if isinstance(blocks, list) and blocks:
                items.append(_reasoning(ident("rs"), [b for b in blocks if isinstance(b, dict)]))
            if m.text():
                items.append({"type": "message", "id": ident("msg"), "role": "assistant", "status": "completed",
                              "content": [{"type": "output_text", "text": m.text(), "annotations": []}]})
            for call in m.tool_calls or ():
                fn = call.get("function") or {}
                items.append({"type": "function_call", "id": ident("fc"), "call_id": str(call.get("id") or ""),
                              "name": str(fn.get("name") or ""), "arguments": str(fn.get("arguments") or "{}"),
                              "status": "completed"})
            continue
        content = [{"type": "input_text", "text": m.content}] if isinstance(m.content, str) else [
            _input_part(p) for p in m.content or () if isinstance(p, dict)]
        role = m.role if m.role in ("user", "system", "developer") else "user"
        items.append({"type": "message", "id": ident("msg"), "role": role, "status": "completed",
                      "content": content})
    return items


def _sent(conversation: Sequence[dict[str, Any]], start: int, output: list[dict[str, Any]],
          response_id: str) -> list[dict[str, Any]]:
    """The items the request of ``response_id`` sent: its conversation from ``start`` to its own ``output``."""
    end = len(conversation) - len(rw.output_messages(output))
    return _chat_items([Message.model_validate(m) for m in conversation[start:end]], response_id)


def _output(body: str) -> list[dict[str, Any]]:
    return [i for i in json.loads(body).get("output") or () if isinstance(i, dict)]


def _answered(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**i, "status": i.get("status") or "completed"} for i in output if i.get("type") in rw.CONTINUED]


def turn_items(conversation: Sequence[dict[str, Any]], start: int, body: dict[str, Any],
               previous_body: str | None) -> list[dict[str, Any]]:
    """The input items a response about to be stored adds to those of the one it continues: that one's
    answer, as it was answered (ids included), then its own input.

    Args:
        conversation: its stored conversation (`responses_wire.conversation_after`).
        start: where its own input begins there: the length of the conversation it continues (0: none).
        body: its ``response`` object.
        previous_body: the stored ``body`` of the response it continues (None: it continues none).
    """
    answered = [] if previous_body is None else _answered(_output(previous_body))
    return [*answered, *_sent(conversation, start, body["output"], body["id"])]


def appended(stored: str, more: Sequence[dict[str, Any]]) -> str:
    """``stored`` (items as a JSON array) with ``more`` after them, without decoding it.

    A long chain's items run to megabytes, and each turn stores them again: decoding and re-encoding
    them would cost each turn several times what it adds.
    """
    if not more:
        return stored
    head = stored.rstrip()[:-1].rstrip()  # the array without its closing bracket
    tail = json.dumps(list(more))[1:]
    return head + tail if head == "[" else f"{head}, {tail}"


def context_items(chain: Sequence[StoredResponse]) -> list[dict[str, Any]]:
    """The input items of the last response of ``chain``, oldest first, read from the chain.

    Only for responses stored before their items were kept: these ids change when a response of the
    chain is no longer kept, and reading costs the square of the chain's length.

    Args:
        chain: stored responses, oldest first, each the ``previous_id`` of the next; the first may continue
            one no longer kept (its whole history is then read as its own input).
    """
    items: list[dict[str, Any]] = []
    start = 0
    for k, row in enumerate(chain):
        conversation = json.loads(row.conversation)
        output = _output(row.body)
        items += _sent(conversation, start, output, row.id)
        if k < len(chain) - 1:
            items += _answered(output)
        start = len(conversation)
    return items


def _shown(item: dict[str, Any], include: frozenset[str]) -> dict[str, Any]:
    """An item as listed: image URLs and encrypted reasoning only when ``include`` asks for them."""
    if item.get("type") == "reasoning" and _ENCRYPTED not in include and "encrypted_content" in item:
        item = {**item, "encrypted_content": None}
    if item.get("type") == "message" and _IMAGE_URLS not in include and isinstance(item.get("content"), list):
        item = {**item, "content": [{**p, "image_url": None} if p.get("type") == "input_image" else p
                                    for p in item["content"]]}
    return item


def page(items: list[dict[str, Any]], query: ItemsQuery, response_id: str) -> dict[str, Any]:
    """One page of ``items`` (oldest first) in the list shape, as ``query`` asks.

    Raises:
        InvalidRequest: ``after`` names no item of this response.
    """
    ordered = items if query.order == "asc" else items[::-1]
    start = 0
    if query.after is not None:
        at = next((i for i, item in enumerate(ordered) if item.get("id") == query.after), None)
        if at is None:
            raise InvalidRequest(f"after: response {response_id!r} has no input item with id {query.after!r}; "
                                 f"pass the id of an item an earlier page listed", param="after")
        start = at + 1
    data = [_shown(i, query.include) for i in ordered[start:start + query.limit]]
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": start + query.limit < len(ordered)}
