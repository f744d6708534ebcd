"""What every route of one server process shares: settings, gateway, auth, in-flight calls."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from axtui.config import Settings

if TYPE_CHECKING:
    from axtui.engine.gateway import Gateway
    from axtui.server.auth import Authenticator

__all__ = ["ServerState", "chain_stop_signals"]


@dataclass(slots=True)
class ServerState:
    """One process's server state; the gateway is built when the server starts.

    ``inflight`` counts calls being served, so a graceful stop can wait for
    them before the recorder's last flush.
    """

    settings: Settings
    no_auth: bool = False
    gateway: Gateway | None = None
    auth: Authenticator | None = None
    monitoring: Any = None
    inflight: int = 0
    stopping: bool = False
    started_at: float = 0.0
    #: The config file routing edits are saved to (and watched), when serving from one.
    config_path: Path | None = None
    #: Metrics streams open now, by who holds them (``key:<id>``, ``admin``, ``anonymous``).
    streams: dict[str, int] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _idle: asyncio.Event | None = field(default=None, repr=False)

    @property
    def max_body(self) -> int:
        """The largest request body accepted, in bytes."""
        return self.settings.server.max_body_bytes

    def bind_loop(self) -> None:
        """Remember the server's event loop (when the server starts)."""
        self._loop = asyncio.get_running_loop()

    def begin_stop(self) -> None:
        """A stop was asked for: long-lived responses (metrics streams) end within half a second.

        Safe from a signal handler: it only sets a flag.
        """
        self.stopping = True

    def enter(self) -> None:
        """A call starts."""
        self.inflight += 1

    def leave(self) -> None:
        """A call ended; wake a waiting shutdown when it was the last."""
        self.inflight -= 1
        if self.inflight == 0 and self._idle is not None:
            self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Wait until no call is in flight (at most ``timeout`` seconds); False if some still are."""
        self.begin_stop()
        if self.inflight == 0:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return self.inflight == 0
        return True


def chain_stop_signals(on_stop: Callable[[], None]) -> None:
    """Call ``on_stop`` when SIGINT or SIGTERM arrives, before the server's own handler.

    Long-lived responses (the metrics stream) end on it, so the server's
    graceful wait covers only real calls. The server restores its
    predecessors' handlers when it exits, which drops this wrapper too.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: Any, previous: Callable[..., Any] = previous) -> None:
            on_stop()
            previous(signum, frame)

        signal.signal(sig, handler)
