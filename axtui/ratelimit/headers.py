"""``X-RateLimit-*`` and ``Retry-After`` headers from an admission or a refusal.

For each unit the tightest limit is shown (``X-RateLimit-Limit-Requests``,
``-Remaining-Requests``, ``-Reset-Requests`` and the ``-Tokens`` set, as
OpenAI sends them); the plain ``X-RateLimit-Limit``/``-Remaining``/
``-Reset`` carry the request limit, or the refused one. Reset times are
whole seconds, rounded up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from axtui.errors import RateLimited
from axtui.ports import LimitState

__all__ = ["rate_limit_headers", "rate_limit_pairs", "tightest"]


def tightest(states: Sequence[LimitState]) -> dict[str, LimitState]:
    """The limit with the least left, per unit (ties: the one that resets last)."""
    out: dict[str, LimitState] = {}
    for s in states:
        best = out.get(s.unit)
        if best is None or (s.remaining, -s.reset_after) < (best.remaining, -best.reset_after):
            out[s.unit] = s
    return out


#: The per-unit header names, built once.
_UNIT_NAMES = {unit: (f"X-RateLimit-Limit-{unit.capitalize()}", f"X-RateLimit-Remaining-{unit.capitalize()}",
                      f"X-RateLimit-Reset-{unit.capitalize()}") for unit in ("requests", "tokens")}


def rate_limit_headers(states: Sequence[LimitState], refused: RateLimited | None = None) -> dict[str, str]:
    """The headers for a response: after an admission (``states``) or a refusal (``refused``)."""
    return dict(rate_limit_pairs(states, refused))


def rate_limit_pairs(states: Sequence[LimitState], refused: RateLimited | None = None) -> list[tuple[str, str]]:
    """`rate_limit_headers` as (name, value) pairs, in the same order."""
    by_unit = tightest(states)
    if refused is not None:
        by_unit[refused.unit] = LimitState(
            refused.scope, refused.unit, refused.limit or 0, refused.remaining or 0, refused.reset_after  # type: ignore[arg-type]
        )
    headers: list[tuple[str, str]] = []
    for unit, (limit, remaining, reset) in _UNIT_NAMES.items():
        s = by_unit.get(unit)
        if s is None:
            continue
        headers += ((limit, str(s.limit)), (remaining, str(max(0, s.remaining))), (reset, _seconds(s.reset_after)))
    primary = by_unit.get(refused.unit) if refused is not None else by_unit.get("requests") or by_unit.get("tokens")
    if primary is not None:
        headers += (("X-RateLimit-Limit", str(primary.limit)), ("X-RateLimit-Remaining", str(max(0, primary.remaining))),
                    ("X-RateLimit-Reset", _seconds(primary.reset_after)))
    if refused is not None:
        headers.append(("Retry-After", _seconds(refused.retry_after)))
    return headers


def _seconds(value: float) -> str:
    return str(max(0, math.ceil(value - 1e-9)))
