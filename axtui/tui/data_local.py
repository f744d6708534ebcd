"""The local backend: the store every local ax process writes, read live.

Live numbers come from the shared per-second rollups (`StoreFeed`), so the
dashboard sees every process on the machine (``ax serve`` workers,
``ax call``), not just itself. Routing health is replayed from the call
log. Edits (budgets, limits, alert rules, routing) are written to the
store or the config file, where running gateways pick them up.

`axtui.tui.data_demo.DemoBackend` extends this class with an engine in
the same process.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from axtui.bus import AlertChanged
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import Settings
from axtui.metrics.live import LiveMetrics
from axtui.metrics.snapshot import AlertSummary
from axtui.store import Store
from axtui.tui.backend_ops import StoreOps
from axtui.tui.data import Backend, DeploymentState, LiveView

__all__ = ["StoreBackend"]

log = logging.getLogger(__name__)

#: Replaying routing health from the call log is not free; do it this often at most.
_HEALTH_EVERY_S = 5.0
#: How often firing alerts are looked for in the store when no bus carries them.
_ALERT_POLL_S = 2.0


class StoreBackend(StoreOps, Backend):
    """Reads and edits the local store.

    Args:
        settings: the settings (the config file's).
        clock: the time source.
        store: an open store (tests pass a seeded one); opened on `start` when None.
        metrics: live windows to read; when None, windows fed from the store's rollups.
        database_url: where to open the store when ``store`` is None.
    """

    mode = "local"

    def __init__(
        self,
        settings: Settings,
        clock: Clock = SYSTEM_CLOCK,
        *,
        store: Store | None = None,
        metrics: LiveMetrics | None = None,
        database_url: str | None = None,
    ) -> None:
        Backend.__init__(self, settings, clock)
        self._store = store
        self._owns_store = store is None
        self.metrics = metrics
        self.database_url = database_url
        self._feed: Any = None
        self._health_cache: tuple[float, dict[str, DeploymentState]] | None = None
        self._alert_seen_id: int | None = None
        self._alert_poll_at = 0.0
        self._lock = threading.Lock()

    @property
    def store(self) -> Store:
        """The open store (after `start`)."""
        if self._store is None:
            raise RuntimeError("the backend has not started")
        return self._store

    @property
    def label(self) -> str:
        url = self.database_url
        if url is None and self._store is not None:
            url = str(self._store.engine.url)
        return f"local {_short_url(url or 'store')}"

    def start(self) -> None:
        try:
            from axtui.engine.compose import build_catalog, effective_providers

            self.settings = effective_providers(self.settings)
            self.catalog = build_catalog(self.settings)
            if self._store is None:
                self._store = Store.open(self.database_url)
            if self.metrics is None:
                from axtui.metrics.shared import StoreFeed

                self.metrics = LiveMetrics(self.settings.metrics, clock=self.clock, source="store")
                self._feed = StoreFeed(self._store, self.metrics, clock=self.clock)
        except Exception as exc:
            self.error = getattr(exc, "message", None) or str(exc)
            raise
        finally:
            self.ready.set()

    def close(self) -> None:
        self.close_ops()
        if self._store is not None and self._owns_store:
            self._store.close()

    # -- realtime -----------------------------------------------------------------------

    def live(self, series_s: int) -> LiveView:
        self.wait_ready(30)
        if self._feed is not None:
            with self._lock:
                self._feed.poll()
        assert self.metrics is not None
        snap = self.metrics.snapshot(series_s=series_s, recent=self.settings.metrics.recent_calls)
        alerts = self.alert_summaries()
        snap.alerts = alerts
        self._poll_alert_events()
        return LiveView(snapshot=snap, health=self.deployment_health(), alerts=alerts)

    def deployment_health(self) -> dict[str, DeploymentState]:
        """Each deployment's circuit and cooldown, replayed from the call log (cached a few seconds)."""
        now = self.clock.monotonic()
        cached = self._health_cache
        if cached is not None and now - cached[0] < _HEALTH_EVERY_S:
            return cached[1]
        health = {s.deployment: _state(s) for s in self.deployment_health_list()}
        self._health_cache = (now, health)
        return health

    def alert_summaries(self) -> list[AlertSummary]:
        """Rules pending or firing now, as the store has them."""
        from axtui.metrics.alerts.storage import list_rules

        out = []
        for r in list_rules(self.store):
            if r.state in ("pending", "firing") and r.enabled:
                out.append(AlertSummary(rule_id=r.id, name=r.name, severity=r.severity, state=r.state,
                                        since=r.state_since or r.updated_at, value=r.last_value, rule=r.rule))
        return out

    def _poll_alert_events(self) -> None:
        """Hand new alert transitions to listeners (another process evaluates the rules)."""
        if not self._alert_listeners:
            return
        now = self.clock.monotonic()
        if now - self._alert_poll_at < _ALERT_POLL_S:
            return
        self._alert_poll_at = now
        from axtui.metrics.alerts.storage import list_events

        events = list_events(self.store, limit=50)
        newest = max((e.id for e in events), default=0)
        if self._alert_seen_id is None:
            self._alert_seen_id = newest  # only transitions from now on notify
            return
        for e in sorted(events, key=lambda e: e.id):
            if e.id > self._alert_seen_id:
                self._emit_alert(AlertChanged(e))
        self._alert_seen_id = max(self._alert_seen_id, newest)


def _state(s: Any) -> DeploymentState:
    return DeploymentState(
        deployment=s.deployment, state=s.state, reason=s.state_reason, cooldown_s=s.cooldown_s,
        retry_in_s=s.retry_in_s, in_flight=s.in_flight, error_rate=s.error_rate if s.calls else None,
    )


def _short_url(url: str) -> str:
    if url.startswith("sqlite:///"):
        from pathlib import Path

        path = Path(url.removeprefix("sqlite:///"))
        return path.name
    if "@" in url:  # never show a password
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return url
