"""When a simulated model calls a tool, which one, and with what arguments.

A real model given tools calls one when ``tool_choice`` requires it
(``required``, a named function; Anthropic's ``any``/``tool``; Gemini's
``ANY``) or when the conversation asks for it. The simulation reads "asks
for it" as: the last turn is the user's and names a function (``get
weather`` or ``get_weather``) or says "tool". After a tool result the
model answers in text, so an agent loop ends. Several functions named in
one prompt are called in parallel unless the request forbids it
(``parallel_tool_calls: false``, Anthropic's ``disable_parallel_tool_use``).

Arguments are valid JSON holding every ``required`` field of the
function's schema, with values of the schema's types (enums take their
first value; strings take a word from the prompt; see
`axtui.providers.sim.schema`), drawn from the caller's seeded
`random.Random`, so the same prompt gets the same call.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import Any

from axtui.providers.sim.schema import schema_instance
from axtui.providers.sim.text import keywords
from axtui.types import ChatRequest

__all__ = ["SimToolCall", "argument_fragments", "plan_tool_calls"]

_ASKS = re.compile(r"\btools?\b|\bfunctions?\b", re.IGNORECASE)


@dataclass(slots=True, frozen=True)
class SimToolCall:
    """One call the simulated model makes: its id, function and JSON arguments."""

    id: str
    name: str
    arguments: str


def _functions(request: ChatRequest) -> list[tuple[str, dict[str, Any]]]:
    """(name, parameters schema) of every function tool, in request order."""
    out: list[tuple[str, dict[str, Any]]] = []
    for tool in request.tools or ():
        fn = tool.get("function") if tool.get("type") == "function" else None
        if isinstance(fn, dict) and fn.get("name"):
            params = fn.get("parameters")
            out.append((str(fn["name"]), params if isinstance(params, dict) else {}))
        elif tool.get("name") and isinstance(tool.get("input_schema"), dict):
            out.append((str(tool["name"]), tool["input_schema"]))
    return out


def _choice(request: ChatRequest) -> tuple[str, str | None]:
    """(mode, forced function): mode is ``auto``, ``none`` or ``required``."""
    choice = request.tool_choice
    if choice is None:
        return "auto", None
    if isinstance(choice, str):
        return (choice if choice in ("none", "required") else "auto"), None
    kind = choice.get("type")
    name = (choice.get("function") or {}).get("name") or choice.get("name")
    if kind in ("function", "tool") and name:
        return "required", str(name)
    if kind == "any":
        return "required", None
    if kind == "none":
        return "none", None
    return "auto", None


def _parallel(request: ChatRequest) -> bool:
    extra = request.passthrough()
    if extra.get("parallel_tool_calls") is False:
        return False
    choice = request.tool_choice
    return not (isinstance(choice, dict) and choice.get("disable_parallel_tool_use"))


def _mentioned(text: str, name: str) -> bool:
    lowered = text.lower()
    return name.lower() in lowered or name.lower().replace("_", " ") in lowered


def plan_tool_calls(request: ChatRequest, rng: random.Random, id_seed: str) -> list[SimToolCall]:
    """The tool calls a simulated model answers ``request`` with (empty: it answers in text)."""
    functions = _functions(request)
    if not functions:
        return []
    mode, forced = _choice(request)
    if mode == "none":
        return []
    last = request.messages[-1]
    prompt = last.text() if last.role == "user" else ""
    if forced is not None:
        chosen = [(n, p) for n, p in functions if n == forced] or functions[:1]
    else:
        chosen = [(n, p) for n, p in functions if prompt and _mentioned(prompt, n)]
        if (not chosen and mode == "required") or (not chosen and prompt and _ASKS.search(prompt)):
            chosen = functions[:1]
        if len(chosen) > 1 and not _parallel(request):
            chosen = chosen[:1]
    if mode != "required" and last.role != "user":
        # A tool result came back: the model answers it in words.
        return []
    words = keywords(prompt or request.prompt_text()) or ["value"]
    return [
        SimToolCall(id=f"call_{id_seed[:20]}{i}", name=name,
                    arguments=json.dumps(_arguments(params, rng, words), separators=(",", ":")))
        for i, (name, params) in enumerate(chosen)
    ]


def _arguments(params: dict[str, Any], rng: random.Random, words: list[str]) -> dict[str, Any]:
    # Arguments are an object whatever the schema says (one with no properties gets {}).
    value = schema_instance(params, rng, words)
    return value if isinstance(value, dict) else {}


def argument_fragments(arguments: str, rng: random.Random) -> list[str]:
    """The pieces a stream sends a call's arguments in (a few characters each, as OpenAI and Anthropic do)."""
    pieces: list[str] = []
    i = 0
    while i < len(arguments):
        n = 3 + int(rng.random() * 8)
        pieces.append(arguments[i : i + n])
        i += n
    return pieces
