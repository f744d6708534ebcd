"""The live log's filter: what a user types after ``/``.

Space-separated terms, all of which must match (case-insensitive):

- ``azure`` — a word found in any field (user, model, provider,
  deployment, status, cache, error);
- ``user=alice``, ``provider=openai``, ``status=error``, ``cache=exact`` —
  the field contains the value;
- ``status!=ok`` — the field does not contain it;
- ``latency>2000`` / ``cost>0.01`` — numeric thresholds (ms, dollars).

Pure: no UI, so the rules are tested directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from axtui.metrics.snapshot import RecentCall

__all__ = ["FIELDS", "CallFilter", "FilterError", "parse_filter"]

#: Field names a term may name, and the aliases people type.
FIELDS: dict[str, str] = {
    "user": "user",
    "model": "model",
    "provider": "provider",
    "deployment": "deployment",
    "dep": "deployment",
    "status": "status",
    "cache": "cache",
    "error": "error",
}
_NUMERIC = {"latency": "latency_ms", "ms": "latency_ms", "cost": "cost_usd", "tokens": "tokens"}
_TERM = re.compile(r"^(?P<field>[a-z_]+)(?P<op>!=|=|>=|<=|>|<)(?P<value>.*)$")


class FilterError(ValueError):
    """A filter term that cannot be understood; the message says how to write it."""


def _fields(call: RecentCall) -> dict[str, str]:
    model = call.requested_model if call.model in (None, call.requested_model) else f"{call.requested_model} {call.model}"
    return {
        "user": call.user,
        "model": model,
        "provider": call.provider or "",
        "deployment": call.deployment or "",
        "status": call.status,
        "cache": call.cache,
        "error": call.error_class or "",
    }


def _number(call: RecentCall, name: str) -> Decimal | None:
    if name == "latency_ms":
        return Decimal(repr(call.latency_ms))
    if name == "cost_usd":
        return call.cost_usd
    return Decimal(call.input_tokens + call.output_tokens)


@dataclass(frozen=True, slots=True)
class CallFilter:
    """A parsed filter; an empty one matches every call."""

    text: str = ""
    words: tuple[str, ...] = ()
    equals: tuple[tuple[str, str, bool], ...] = ()
    numeric: tuple[tuple[str, str, Decimal], ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.words or self.equals or self.numeric)

    def matches(self, call: RecentCall) -> bool:
        """Whether ``call`` passes every term."""
        if not self:
            return True
        values = _fields(call)
        for name, value, negate in self.equals:
            if (value in values[name].lower()) == negate:
                return False
        if self.words:
            haystack = " ".join(values.values()).lower()
            if not all(w in haystack for w in self.words):
                return False
        for name, op, threshold in self.numeric:
            n = _number(call, name)
            if n is None or not _compare(n, op, threshold):
                return False
        return True


def _compare(n: Decimal, op: str, threshold: Decimal) -> bool:
    return {
        ">": n > threshold, ">=": n >= threshold, "<": n < threshold, "<=": n <= threshold,
        "=": n == threshold, "!=": n != threshold,
    }[op]


def parse_filter(text: str) -> CallFilter:
    """Parse what the user typed.

    Raises:
        FilterError: an unknown field or a threshold that is not a number.
    """
    words: list[str] = []
    equals: list[tuple[str, str, bool]] = []
    numeric: list[tuple[str, str, Decimal]] = []
    for term in text.split():
        m = _TERM.match(term.lower())
        if m is None:
            words.append(term.lower())
            continue
        name, op, value = m["field"], m["op"], m["value"]
        if name in _NUMERIC:
            try:
                threshold = Decimal(value.removeprefix("$").removesuffix("ms"))
            except InvalidOperation:
                raise FilterError(f"{term!r}: {name} needs a number, e.g. {name}>{'0.01' if name == 'cost' else '2000'}") \
                    from None
            numeric.append((_NUMERIC[name], op, threshold))
        elif name in FIELDS and op in ("=", "!="):
            equals.append((FIELDS[name], value, op == "!="))
        else:
            known = ", ".join(sorted({*FIELDS, *_NUMERIC}))
            raise FilterError(f"{term!r}: unknown field {name!r} or operator {op!r}; fields are {known}")
    return CallFilter(text.strip(), tuple(words), tuple(equals), tuple(numeric))
