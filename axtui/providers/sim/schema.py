"""Values a JSON Schema accepts: what a simulated model fills structured outputs and tool arguments with.

`schema_instance` builds one valid value for the schemas clients send:
pydantic's (``$defs`` and ``$ref``, ``anyOf`` with ``null`` for optional
fields, ``allOf``, ``enum`` and ``const``, ``prefixItems`` for tuples,
string ``format`` s, numeric and length bounds), OpenAI's strict ones
(every property required, ``additionalProperties: false``) and Gemini's
OpenAPI flavour (upper-case ``type``, ``nullable``, ``propertyOrdering``).

Two ways to fill: an *answer* (a structured output) fills every property
and gives arrays a few items, its strings a sentence of the simulator's
prose; *arguments* (a tool call) fill only what is required, arrays only
up to ``minItems``, strings with one of the prompt's words. Every choice
comes from the caller's seeded `random.Random`, so the same prompt gets the
same value. A string ``pattern`` is not followed, and a schema that
requires itself without end is cut short: such values may not validate.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["schema_instance"]

# Past this depth an answer is filled as sparingly as arguments are (a
# recursive schema then ends at its optional parts); past twice it, not at all.
_FULL_DEPTH = 4
_MAX_DEPTH = 12
_FORMATS: dict[str, str] = {
    "date-time": "2025-01-15T09:30:00Z",
    "date": "2025-01-15",
    "time": "09:30:00",
    "duration": "P1D",
    "email": "someone@example.com",
    "idn-email": "someone@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "binary": "",
}


def schema_instance(
    schema: Any,
    rng: random.Random,
    words: Sequence[str],
    *,
    sentence: Callable[[], str] | None = None,
) -> Any:
    """One value that ``schema`` accepts.

    Args:
        schema: a JSON Schema (its ``$ref`` s point into itself).
        rng: the source of every choice.
        words: what short strings are made of (at least one word).
        sentence: given, the value is a whole answer: every property
            filled, arrays with items, strings a sentence from this. Left
            out, it is tool arguments: required properties only, strings a word.
    """
    return _Filler(schema, rng, list(words) or ["value"], sentence).value(schema, 0)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(slots=True)
class _Filler:
    root: Any
    rng: random.Random
    words: list[str]
    sentence: Callable[[], str] | None

    def full(self, depth: int) -> bool:
        return self.sentence is not None and depth <= _FULL_DEPTH

    def resolve(self, ref: str) -> Any:
        """The schema a local ``$ref`` (``#/$defs/Step``) points at; an empty one for any other."""
        if not ref.startswith("#"):
            return {}
        node = self.root
        for raw in [p for p in ref[1:].split("/") if p]:
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return {}
        return node

    def merged(self, schema: dict[str, Any], hops: int = 0) -> dict[str, Any]:
        """``schema`` with its ``$ref`` and ``allOf`` folded in: one schema to fill."""
        out = {k: v for k, v in schema.items() if k not in ("$ref", "allOf")}
        if hops > _MAX_DEPTH:  # a $ref to itself
            return out
        parts: list[Any] = []
        if isinstance(schema.get("$ref"), str):
            parts.append(self.resolve(schema["$ref"]))
        if isinstance(schema.get("allOf"), list):
            parts += schema["allOf"]
        for part in parts:
            if not isinstance(part, dict):
                continue
            part = self.merged(part, hops + 1) if ("$ref" in part or "allOf" in part) else part
            for key, value in part.items():
                if key == "properties" and isinstance(value, dict):
                    out["properties"] = {**value, **(out.get("properties") or {})}
                elif key == "required" and isinstance(value, list):
                    out["required"] = list(dict.fromkeys([*(out.get("required") or []), *value]))
                else:
                    out.setdefault(key, value)
        return out

    def value(self, schema: Any, depth: int) -> Any:
        if schema is False:
            return None
        if not isinstance(schema, dict):
            return self.text({})
        if depth > _MAX_DEPTH:
            return None
        if "$ref" in schema or "allOf" in schema:
            schema = self.merged(schema)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[int(self.rng.random() * len(enum))] if self.full(depth) else enum[0]
        for union in ("anyOf", "oneOf"):
            branches = [b for b in schema.get(union) or () if isinstance(b, dict | bool)]
            if branches:
                return self.value(self.branch(branches, depth), depth)
        kind = self.kind(schema)
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, depth)
        if kind in ("integer", "number"):
            return self.number(schema, integer=kind == "integer")
        if kind == "boolean":
            return self.rng.random() < 0.5 if self.full(depth) else True
        if kind == "null":
            return None
        return self.text(schema)

    def branch(self, branches: list[Any], depth: int) -> Any:
        """The branch of a union to fill: the first that is not null, unless deep enough to stop."""
        def is_null(b: Any) -> bool:
            return isinstance(b, dict) and self.kind(b) == "null"

        if depth > _FULL_DEPTH and any(is_null(b) for b in branches):
            return next(b for b in branches if is_null(b))
        return next((b for b in branches if not is_null(b)), branches[0])

    @staticmethod
    def kind(schema: dict[str, Any]) -> str | None:
        """The schema's type, lower case (Gemini writes ``OBJECT``); the first not null of a list."""
        kind = schema.get("type")
        if isinstance(kind, list):
            named = [str(k).lower() for k in kind]
            kind = next((k for k in named if k != "null"), named[0] if named else None)
        if isinstance(kind, str):
            return kind.lower()
        if "properties" in schema or "additionalProperties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return None

    def object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        raw = schema.get("properties")
        props: dict[str, Any] = raw if isinstance(raw, dict) else {}
        required = [r for r in schema.get("required") or () if isinstance(r, str)]
        if self.full(depth):
            order = schema.get("propertyOrdering")
            names = [n for n in order if isinstance(n, str)] if isinstance(order, list) else []
            names = list(dict.fromkeys([*names, *props, *required]))
        else:
            names = required
        return {name: self.value(props.get(name, {}), depth + 1) for name in names}

    def array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        items = schema.get("items")
        prefix = schema.get("prefixItems")
        if isinstance(items, list):  # the older tuple form
            prefix, items = items, schema.get("additionalItems")
        prefix = prefix if isinstance(prefix, list) else []
        least = int(_number(schema.get("minItems")) or 0)
        most = _number(schema.get("maxItems"))
        count = max(least, len(prefix))
        if self.full(depth):
            count = max(count, 1 + int(self.rng.random() * 3))
        if most is not None:
            count = min(count, int(most))
        if not prefix and items is False:
            return []
        out = [self.value(prefix[i] if i < len(prefix) else items if items is not None else {}, depth + 1)
               for i in range(count)]
        if schema.get("uniqueItems"):
            seen: dict[str, Any] = {}
            for v in out:
                seen.setdefault(json.dumps(v, sort_keys=True), v)
            out = list(seen.values())
        return out

    def number(self, schema: dict[str, Any], *, integer: bool) -> int | float:
        value: float = 1 + int(self.rng.random() * 9) if integer else round(1 + self.rng.random() * 9, 1)
        low, high = _number(schema.get("minimum")), _number(schema.get("maximum"))
        xlow, xhigh = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        # Draft 4 said exclusiveMinimum: true beside minimum.
        strict_low = xlow is True or _number(xlow) is not None
        strict_high = xhigh is True or _number(xhigh) is not None
        low = _number(xlow) if _number(xlow) is not None else low
        high = _number(xhigh) if _number(xhigh) is not None else high
        if integer:
            lo = None if low is None else (math.floor(low) + 1 if strict_low else math.ceil(low))
            hi = None if high is None else (math.ceil(high) - 1 if strict_high else math.floor(high))
            step = _number(schema.get("multipleOf"))
            if step and step >= 1 and step == int(step):
                value = math.ceil(value / step) * step
                if lo is not None and value < lo:
                    value = math.ceil(lo / step) * step
            if lo is not None and value < lo:
                value = lo
            if hi is not None and value > hi:
                value = hi if lo is None or hi >= lo else lo
            return int(value)
        below = low is not None and (value < low or (strict_low and value <= low))
        above = high is not None and (value > high or (strict_high and value >= high))
        if below or above:
            if low is not None and high is not None:
                value = (low + high) / 2
            elif low is not None:
                value = low + 1
            else:
                value = (high or 0) - 1
        step = _number(schema.get("multipleOf"))
        if step:
            value = math.ceil(value / step) * step
        return value

    def text(self, schema: dict[str, Any]) -> str:
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS:
            return _FORMATS[fmt]
        out = self.sentence() if self.sentence is not None else self.words[int(self.rng.random() * len(self.words))]
        least = int(_number(schema.get("minLength")) or 0)
        most = _number(schema.get("maxLength"))
        while len(out) < least:
            out = f"{out} {self.words[0]}"
        if most is not None and len(out) > most:
            out = out[: int(most)].rstrip() or out[: int(most)]
        return out
