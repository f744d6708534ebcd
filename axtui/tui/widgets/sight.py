"""Whether a person can see a widget now, from what Textual knows of it and of the screen stack.

Textual answers nearby questions but not this one: `Screen.is_current`
counts the screen just under any other as visible, an opaque one (the
too-small notice) included, and `Widget.is_on_screen` says the widget was
laid out on its own screen, in sight or not. A dialog (a `ModalScreen`,
drawn over a see-through backdrop) leaves what is under it in sight.
"""

from __future__ import annotations

from textual.widget import Widget

__all__ = ["in_sight"]


def in_sight(widget: Widget) -> bool:
    """Whether ``widget`` can be seen: it and what holds it are shown, on the screen on top or under dialogs only.

    A screen is a widget too: ``in_sight(screen)`` says whether the screen can be seen.
    """
    try:
        screen = widget.screen
        stack = widget.app.screen_stack
    except Exception:  # not mounted, or the app is not running
        return False
    if screen not in stack:
        return False
    if not all(above.is_modal for above in stack[stack.index(screen) + 1:]):
        return False
    return widget.visible and all(node.display for node in widget.ancestors_with_self if isinstance(node, Widget))
