"""Copying text: what the dashboard can do, and what it can honestly say it did.

Textual copies by writing an OSC 52 escape sequence to the terminal; the
terminal (or tmux, or screen, in between) decides whether the text reaches
the clipboard, and nothing tells the program. So the message says what was
sent and, where the environment shows a known obstacle, what to change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from textual.app import App

__all__ = ["clipboard_note", "copy_text"]

_SENT = "sent to the terminal's clipboard (OSC 52)"


def clipboard_note(environ: Mapping[str, str]) -> str:
    """What a copy did in the terminal ``environ`` describes, and what may stop it: no promise it arrived."""
    if environ.get("TERM_PROGRAM") == "Apple_Terminal":
        return "not copied: macOS Terminal ignores clipboard requests (OSC 52); select the text and press ⌘C"
    if environ.get("TMUX"):
        return f"{_SENT}; tmux passes it on only with `set -g set-clipboard on`"
    if environ.get("STY"):
        return f"{_SENT}; GNU screen does not pass it on: select the text instead"
    return f"{_SENT}; if nothing arrived, your terminal does not allow it: select the text instead"


def copy_text(app: App[object], text: str, what: str) -> str:
    """Send ``text`` to the clipboard through the terminal and notify what was done; returns the message."""
    app.copy_to_clipboard(text)
    message = f"{what[:1].upper()}{what[1:]} {clipboard_note(os.environ)}"
    app.notify(message, title="Copy", timeout=8, markup=False)
    return message
