"""Where the dashboard's numbers come from: one `Backend` per way of running.

- `axtui.tui.data_demo.DemoBackend` (``--demo``): the engine in-process on
  the simulated fleet, driven by the standard workload; its own database
  (``demo.db`` in the data dir), so demo traffic never mixes with real
  spend.
- `axtui.tui.data_local.StoreBackend` (the default with providers
  configured): the local store, which every local ax process writes, read
  through the shared per-second rollups.
- `axtui.tui.data_remote.RemoteBackend` (``--url``): a running ``ax serve``
  through its metrics API and server-sent event stream.

`Backend` is the one interface every screen uses; each backend implements
all of it (`BackendBase` holds what they share), and mypy checks that they
do. Every method may block (the store, HTTP, the engine's loop), so the
screens call them from worker threads only, never from the UI thread.
Writes raise `axtui.errors.AxError` with a message fit for the user; the
screens show it and keep the old value.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import RoutingConfig, Settings
from axtui.metrics.snapshot import AlertSummary, RecentCall, Snapshot

if TYPE_CHECKING:
    from axtui.cost.alerts import BudgetAlert
    from axtui.cost.budgets import BudgetInfo
    from axtui.metrics.alerts.model import AlertEvent, RuleInfo
    from axtui.routing.explain import Explanation
    from axtui.server.keys import KeyInfo
    from axtui.tui.views import AlertsView, BudgetsView, CostView, ExportResult, KeysView, RoutingView
    from axtui.types import CallRecord

__all__ = [
    "AlertListener",
    "Backend",
    "BackendBase",
    "BackendNotReady",
    "DeploymentState",
    "LiveView",
    "open_backend",
]

#: Called with each alert rule transition (`AlertEvent`) or budget threshold crossed (`BudgetAlert`).
AlertListener = Callable[["AlertEvent | BudgetAlert"], None]


class BackendNotReady(RuntimeError):
    """The backend has not finished starting (or failed to)."""


@dataclass(slots=True)
class DeploymentState:
    """A deployment's routing health, as the realtime table shows it.

    ``state`` is the circuit (``closed``, ``half-open``, ``open``);
    ``cooldown_s`` is the rest after an upstream 429.
    """

    deployment: str
    state: str = "closed"
    reason: str = ""
    cooldown_s: float = 0.0
    retry_in_s: float = 0.0
    in_flight: int = 0
    error_rate: float | None = None

    @property
    def health(self) -> str:
        """``ok``, ``cooling``, ``probing`` or ``down``: one word for the table."""
        if self.state == "open":
            return "down"
        if self.state == "half-open":
            return "probing"
        if self.cooldown_s > 0:
            return "cooling"
        return "ok"


@dataclass(slots=True)
class LiveView:
    """What the realtime screen draws, fetched in one go."""

    snapshot: Snapshot
    health: dict[str, DeploymentState] = field(default_factory=dict)
    alerts: list[AlertSummary] = field(default_factory=list)

    @property
    def firing(self) -> list[AlertSummary]:
        """Alerts firing now."""
        return [a for a in self.alerts if a.state == "firing"]


class Backend(Protocol):
    """The data and actions behind every screen: what each backend implements.

    Reads return the subsystems' own types (wrapped in the `axtui.tui.views`
    dataclasses); writes return what was written, or raise `AxError`.
    """

    #: ``demo``, ``local`` or ``remote``.
    mode: str
    settings: Settings
    clock: Clock
    #: Set once `start` has finished, successfully or not.
    ready: threading.Event
    #: Why `start` failed, or None.
    error: str | None

    @property
    def label(self) -> str:
        """A few words for the top bar: where the numbers come from."""
        ...

    @property
    def applies_routing_now(self) -> bool:
        """Whether saved routing is in force at once (a running engine or server), not only for new gateways."""
        ...

    # -- lifecycle
    def start(self) -> None:
        """Connect, open or build what the backend reads (may take a second; run it in a thread)."""
        ...

    def close(self) -> None:
        """Stop everything started; records in flight are written first."""
        ...

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until `start` finished; raises `BackendNotReady` when it failed or the wait timed out."""
        ...

    def on_alert(self, listener: AlertListener) -> None:
        """Call ``listener(event)`` (from any thread) for every alert transition and budget threshold."""
        ...

    # -- realtime
    def live(self, series_s: int) -> LiveView:
        """Totals, series over the last ``series_s`` seconds, per-deployment rows and health, recent calls."""
        ...

    def alert_summaries(self) -> list[AlertSummary]:
        """Alert rules pending or firing now."""
        ...

    # -- costs
    def costs(self, range_name: str, by: str) -> CostView:
        """Spend over the last ``range_name`` (1h, 24h, 7d, 30d) grouped ``by`` provider, model or user."""
        ...

    # -- budgets and limits
    def budgets(self) -> BudgetsView:
        """Every budget with its spend and forecast, and every rate limit with what is used."""
        ...

    def add_budget(self, scope: str, period: str, amount: str, hard: bool) -> BudgetInfo:
        """Create a budget (or change the one with the same scope and period)."""
        ...

    def set_budget_amount(self, budget_id: int, amount: str) -> BudgetInfo:
        """Change a budget's limit to ``amount`` (``25``, ``$12.50``)."""
        ...

    def toggle_hard(self, budget_id: int) -> BudgetInfo:
        """Make a soft budget hard (refusing calls) or a hard one soft (alerting only)."""
        ...

    def delete_budget(self, budget_id: int) -> object:
        """Delete a budget (its alert history stays)."""
        ...

    def set_limit(self, subject: str, requests: str | None, tokens: str | None) -> object:
        """Store a per-subject limit (``60/minute``); None keeps the default."""
        ...

    def delete_limit(self, subject: str) -> object:
        """Remove a subject's stored limit (the defaults apply again)."""
        ...

    def reset_limit(self, subject: str) -> object:
        """Forget what a subject used: its quota is full again."""
        ...

    # -- keys and teams
    def keys(self) -> KeysView:
        """Every gateway key and team, with this month's spend and budget use."""
        ...

    def revoke_key(self, key_id: str) -> KeyInfo:
        """Revoke a key (audited); the gateway refuses it within ``server.key_cache_s`` seconds."""
        ...

    def rotate_key(self, key_id: str, grace: str | None) -> tuple[str, KeyInfo]:
        """Give a key a new secret (returned once); the old one works for ``grace`` (``1h``; None: not at all)."""
        ...

    # -- alerts
    def alerts(self) -> AlertsView:
        """Every rule with its state and what it measures, the latest events, budget threshold alerts."""
        ...

    def add_rule(self, text: str, name: str | None, severity: str) -> RuleInfo:
        """Add an alert rule in the CLI's grammar."""
        ...

    def update_rule(self, rule_id: int, text: str, name: str | None, severity: str) -> RuleInfo:
        """Change a rule's condition, name or severity (a changed condition restarts it at ok)."""
        ...

    def remove_rule(self, rule_id: int) -> object:
        """Delete a rule (its events stay)."""
        ...

    def acknowledge_rule(self, rule_id: int) -> RuleInfo:
        """Mark a rule's current episode as seen."""
        ...

    def silence_rule(self, rule_id: int, seconds: float | None) -> RuleInfo:
        """Stop a rule's notifications for ``seconds`` (None lifts the silence)."""
        ...

    # -- routing
    def routing(self) -> RoutingView:
        """Deployments with health and weights, rules in order, A/B tests and their results."""
        ...

    def explain(self, model: str, user: str, tokens: int | None) -> Explanation:
        """Which deployment a call of ``model`` by ``user`` would get, and why."""
        ...

    def save_routing(self, routing: RoutingConfig, weights: dict[str, float]) -> Path:
        """Validate and save routing and deployment weights; returns the config file written."""
        ...

    def whatif(self, range_name: str, strategy: str | None, prices: str | None) -> dict[str, Any]:
        """The calls of ``range_name`` replayed under ``strategy`` or the price file ``prices`` (`WhatIf.as_dict`)."""
        ...

    def call_record(self, request_id: str, ts: float) -> CallRecord | None:
        """The stored record of one call (its route, attempts, similarity), or None when not found."""
        ...

    # -- export
    def default_export_path(self, what: str, fmt: str) -> Path:
        """Where an export goes unless the user names a file: a name no file has yet."""
        ...

    def export(self, what: str, fmt: str, path: Path, since: float | None, until: float | None) -> ExportResult:
        """Write ``what`` (calls, costs, alerts, budgets) as ``fmt`` to ``path``."""
        ...

    def call_rows(self, calls: Sequence[RecentCall]) -> list[list[Any]]:
        """``calls`` (lines of the live log) as ``ax monitor export`` rows, in their order.

        Each row is the stored call when the backend can read it, else what the live log carried.
        """
        ...


class BackendBase(ABC):
    """What every backend shares: settings, clock, readiness, alert listeners, export paths.

    Args:
        settings: the effective settings (the demo fleet filled in when used).
        clock: the time every screen shows and every age is measured from.
    """

    #: ``demo``, ``local`` or ``remote``.
    mode: str = "local"

    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.clock = clock
        self.ready = threading.Event()
        self.error: str | None = None
        self._alert_listeners: list[AlertListener] = []

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def label(self) -> str:
        """A few words for the top bar: where the numbers come from."""
        return self.mode

    @property
    def applies_routing_now(self) -> bool:
        """Whether saved routing is in force at once (False: gateways started from now on use it)."""
        return False

    @abstractmethod
    def start(self) -> None:
        """Connect, open or build what the backend reads (may take a second; run it in a thread)."""

    @abstractmethod
    def close(self) -> None:
        """Stop everything started; records in flight are written first."""

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until `start` finished.

        Raises:
            BackendNotReady: it failed (``error`` says why) or the wait timed out.
        """
        if not self.ready.wait(timeout):
            raise BackendNotReady("still starting")
        if self.error:
            raise BackendNotReady(self.error)

    def on_alert(self, listener: AlertListener) -> None:
        """Call ``listener(event)`` (from any thread) for every alert transition."""
        self._alert_listeners.append(listener)

    def _emit_alert(self, event: AlertEvent | BudgetAlert) -> None:
        for listener in list(self._alert_listeners):
            listener(event)

    # -- realtime -----------------------------------------------------------------------

    @abstractmethod
    def live(self, series_s: int) -> LiveView:
        """Totals, series over the last ``series_s`` seconds, per-deployment rows and health, recent calls."""

    @abstractmethod
    def alert_summaries(self) -> list[AlertSummary]:
        """Alert rules pending or firing now."""

    # -- export -------------------------------------------------------------------------

    def default_export_path(self, what: str, fmt: str) -> Path:
        """Where an export goes unless the user names a file: a name no file has yet."""
        from axtui import locations
        from axtui.tui.export_view import export_file_name, unused_path

        return unused_path(locations.data_dir() / "exports" / export_file_name(what, fmt, self.clock.now()))

    def call_rows(self, calls: Sequence[RecentCall]) -> list[list[Any]]:
        """``calls`` as ``ax monitor export`` rows from what the live log carried (no store to read here)."""
        from axtui.tui.export_view import live_call_row

        return [live_call_row(c) for c in calls]


def open_backend(*, demo: bool | None, url: str | None, settings: Settings | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> Backend:
    """The backend the command line asks for.

    ``demo`` None means: the demo when nothing is configured (no provider
    in the config file), the local store otherwise.

    Raises:
        ConfigError: the config file is broken, or ``demo`` and ``url`` are both given.
    """
    from axtui.config import load_settings
    from axtui.errors import ConfigError

    if demo and url:
        raise ConfigError("--demo and --url exclude each other: the demo runs its own engine; drop one of them")
    if url:
        from axtui.tui.data_remote import RemoteBackend

        return RemoteBackend(url, settings or Settings(), clock=clock)
    settings = settings if settings is not None else load_settings()
    if demo is None:
        demo = settings.uses_demo_fleet
    if demo:
        from axtui.tui.data_demo import DemoBackend

        return DemoBackend(settings, clock=clock)
    from axtui.tui.data_local import StoreBackend

    return StoreBackend(settings, clock=clock)
