"""Live checks of what a user types: None when it is fine, else why not and how to write it.

Each one runs the subsystem's own parser (the same the CLI and the server
use), so the dashboard refuses exactly what they refuse, as it is typed.
"""

from __future__ import annotations

__all__ = ["check_amount", "check_rate", "check_rule", "check_scope", "check_subject"]


def check_amount(text: str) -> str | None:
    """Why ``text`` is not a budget amount, or None when it is one."""
    from axtui.money import parse_usd

    if text.strip().lower() in ("unlimited", "none", "off"):
        return "a budget is an amount of dollars, like 25; for no budget at all, delete it (d on its row)"
    try:
        parse_usd(text)
    except ValueError as exc:
        return str(exc)
    return None


def check_rate(text: str) -> str | None:
    """Why ``text`` is not a rate limit (``60/minute``), or None."""
    if not text.strip() or text.strip() in ("unlimited", "default"):
        return None
    from axtui.ratelimit.parse import parse_rate

    try:
        parse_rate(text)
    except ValueError as exc:
        return str(exc)
    return None


def check_scope(text: str) -> str | None:
    """Why ``text`` is not a budget scope, or None."""
    from axtui.cost.budgets import Scope

    try:
        Scope.parse(text)
    except ValueError as exc:
        return str(exc)
    return None


def check_subject(text: str) -> str | None:
    """Why ``text`` is not a rate-limit subject, or None."""
    from axtui.ratelimit.rules import parse_subject

    try:
        parse_subject(text)
    except ValueError as exc:
        return str(exc)
    return None


def check_rule(text: str) -> str | None:
    """Why ``text`` is not an alert rule (with the column pointed at), or None."""
    from axtui.errors import AxError
    from axtui.metrics.alerts.grammar import parse_rule

    try:
        parse_rule(text)
    except (AxError, ValueError) as exc:
        return getattr(exc, "message", None) or str(exc)
    return None
