"""The in-process event bus: call records, alerts and budget events.

Publishing is synchronous and cheap: subscribers are plain callables that
must not block (they append to a window, or put on a queue). An async
consumer uses `EventBus.queue`, a bounded queue that drops the oldest event
rather than slowing the publisher.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["EventBus", "Subscription"]

log = logging.getLogger(__name__)

Handler = Callable[[str, Any], None]


class Subscription:
    """A handle that removes its handler when closed."""

    def __init__(self, bus: EventBus, handler: Handler) -> None:
        self._bus = bus
        self._handler = handler

    def close(self) -> None:
        """Stop receiving events."""
        self._bus._remove(self._handler)


class EventBus:
    """Topic-tagged events to every subscriber, in publish order.

    Topics in use: ``call`` (a `CallRecord`), ``alert`` (an alert event),
    ``budget`` (a budget threshold crossed), ``config`` (settings changed).
    """

    def __init__(self) -> None:
        self._handlers: tuple[Handler, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, handler: Handler) -> Subscription:
        """Call ``handler(topic, event)`` for every event from now on."""
        with self._lock:
            self._handlers = (*self._handlers, handler)
        return Subscription(self, handler)

    def _remove(self, handler: Handler) -> None:
        with self._lock:
            self._handlers = tuple(h for h in self._handlers if h is not handler)

    def publish(self, topic: str, event: Any) -> None:
        """Hand ``event`` to every subscriber; a failing one is logged, not fatal."""
        for handler in self._handlers:
            try:
                handler(topic, event)
            except Exception:  # a subscriber's bug must not break the call path
                log.exception("event subscriber %r failed on %s", handler, topic)

    def queue(self, topics: set[str] | None = None, maxsize: int = 10_000) -> tuple[asyncio.Queue[tuple[str, Any]], Subscription]:
        """A bounded asyncio queue fed from the bus (oldest dropped when full).

        Must be called from the event loop that will read the queue; events
        published from other threads are handed over thread-safely.
        """
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=maxsize)

        def put(item: tuple[str, Any]) -> None:
            if q.full():
                q.get_nowait()
            q.put_nowait(item)

        def handler(topic: str, event: Any) -> None:
            if topics is not None and topic not in topics:
                return
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                put((topic, event))
            elif not loop.is_closed():
                loop.call_soon_threadsafe(put, (topic, event))

        return q, self.subscribe(handler)
