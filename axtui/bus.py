"""The in-process event bus: typed events for call records, alerts, budget alerts and settings.

Every event is a small frozen dataclass (`CallRecorded`, `AlertChanged`,
`BudgetCrossed`, `SettingsChanged`), so a subscriber tells them apart with
``isinstance`` and mypy knows what each carries. ``topic`` names the kind
where text is needed (the server's event stream).

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # the payloads' types; the bus itself imports nothing above the foundation
    from axtui.config import Settings
    from axtui.cost.alerts import BudgetAlert
    from axtui.metrics.alerts.model import AlertEvent
    from axtui.types import CallRecord

__all__ = [
    "AlertChanged",
    "BudgetCrossed",
    "CallRecorded",
    "Event",
    "EventBus",
    "Handler",
    "SettingsChanged",
    "Subscription",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallRecorded:
    """A call finished (served, failed or refused) and was handed to the recorder."""

    topic: ClassVar[str] = "call"
    record: CallRecord


@dataclass(frozen=True, slots=True)
class AlertChanged:
    """An alert rule moved: pending, firing, resolved or cancelled."""

    topic: ClassVar[str] = "alert"
    event: AlertEvent


@dataclass(frozen=True, slots=True)
class BudgetCrossed:
    """A budget reached one of its alert thresholds."""

    topic: ClassVar[str] = "budget"
    alert: BudgetAlert


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """A running gateway applied new settings (routing, weights, rate-limit defaults)."""

    topic: ClassVar[str] = "config"
    settings: Settings


Event = CallRecorded | AlertChanged | BudgetCrossed | SettingsChanged
Handler = Callable[[Event], None]


class Subscription:
    """A handle that removes its handler when closed."""

    def __init__(self, bus: EventBus, handler: Handler) -> None:
        self._bus = bus
        self._handler = handler

    def close(self) -> None:
        """Stop receiving events."""
        self._bus._remove(self._handler)


class EventBus:
    """Typed events to every subscriber, in publish order."""

    def __init__(self) -> None:
        self._handlers: tuple[Handler, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, handler: Handler) -> Subscription:
        """Call ``handler(event)`` for every event from now on."""
        with self._lock:
            self._handlers = (*self._handlers, handler)
        return Subscription(self, handler)

    def _remove(self, handler: Handler) -> None:
        with self._lock:
            self._handlers = tuple(h for h in self._handlers if h is not handler)

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscriber; a failing one is logged, not fatal."""
        for handler in self._handlers:
            try:
                handler(event)
            except Exception:  # a subscriber's bug must not break the call path
                log.exception("event subscriber %r failed on %s", handler, event.topic)

    def queue(
        self, kinds: tuple[type[Event], ...] | None = None, maxsize: int = 10_000
    ) -> tuple[asyncio.Queue[Event], Subscription]:
        """A bounded asyncio queue of the events of ``kinds`` (all when None), oldest dropped when full.

        Must be called from the event loop that will read the queue; events
        published from other threads are handed over thread-safely.
        """
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)

        def put(item: Event) -> None:
            if q.full():
                q.get_nowait()
            q.put_nowait(item)

        def handler(event: Event) -> None:
            if kinds is not None and not isinstance(event, kinds):
                return
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                put(event)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(put, event)

        return q, self.subscribe(handler)
