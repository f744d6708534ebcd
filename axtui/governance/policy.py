"""What a key may do: its model allow-list (and its team's), expiry and rotation grace, as pure logic.

An allow-list is a set of globs (``gpt-4o*``, ``fast``, ``openai/*``)
matched against the logical model, or the deployment id, a request names.
A key's list and its team's both apply: a model must pass each that is
set. An alias is allowed only if every model it lists is: a glob that
happens to match an alias's name never opens the models behind it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Protocol

from axtui.errors import ModelNotAllowed

__all__ = ["ModelCatalog", "ModelPolicy", "format_globs", "parse_duration", "parse_expiry", "parse_globs"]

_GLOB_RE = re.compile(r"^[A-Za-z0-9._:/@*?\[\]-]{1,128}$")
_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class ModelCatalog(Protocol):
    """What a policy needs of the routing catalog."""

    aliases: dict[str, list[str]]

    def names(self) -> list[str]:
        """Every name a caller may ask for."""

    def get(self, deployment_id: str) -> _Deployment | None:
        """A deployment by id."""


class _Deployment(Protocol):
    model: str

    @property
    def id(self) -> str:
        """``provider/upstream_model``."""


def parse_globs(text: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """Globs from ``"gpt-4o*,fast"`` (or a list); None or empty: no allow-list.

    Raises:
        ValueError: a glob has characters a model name never has, or is longer than 128.
    """
    if text is None:
        return None
    parts = text.split(",") if isinstance(text, str) else list(text)
    globs = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))
    for g in globs:
        if not _GLOB_RE.match(g):
            raise ValueError(f"model glob {g!r} is not valid; use model names, aliases and * ? [] (e.g. 'gpt-4o*')")
    if len(",".join(globs)) > 1024:
        raise ValueError("the model allow-list is longer than 1024 characters; use globs (e.g. 'gpt-4o*')")
    return globs or None


def format_globs(globs: Sequence[str] | None) -> str | None:
    """How globs are stored: comma-separated, or None for no allow-list."""
    return ",".join(globs) if globs else None


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``30m``, ``1h``, ``30d`` or ``2w``.

    Raises:
        ValueError: not a number and one of s, m, h, d, w.
    """
    m = _DURATION_RE.match(text.strip().lower())
    if m is None:
        raise ValueError(f"{text!r} is not a duration; use a number and s, m, h, d or w (e.g. 1h, 30d)")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def parse_expiry(text: str, now: float) -> float:
    """When a key expires, from a duration (``30d``) or a date (``2027-01-31``, ISO 8601; UTC unless it says).

    Raises:
        ValueError: neither a duration nor a date, or a time already past.
    """
    try:
        at = now + parse_duration(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(
                f"--expires {text!r}: give a duration (30d, 12h) or a date (2027-01-31 or 2027-01-31T18:00)"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        at = when.timestamp()
    if at <= now:
        raise ValueError(f"--expires {text!r} is already past; give a later date or a duration")
    return at


@dataclass(frozen=True, slots=True)
class ModelPolicy:
    """The allow-lists that apply to one key: its own and its team's (None: that one allows all)."""

    key_globs: tuple[str, ...] | None = None
    team_globs: tuple[str, ...] | None = None
    team: str | None = None

    @property
    def restricted(self) -> bool:
        """Whether any allow-list applies."""
        return self.key_globs is not None or self.team_globs is not None

    def allows_model(self, *names: str) -> bool:
        """Whether a model known by any of ``names`` (logical name, deployment id) passes every list."""
        return all(
            globs is None or any(fnmatchcase(n, g) for n in names for g in globs)
            for globs in (self.key_globs, self.team_globs)
        )

    def _refusal(self, name: str, catalog: ModelCatalog) -> str | None:
        aliases: Mapping[str, list[str]] = catalog.aliases
        if name in aliases:
            barred = [m for m in aliases[name] if not self.allows_model(m)]
            if barred:
                return f"alias {name!r} resolves to {', '.join(barred)}, which {self._whose()} does not allow"
            return None
        dep = catalog.get(name)
        names = (name, dep.model) if dep is not None else (name,)
        if self.allows_model(*names):
            return None
        return f"model {name!r} is not in {self._whose()}"

    def _whose(self) -> str:
        lists = []
        if self.key_globs is not None:
            lists.append(f"the key's allow-list ({', '.join(self.key_globs)})")
        if self.team_globs is not None:
            lists.append(f"team {self.team}'s allow-list ({', '.join(self.team_globs)})")
        return " or ".join(lists)

    def allowed_names(self, catalog: ModelCatalog) -> list[str]:
        """The names of ``catalog`` (models and aliases) this key may call."""
        return [n for n in catalog.names() if self._refusal(n, catalog) is None]

    def check(self, name: str, catalog: ModelCatalog) -> None:
        """Pass, or refuse a request for ``name``.

        Raises:
            ModelNotAllowed: the model (or a model the alias lists) is outside an allow-list;
                the message and ``allowed`` say what the key may use.
        """
        if not self.restricted:
            return
        why = self._refusal(name, catalog)
        if why is None:
            return
        allowed = self.allowed_names(catalog)
        raise ModelNotAllowed(
            f"{why}; this key may use: {', '.join(allowed) or '(no model served here)'}",
            model=name,
            allowed=allowed,
        )
