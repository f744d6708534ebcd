"""The dashboard's screens: six modes, and the dialogs they open.

This module loads no Textual (the screens' own modules do), so the command
line's help names the screens from the same list the dashboard draws.
"""

from __future__ import annotations

__all__ = ["SCREENS", "screen_keys", "screen_titles"]

#: (mode, key, title) of every screen, in key order.
SCREENS: tuple[tuple[str, str, str], ...] = (
    ("realtime", "1", "Realtime"),
    ("costs", "2", "Costs"),
    ("budgets", "3", "Budgets"),
    ("alerts", "4", "Alerts"),
    ("routing", "5", "Routing"),
    ("keys", "6", "Keys"),
)


def screen_keys(between: str = "-") -> str:
    """The keys that switch screens, first to last: ``1-6``."""
    return f"{SCREENS[0][1]}{between}{SCREENS[-1][1]}"


def screen_titles() -> str:
    """Every screen's title, in key order: ``Realtime, Costs, …``."""
    return ", ".join(title for _, _, title in SCREENS)
