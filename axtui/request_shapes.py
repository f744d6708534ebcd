"""OpenAI's shapes of a chat request's tool fields, checked where the request is validated.

`ChatRequest` and `Message` keep ``tools``, ``tool_choice``, ``tool_calls``
and ``response_format`` as plain JSON objects, so kinds only one provider
knows (Anthropic's web search tool and ``{"type": "any"}`` choice, Gemini's
``googleSearch``, OpenAI's custom tools) pass through as the client sent
them. The parts that every provider's translation reads are checked here
against OpenAI's documented shapes, so a malformed one is a 400 that names
the field rather than a failure inside a provider's translation:

- a tool: ``{"type": "function", "function": {"name": …, "description"?: …,
  "parameters"?: …, "strict"?: …}}``;
- ``tool_choice``: ``"none"``, ``"auto"``, ``"required"`` or
  ``{"type": "function", "function": {"name": …}}``;
- an assistant's tool call: ``{"id": …, "type": "function", "function":
  {"name": …, "arguments": "<JSON text>"}}`` (arguments as an object are
  taken too, as every translation reads them);
- ``response_format``: ``{"type": "json_schema", "json_schema": {"name": …,
  "schema"?: {…}, "strict"?: …}}``.

A ``function`` (or ``json_schema``) member is required when the ``type``
names it, and checked wherever it appears: some translations read it
whatever the type says. A null optional member counts as absent. A tool's
``parameters`` is not checked: it is a JSON Schema the upstream reads, and
a malformed one is the upstream's to refuse (the simulated fleet is tested
to survive one).

Each check raises pydantic's `ValidationError` with paths that start below
the field checked; pydantic puts the field's own path in front, so the
client reads ``tools.0.function.name: …`` (worded by `axtui.validation`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from types import UnionType
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = [
    "FUNCTION_NAME",
    "TOOL_CHOICES",
    "check_response_format",
    "check_tool_calls",
    "check_tool_choice",
    "check_tools",
]

#: A function's name, as OpenAI accepts it (in a tool and in a tool choice).
FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")

#: The tool choices given as a word.
TOOL_CHOICES = ("none", "auto", "required")

# What a valid value looks like, for the messages.
_NAME_RULE = 'must be 1 to 64 letters, digits, underscores or dashes, such as "get_weather"'
_FUNCTION = '{"name": "get_weather", "parameters": {…}}'
_CHOICE = '{"type": "function", "function": {"name": "get_weather"}}'
_CALL = '{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}'
_CALLED = '{"name": "get_weather", "arguments": "{}"}'
_SCHEMA = '{"name": "answer", "schema": {"type": "object", …}}'

#: A path below the field checked: member names and list indexes.
Loc = tuple[int | str, ...]


def _shown(value: Any) -> str:
    """The value as JSON, cut short: enough for the client to recognise what it sent."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


class _Problems:
    """The malformed parts of one field, gathered so the client hears of all of them at once."""

    def __init__(self) -> None:
        self.found: list[InitErrorDetails] = []

    def add(self, loc: Loc, message: str, value: Any) -> None:
        """Note that the value at ``loc`` is wrong; ``message`` says how and what would be right."""
        self.found.append({"type": PydanticCustomError("invalid_shape", message), "loc": loc, "input": value})

    def raise_any(self) -> None:
        """Raise every problem noted, as one `ValidationError`, if there is any."""
        if self.found:
            raise ValidationError.from_exception_data("ChatRequest", self.found)

    def member(self, owner: Mapping[str, Any], loc: Loc, key: str, kind: type | UnionType, rule: str, *,
               required: bool = False) -> Any:
        """``owner[key]`` when it is a ``kind``; None (and a problem noted, unless optional and absent) otherwise.

        Args:
            owner: the object holding the member.
            loc: the path to ``owner``.
            key: the member's name.
            kind: the Python type its JSON value must have (``str``, ``bool``, ``dict``, or a union).
            rule: what a valid value is, worded to follow ``missing;`` or to precede ``, not <value>``.
            required: whether the member must be there (a null one counts as absent).
        """
        value = owner.get(key)
        if value is None:
            if required:
                self.add((*loc, key), f"{'missing' if key not in owner else 'null'}; {rule}", value)
            return None
        if not isinstance(value, kind):
            self.add((*loc, key), f"{rule}, not {_shown(value)}", value)
            return None
        return value

    def function_name(self, function: Mapping[str, Any], loc: Loc) -> None:
        """A function's ``name``, as a tool declares it or a tool choice names it."""
        name = self.member(function, loc, "name", str, _NAME_RULE, required=True)
        if name is not None and not FUNCTION_NAME.fullmatch(name):
            self.add((*loc, "name"), f"{_NAME_RULE}, not {_shown(name)}", name)


def check_tools(tools: Sequence[Mapping[str, Any]]) -> None:
    """Check each function tool's ``function``; other kinds of tool pass as they are.

    Raises:
        ValidationError: a function tool is malformed; paths start at the tool's index.
    """
    problems = _Problems()
    for i, tool in enumerate(tools):
        if tool.get("type") != "function" and "function" not in tool:
            continue
        function = problems.member(tool, (i,), "function", dict, f"must be an object such as {_FUNCTION}",
                                   required=True)
        if function is None:
            continue
        loc: Loc = (i, "function")
        problems.function_name(function, loc)
        problems.member(function, loc, "description", str, "must be a string")
        problems.member(function, loc, "strict", bool, "must be true or false")
    problems.raise_any()


def check_tool_choice(choice: str | Mapping[str, Any]) -> None:
    """Check a tool choice: one of `TOOL_CHOICES`, or an object; a function one must name its function.

    Objects of other types (Anthropic's ``{"type": "any"}``, OpenAI's
    ``allowed_tools``) pass as they are.

    Raises:
        ValidationError: the choice is malformed; paths start below ``tool_choice``.
    """
    problems = _Problems()
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            problems.add((), f'must be "none", "auto", "required" or {_CHOICE}, not {_shown(choice)}', choice)
    elif choice.get("type") == "function" or "function" in choice:
        function = problems.member(choice, (), "function", dict,
                                   'must be an object naming the function to call, such as {"name": "get_weather"}',
                                   required=True)
        if function is not None:
            problems.function_name(function, ("function",))
    problems.raise_any()


def check_tool_calls(calls: Sequence[Mapping[str, Any]]) -> None:
    """Check an assistant message's function calls; calls of other types (OpenAI's custom ones) pass.

    A call without a ``type`` is refused, and its other members checked as
    a function call's: that is how every translation reads it.

    Raises:
        ValidationError: a call is malformed; paths start at the call's index.
    """
    problems = _Problems()
    for i, call in enumerate(calls):
        kind = call.get("type")
        if not isinstance(kind, str):
            problems.member(call, (i,), "type", str, f'must be "function" (a tool call is {_CALL})', required=True)
        is_function = kind is None or kind == "function"
        if not is_function and "function" not in call:
            continue
        if is_function:
            problems.member(call, (i,), "id", str, 'must be a string, the id its tool message answers as '
                            'tool_call_id, such as "call_1"', required=True)
        function = problems.member(call, (i,), "function", dict, f"must be an object such as {_CALLED}",
                                   required=True)
        if function is None:
            continue
        loc: Loc = (i, "function")
        problems.member(function, loc, "name", str, 'must be a string, the name of the function called',
                        required=True)
        # An object is taken too: some compatible servers answer with one, and clients send it back.
        problems.member(function, loc, "arguments", str | dict,
                        'must be a string holding a JSON object, such as "{}" for no arguments', required=True)
    problems.raise_any()


def check_response_format(fmt: Mapping[str, Any]) -> None:
    """Check a ``json_schema`` response format; ``text`` and ``json_object`` pass as they are.

    Raises:
        ValidationError: the format is malformed; paths start below ``response_format``.
    """
    problems = _Problems()
    if fmt.get("type") == "json_schema" or "json_schema" in fmt:
        spec = problems.member(fmt, (), "json_schema", dict, f"must be an object such as {_SCHEMA}",
                               required=True)
        if spec is not None:
            loc: Loc = ("json_schema",)
            problems.member(spec, loc, "name", str, 'must be a string naming the schema, such as "answer"',
                            required=True)
            problems.member(spec, loc, "schema", dict,
                            'must be a JSON Schema object, such as {"type": "object", "properties": {…}}')
            problems.member(spec, loc, "strict", bool, "must be true or false")
    problems.raise_any()
