"""``?``: every key of the screen beneath and of the app, and what they do."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.markup import MarkupError, escape
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from axtui.tui.screens import SCREENS, screen_keys, screen_titles

__all__ = ["HelpScreen", "key_rows", "reflow"]

_GLOBAL_NOTES = (
    (screen_keys(" … "), screen_titles()),
    ("j / k, g / G", "down / up a row; first / last row"),
    ("tab / shift+tab", "move between panels"),
    ("esc", "leave a text box (or close a dialog)"),
    ("mouse", "click tabs, rows, buttons; the wheel scrolls"),
)


def _display(binding: Binding) -> str:
    if binding.key_display:
        return binding.key_display
    from textual.keys import format_key

    return " / ".join(format_key(k.strip()) for k in binding.key.split(","))


def _markup_or_plain(text: str) -> str:
    """``text`` when it is valid markup, else escaped so it shows as typed: a help note never crashes."""
    try:
        Content.from_markup(text)
    except MarkupError:
        return escape(text)
    return text


def reflow(notes: str) -> str:
    """A screen's help notes as the dialog should wrap them: a line break is kept only where a sentence ends.

    The notes are written in lines short enough for the source; the dialog is narrower, so breaks
    kept mid-sentence would leave ragged half-empty lines.
    """
    lines: list[str] = []
    for line in (raw.strip() for raw in notes.strip().splitlines()):
        if lines and lines[-1] and line and not lines[-1].endswith((".", ":", "!", "?")):
            lines[-1] += " " + line
        else:
            lines.append(line)
    return "\n".join(lines)


def key_rows(bindings: list[Any]) -> list[tuple[str, str]]:
    """(keys, what) of each binding that has a description, in order.

    The keys of one action share a row (``ctrl+p / :``), and so do the
    actions of one key (``p``: Pause / Resume, whichever applies now).
    """
    by_action: dict[str, tuple[list[str], str]] = {}
    for b in bindings:
        if isinstance(b, tuple):
            b = Binding(*b)
        if b.description and not b.action.startswith("go("):
            by_action.setdefault(b.action, ([], b.description))[0].append(_display(b))
    by_keys: dict[str, list[str]] = {}
    for keys, what in by_action.values():
        whats = by_keys.setdefault(" / ".join(dict.fromkeys(keys)), [])
        if what not in whats:
            whats.append(what)
    return [(keys, " / ".join(whats)) for keys, whats in by_keys.items()]


class HelpScreen(ModalScreen[None]):
    """Keys of the screen beneath, then the keys every screen has."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape,question_mark,q", "dismiss", "Close"),
    ]

    def __init__(self, beneath: Screen[Any]) -> None:
        super().__init__()
        self.beneath = beneath

    def compose(self) -> ComposeResult:
        title = next((t for m, _, t in SCREENS if m == getattr(self.beneath, "MODE", "")), "")
        lines = [f"[b]{title} screen[/]" if title else "[b]This screen[/]"]
        for keys, what in key_rows(list(getattr(self.beneath, "BINDINGS", []))):
            lines.append(f"  [b $accent]{keys:<16}[/] {what}")
        notes = getattr(self.beneath, "HELP", "")
        if notes:
            lines += ["", _markup_or_plain(reflow(notes))]
        lines += ["", "[b]Everywhere[/]"]
        for keys, what in (*_GLOBAL_NOTES, *key_rows(list(self.app.BINDINGS))):
            lines.append(f"  [b $accent]{keys:<16}[/] {what}")
        lines += ["", "[dim]esc closes[/]"]
        with VerticalScroll(id="help", classes="dialog"):
            yield Static("\n".join(lines))
