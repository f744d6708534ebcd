"""Where rate-limit state lives: memory, the store, or Redis.

Every backend does the same three things for the limiter: decide on a set
of checks all-or-nothing (`Backend.acquire`), correct a token estimate
(`Backend.adjust`), and report or forget state (`peek`, `clear`).
"""

from __future__ import annotations

from axtui.ratelimit.backends.base import Backend, Check

__all__ = ["Backend", "Check"]
