"""Still inputs for screenshots: no blinking cursor when the app asks for none."""

from __future__ import annotations

from textual.dom import DOMNode
from textual.widgets import Input

__all__ = ["calm_inputs"]


def calm_inputs(node: DOMNode) -> None:
    """Stop the cursor blinking in every input under ``node`` when the app has ``blink`` off."""
    if getattr(node.app, "blink", True):
        return
    inputs = [node] if isinstance(node, Input) else []
    for widget in [*inputs, *node.query(Input)]:
        widget.cursor_blink = False
