"""Keep secrets out of everything ax writes: messages, records, logs, exports.

Provider keys come from the environment and are sent upstream; an upstream
may echo one back (in an error, in a body it cannot parse), and that text
then flows into error messages, call records and logs. `scrub` removes every
secret this process has been told about (`remember`) and anything shaped
like a key (``sk-…``, ``AIza…``, ``axk_…``, ``Bearer …``) from a text.

The error tree scrubs every message it is given and the recorder scrubs what
it stores, so a leak would need to bypass both.
"""

from __future__ import annotations

import logging
import re
import threading

__all__ = ["REDACTED", "ScrubFilter", "forget_all", "is_secret_header", "remember", "remembered", "scrub"]

REDACTED = "[redacted]"

#: Shorter values would blank out ordinary words in messages.
_MIN_SECRET = 8

_KEY_SHAPES = re.compile(
    r"\b(?:sk-[A-Za-z0-9_\-*]{8,}"  # OpenAI, Anthropic (sk-ant-…), DeepSeek, OpenRouter …
    r"|AIza[0-9A-Za-z_\-]{20,}"  # Google
    r"|axk_[0-9a-f]{6,}_[A-Za-z0-9_\-]{8,}"  # ax gateway keys
    r"|gsk_[A-Za-z0-9]{16,}"  # Groq
    r"|xai-[A-Za-z0-9]{16,})"  # xAI
    r"|(?<=[Bb]earer )[A-Za-z0-9._~+/=\-]{8,}"
)

#: Header names whose values are credentials (Authorization, X-Api-Key, a session cookie …).
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|password", re.IGNORECASE)

_lock = threading.Lock()
_known: frozenset[str] = frozenset()
_pattern: re.Pattern[str] | None = None


def remember(secret: str | None) -> None:
    """Scrub ``secret`` from every text from now on (values under 8 characters are ignored)."""
    global _known, _pattern
    if not secret or len(secret) < _MIN_SECRET or secret in _known:
        return
    with _lock:
        _known = _known | {secret}
        # Longest first, so a key that contains another is removed whole.
        ordered = sorted(_known, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def remembered() -> frozenset[str]:
    """The secrets remembered so far (a new set each time one is added; for a child process that scrubs)."""
    return _known


def is_secret_header(name: str) -> bool:
    """Whether a header of this name carries a credential."""
    return _SECRET_HEADER.search(name) is not None


def forget_all() -> None:
    """Forget every remembered secret (for tests)."""
    global _known, _pattern
    with _lock:
        _known = frozenset()
        _pattern = None


def scrub(text: str) -> str:
    """``text`` without remembered secrets or anything shaped like a key."""
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    return _KEY_SHAPES.sub(REDACTED, text)


class ScrubFilter(logging.Filter):
    """A logging filter that scrubs each record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call; let logging report it as usual
            return True
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
