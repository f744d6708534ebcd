"""How a pydantic validation failure is worded for people: one formatter for the whole of ax.

The server's 400 answers, the config file's errors, the CLI's refusals and
the simulated providers all describe a failed field the same way:
``where: what`` (``messages.0.role: Input should be 'system', …``), with
pydantic's ``Value error, `` prefix dropped and an unknown setting named
as such.
"""

from __future__ import annotations

import re
from collections import Counter
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
    joined = False  # the last problem is one shape of a union's
    for err, loc, branched in _by_branch(errors):
        if sourced and loc and loc[0] in _SOURCES:
            loc = loc[1:]
        loc = (*prefix, *loc)
        kind = str(err.get("type", ""))
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if kind == "extra_forbidden" and loc:
            message = f"unknown field {str(loc[-1])!r}; check its spelling"
        if branched and joined and out[-1].loc == loc:
            # Another shape of a field that takes either: one problem, its shapes side by side.
            if message not in out[-1].message:
                shape = message.removeprefix("Input should be ")
                out[-1] = FieldProblem(loc, out[-1].where, f"{out[-1].message} or {shape}", out[-1].type, out[-1].ctx)
            continue
        joined = branched
        out.append(FieldProblem(loc, ".".join(str(p) for p in loc) or "body", message, kind,
                                err.get("ctx") or {}))
    return out


#: How pydantic names the shapes of a union in an error's path (``str``, ``list[dict[str,any]]``,
#: ``function-after[…]``), though no field is called that.
_SHAPE = re.compile(
    r"(?:str|int|float|bool|bytes|decimal|list|dict|set|frozenset|tuple|datetime|timedelta|uuid|nullable"
    r"|constrained-[a-z]+|typed-dict|is-instance|json-or-python|lax-or-strict|tagged-union"
    r"|function-(?:after|before|wrap|plain))(?:\[.*\])?|[a-z][a-z-]*\[.*\]"
)


def _by_branch(
    errors: Iterable[Mapping[str, Any]],
) -> list[tuple[Mapping[str, Any], tuple[int | str, ...], bool]]:
    """Each error with its path as the client wrote it, and whether it is one shape of a union's.

    A value that fails every shape of a field that takes several (a string
    or a list) fails each one, and pydantic puts the shape's name in the
    path (``content.str``, ``content.list[dict[str,any]]``). A name is one
    only where another error of the same field has another (a field may be
    called ``str``). The shape the value went deepest into (the list, for a
    list holding a number) is the one the client meant, so it comes first;
    shapes failed at the field itself follow, to be joined into one problem.
    """
    errors = list(errors)
    locs = [tuple(err.get("loc", ())) for err in errors]
    shapes = {(loc[:j], part) for loc in locs for j, part in enumerate(loc)
              if isinstance(part, str) and _SHAPE.fullmatch(part)}
    unions = {at for at, n in Counter(at for at, _ in shapes).items() if n > 1}
    order: dict[tuple[Any, ...], int] = {}
    keyed = []
    for i, (err, loc) in enumerate(zip(errors, locs, strict=True)):
        cut = [j for j, part in enumerate(loc) if loc[:j] in unions and (loc[:j], part) in shapes]
        kept = tuple(part for j, part in enumerate(loc) if j not in cut)
        union = loc[:cut[0]] if cut else (i,)
        keyed.append((order.setdefault(union, len(order)), -len(loc) if cut else 0, i, err, kept, bool(cut)))
    keyed.sort(key=lambda k: k[:3])
    return [(err, kept, branched) for *_, err, kept, branched in keyed]


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
