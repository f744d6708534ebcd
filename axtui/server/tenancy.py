"""What a tenant may read under ``/api``: its own user's and key's data, and nothing of others'.

A `Viewer` is the admin (the admin key, or ``--no-auth``), who reads all,
or one gateway key's tenant: the key, its user, and its user's namespace
(``acme/…``, the end users its trusted keys name). Things that apply to
everyone (the global budget, provider limits, alert rules that watch no
one user or key) are shown to every reader; an alert rule ``where
user=alice`` (its state, value and events) only to alice's keys; webhook
URLs, which carry their tokens, only to the admin (others see the host).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from axtui.errors import InvalidRequest
from axtui.server.auth import Viewer
from axtui.server.errors import HTTPProblem

__all__ = ["alert_visible", "forbidden", "owned_user", "rule_visible", "scope_visible", "webhook_host"]

#: Scopes that apply to every caller (a budget or a limit on them binds everyone).
_SHARED = frozenset({"global", "provider", "model"})


def scope_visible(viewer: Viewer, scope: str) -> bool:
    """Whether a budget or limit of ``scope`` (``global``, ``user:alice``, ``key:ID``, ``team:red``…) applies to the viewer."""
    if viewer.admin:
        return True
    kind, _, value = scope.partition(":")
    if kind in _SHARED:
        return True
    if kind == "user":
        return viewer.owns_user(value)
    if kind == "key":
        return viewer.owns_key(value)
    if kind == "team":
        return viewer.team is not None and viewer.team == value
    return False


def alert_visible(viewer: Viewer, where: Mapping[str, str]) -> bool:
    """Whether an alert rule (or its event) with these ``where`` filters is the viewer's to read.

    It is when it names no user or key (it watches everyone's traffic, as a
    global budget binds everyone) or only the viewer's own.
    """
    if viewer.admin:
        return True
    user, key = where.get("user"), where.get("key")
    return (user is None or viewer.owns_user(user)) and (key is None or viewer.owns_key(key))


def rule_visible(viewer: Viewer, rule: str) -> bool:
    """`alert_visible` for a rule's text (one that no longer parses: the admin's alone)."""
    from axtui.metrics.alerts.grammar import parse_rule

    if viewer.admin:
        return True
    try:
        return alert_visible(viewer, parse_rule(rule).filters)
    except InvalidRequest:
        return False


def webhook_host(url: str | None) -> str | None:
    """Only the host of a webhook URL (its path and query carry tokens)."""
    if not url:
        return url
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    return host or "(hidden)"


def forbidden(what: str) -> HTTPProblem:
    """The 403 for a tenant asking about someone else."""
    return HTTPProblem(403, f"a gateway key reads only its own user's and key's data; {what} needs the admin key",
                       error_type="permission_error", code="not_your_data")


def owned_user(viewer: Viewer, user: str | None) -> str | None:
    """The user a read is about: the one asked for if the viewer owns it, the viewer's own by default.

    Raises:
        HTTPProblem: 403, the viewer asks about another user.
    """
    if viewer.admin:
        return user
    if user is None:
        return viewer.user
    if not viewer.owns_user(user):
        raise forbidden(f"reading user {user!r}")
    return user
