"""Webhook delivery: a JSON POST, retried with backoff, never fatal.

A delivery is retried on connection errors, timeouts, 429 and 5xx answers
(``Retry-After`` is honoured up to the backoff cap) and given up at once on
other 4xx answers (the receiver refuses the payload; retrying cannot help).
The outcome — delivered, or failed with the last error — is returned for
the caller to record; nothing here raises.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from axtui import __version__
from axtui.clock import SYSTEM_CLOCK, Clock

__all__ = ["Delivery", "WebhookSender"]

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class Delivery:
    """How one delivery went."""

    ok: bool
    attempts: int
    error: str | None = None
    status: int | None = None


class WebhookSender:
    """POSTs JSON to webhooks over one pooled aiohttp session.

    Args:
        timeout_s: the whole-request timeout of one attempt.
        attempts: tries per delivery (at least one).
        backoff_s: the first wait between tries; doubled each time, capped at ``max_backoff_s``.
        clock: waits between tries go through it (tests use a fake clock).
    """

    def __init__(
        self,
        *,
        timeout_s: float = 5.0,
        attempts: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.timeout_s = timeout_s
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers={"User-Agent": f"ax/{__version__}", "Content-Type": "application/json"},
            )
        return self._session

    async def deliver(self, url: str, payload: dict[str, Any]) -> Delivery:
        """POST ``payload`` to ``url``, retrying; never raises (except cancellation)."""
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        wait = self.backoff_s
        error = "not tried"
        status: int | None = None
        for attempt in range(1, self.attempts + 1):
            retry_after: float | None = None
            try:
                async with self._client().post(url, data=body) as resp:
                    status = resp.status
                    if 200 <= resp.status < 300:
                        return Delivery(True, attempt, None, resp.status)
                    text = (await resp.text(errors="replace"))[:200]
                    error = f"HTTP {resp.status}: {text}".strip().rstrip(":")
                    if resp.status != 429 and resp.status < 500:
                        return Delivery(False, attempt, error, resp.status)
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
            except asyncio.CancelledError:
                raise
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                status = None
            except Exception as exc:  # a webhook must never take the evaluator down
                log.exception("webhook %s: unexpected failure", url)
                return Delivery(False, attempt, f"{type(exc).__name__}: {exc}")
            if attempt < self.attempts:
                await self.clock.sleep(min(retry_after if retry_after is not None else wait, self.max_backoff_s))
                wait = min(wait * 2, self.max_backoff_s)
        return Delivery(False, self.attempts, error, status)

    async def aclose(self) -> None:
        """Close the pooled session."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: use our own backoff
