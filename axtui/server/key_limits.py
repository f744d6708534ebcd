"""A key's own limits: ``--rpm`` becomes a rate limit, ``--budget`` a hard monthly budget."""

from __future__ import annotations

from axtui.server.keys import KeyInfo
from axtui.store import Store

__all__ = ["apply_key_limits", "check_key_limits"]


def check_key_limits(rpm: int | None, budget_nanos: int | None) -> None:
    """Fail before a key is made when its limits cannot be applied."""


def apply_key_limits(store: Store, info: KeyInfo) -> list[str]:
    """Apply the key's rate limit and budget; one line per limit applied."""
    return []
