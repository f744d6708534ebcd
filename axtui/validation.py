"""How a pydantic validation failure is worded for people: one formatter for the whole of ax.

The server's 400 answers, the config file's errors, the CLI's refusals and
the simulated providers all describe a failed field the same way:
``where: what`` (``messages.0.role: Input should be 'system', …``), with
pydantic's ``Value error, `` prefix dropped and an unknown setting named
as such.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

__all__ = ["FieldProblem", "field_problems", "name_problem", "problems_text"]

#: Where FastAPI says a value came from; the value's own path follows.
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One field that failed validation.

    Attributes:
        loc: the path to the field (names and list indexes).
        where: the path as dotted text (``body`` for the whole value).
        message: what is wrong with it, for people.
        type: pydantic's error type (``missing``, ``json_invalid``, …).
        ctx: pydantic's context of the error (``{"error": …}`` for bad JSON).
    """

    loc: tuple[int | str, ...]
    where: str
    message: str
    type: str
    ctx: Mapping[str, Any]

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def field_problems(
    errors: ValidationError | Iterable[Mapping[str, Any]], *, prefix: Sequence[str] = (), sourced: bool = False
) -> list[FieldProblem]:
    """Every failed field of a validation error (or of FastAPI's error list), worded for people.

    Args:
        errors: the exception, or its ``errors()`` list.
        prefix: path to put in front of every field's own (the value's place in a larger document).
        sourced: the paths start with where the value came from (FastAPI's ``body``,
            ``query``…); that part is left out.
    """
    if isinstance(errors, ValidationError):
        errors = errors.errors(include_url=False)
    out: list[FieldProblem] = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if sourced and loc and loc[0] in _SOURCES:
            loc = loc[1:]
        loc = (*prefix, *loc)
        kind = str(err.get("type", ""))
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if kind == "extra_forbidden" and loc:
            message = f"unknown field {str(loc[-1])!r}; check its spelling"
        out.append(FieldProblem(loc, ".".join(str(p) for p in loc) or "body", message, kind,
                                err.get("ctx") or {}))
    return out


def problems_text(problems: Sequence[FieldProblem], *, most: int | None = 5, sep: str = "; ") -> str:
    """``where: what`` for each problem (at most ``most`` of them, then how many more)."""
    shown = problems if most is None else problems[:most]
    text = sep.join(str(p) for p in shown)
    if most is not None and len(problems) > most:
        text += f" (and {len(problems) - most} more)"
    return text


_BLANK_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def name_problem(name: str) -> str | None:
    """What makes ``name`` unfit to name a user, key, team, model or provider (a space or a control
    character: names reach terminals and exports), or None."""
    found = _BLANK_OR_CONTROL.search(name)
    if found is None:
        return None
    return f"holds {'a space' if found.group() == ' ' else repr(found.group())}, which no name has"
