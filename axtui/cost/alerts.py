"""Budget alerts: thresholds crossed, recorded once, delivered three ways.

Each budget has thresholds in percent of its limit (default 50, 80, 100).
When spending in a period reaches one, an alert event is stored, at most
once per budget, period and threshold (a unique constraint, so two
processes settling at once still fire it once), and it goes to

- the log (a warning),
- the event bus, as `BudgetCrossed` (the dashboard shows it),
- the budget's webhook, or the configured one: a JSON POST through ax's
  one webhook sender (`axtui.webhooks`: retries, no redirects, the
  ``[webhooks]`` address policy); the outcome is recorded on the event and
  a failure is never fatal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from axtui.bus import BudgetCrossed, EventBus
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import BudgetsConfig
from axtui.cost.budgets import BudgetInfo, budget_status
from axtui.cost.calculator import money
from axtui.money import format_usd
from axtui.store import Store
from axtui.store.tables_cost import BudgetAlertEvent, insert_or_ignore
from axtui.webhooks import AddressPolicy, WebhookSender, webhook_host

__all__ = [
    "AlertNotifier",
    "BudgetAlert",
    "alert_events",
    "crossed",
    "evaluate_alerts",
    "record_crossings",
]

log = logging.getLogger(__name__)
_EVENTS = BudgetAlertEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """A budget reached ``threshold`` percent of its limit in the period starting ``period_start``."""

    event_id: int
    budget_id: int
    scope: str
    period: str
    period_start: int
    threshold: int
    spent_nanos: int
    limit_nanos: int
    ts: float
    message: str
    delivery: str = "none"

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON body (money as exact decimal strings)."""
        return {
            "type": "budget.threshold",
            "event_id": self.event_id,
            "budget_id": self.budget_id,
            "scope": self.scope,
            "period": self.period,
            "period_start": datetime.fromtimestamp(self.period_start, UTC).isoformat(),
            "threshold_percent": self.threshold,
            "spent_usd": money(self.spent_nanos),
            "limit_usd": money(self.limit_nanos),
            "message": self.message,
            "ts": datetime.fromtimestamp(self.ts, UTC).isoformat(),
        }


def crossed(thresholds: Sequence[int], limit_nanos: int, spent_nanos: int) -> list[int]:
    """The thresholds (percent) that ``spent_nanos`` has reached, exactly (integer arithmetic)."""
    return [t for t in thresholds if spent_nanos * 100 >= limit_nanos * t]


def _message(budget: BudgetInfo, threshold: int, spent: int, used_up: bool = False) -> str:
    per = "in total" if budget.period == "total" else f"this {budget.period}"
    if used_up:
        return (f"budget #{budget.id} ({budget.scope}) is used up: {format_usd(spent, nanos=True)} of "
                f"{format_usd(budget.limit_nanos, nanos=True)} spent {per} and the rest held by calls under way; "
                "calls are now refused")
    verdict = ""
    if threshold >= 100:
        verdict = "; calls are now refused" if budget.hard else "; it is a soft budget, calls go on"
    return (
        f"budget #{budget.id} ({budget.scope}) reached {threshold}% of {format_usd(budget.limit_nanos, nanos=True)} "
        f"{per}: {format_usd(spent, nanos=True)} spent{verdict}"
    )


def record_crossings(
    conn: Connection,
    budget: BudgetInfo,
    period_start: int,
    spent_nanos: int,
    thresholds: Sequence[int],
    now: float,
    *,
    webhook: bool,
    used_up: bool = False,
) -> list[BudgetAlert]:
    """Store an event for each threshold reached and not yet recorded; returns the new ones.

    ``used_up``: a hard budget refused a call for want of room, so its 100 % (and higher)
    thresholds count as reached although what is spent is still a little under the limit.
    """
    fired = []
    for t in thresholds if used_up else crossed(thresholds, budget.limit_nanos, spent_nanos):
        message = _message(budget, t, spent_nanos, used_up)
        inserted = insert_or_ignore(
            conn,
            _EVENTS,
            {
                "budget_id": budget.id, "period_start": period_start, "threshold": t, "ts": now,
                "scope": str(budget.scope), "period": budget.period, "spent_nanos": spent_nanos,
                "limit_nanos": budget.limit_nanos, "message": message, "delivery": "pending" if webhook else "none",
                "attempts": 0,
            },
        )
        if inserted:
            event_id = conn.execute(
                select(_EVENTS.c.id).where(
                    _EVENTS.c.budget_id == budget.id, _EVENTS.c.period_start == period_start, _EVENTS.c.threshold == t
                )
            ).scalar_one()
            fired.append(
                BudgetAlert(int(event_id), budget.id, str(budget.scope), budget.period, period_start, t, spent_nanos,
                            budget.limit_nanos, now, message, "pending" if webhook else "none")
            )
    return fired


class AlertNotifier:
    """Delivers budget alerts to the log, the bus and webhooks.

    Args:
        store: where delivery outcomes are recorded.
        bus: the event bus (`BudgetCrossed` events); None to skip it.
        clock: backoff waits use it.
        attempts: webhook tries before a delivery is recorded as failed.
        timeout_s: the timeout of one try.
        policy: which addresses webhooks may reach (default: public ones only).
        sender: the webhook sender (default: one made from the arguments above).
        log_alerts: log each alert as a warning; off where the caller prints them itself
            (``ax cost budget check``), so nobody reads one alert twice.
    """

    def __init__(
        self,
        store: Store,
        *,
        bus: EventBus | None = None,
        clock: Clock = SYSTEM_CLOCK,
        attempts: int = 3,
        timeout_s: float = 10.0,
        policy: AddressPolicy | None = None,
        sender: WebhookSender | None = None,
        log_alerts: bool = True,
    ) -> None:
        self.store = store
        self.log_alerts = log_alerts
        self.bus = bus
        self.clock = clock
        self.attempts = attempts
        self.timeout_s = timeout_s
        self.policy = policy or AddressPolicy()
        self.sender = sender
        self._tasks: set[asyncio.Task[bool]] = set()

    def publish(self, alert: BudgetAlert, webhook: str | None) -> None:
        """Log the alert, put it on the bus, and start its webhook delivery (if a loop runs)."""
        if self.log_alerts:
            log.warning("%s", alert.message)
        if self.bus is not None:
            self.bus.publish(BudgetCrossed(alert))
        if webhook:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop: the caller delivers with `deliver` itself
            task = loop.create_task(self.deliver(alert, webhook))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def deliver(self, alert: BudgetAlert, url: str) -> bool:
        """POST the alert to ``url``, retrying with backoff; record and return the outcome."""
        # Budget alerts are rare: a sender (and its connection pool) per delivery
        # unless one was given, so nothing is left open between them.
        sender = self.sender or WebhookSender(
            timeout_s=self.timeout_s, attempts=self.attempts, clock=self.clock, policy=self.policy
        )
        try:
            result = await sender.deliver(url, alert.payload())
        finally:
            if self.sender is None:
                await sender.aclose()
        if result.ok:
            self._record(alert.event_id, "ok", result.attempts, None)
            return True
        log.warning("budget alert webhook to %s failed after %d tries: %s", webhook_host(url), result.attempts,
                    result.error)  # fmt: skip
        self._record(alert.event_id, "failed", result.attempts, result.error)
        return False

    def _record(self, event_id: int, delivery: str, attempts: int, error: str | None) -> None:
        try:
            self.store.run(
                lambda conn: conn.execute(
                    _EVENTS.update()
                    .where(_EVENTS.c.id == event_id)
                    .values(delivery=delivery, attempts=attempts, delivery_error=error, delivered_at=self.clock.now())
                )
            )
        except Exception:  # recording the outcome must never break the caller
            log.exception("could not record the delivery of budget alert %d", event_id)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout``) for webhook deliveries under way."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


def alert_events(store: Store, *, since: float | None = None, limit: int = 100) -> list[BudgetAlert]:
    """Recorded budget alerts, newest first."""
    q = select(_EVENTS).order_by(_EVENTS.c.ts.desc(), _EVENTS.c.id.desc()).limit(limit)
    if since is not None:
        q = q.where(_EVENTS.c.ts >= since)

    def read(conn: Connection) -> list[BudgetAlert]:
        out = []
        for row in conn.execute(q):
            r = row._mapping
            out.append(
                BudgetAlert(r["id"], r["budget_id"], r["scope"], r["period"], int(r["period_start"]), r["threshold"],
                            int(r["spent_nanos"]), int(r["limit_nanos"]), r["ts"], r["message"], r["delivery"])
            )
        return out

    return store.run(read)


async def evaluate_alerts(
    store: Store, config: BudgetsConfig, now: float, notifier: AlertNotifier
) -> list[BudgetAlert]:
    """Fire every alert due at ``now`` that has not fired yet, and deliver its webhook.

    The engine fires alerts as calls settle; this catches the rest (a
    budget created or lowered below what was already spent) for
    ``ax cost budget check`` run from cron.
    """
    fired: list[tuple[BudgetAlert, str | None]] = []
    for status in budget_status(store, now, tz=config.timezone):
        b = status.budget
        webhook = b.webhook or config.webhook
        new = store.run(
            lambda conn, b=b, s=status, w=webhook: record_crossings(  # type: ignore[misc]
                conn, b, s.period_start, s.spent_nanos, b.thresholds or tuple(config.thresholds), now, webhook=bool(w)
            )
        )
        fired.extend((a, webhook) for a in new)
    for alert, webhook in fired:
        notifier.publish(alert, None)
        if webhook:
            await notifier.deliver(alert, webhook)
    return [a for a, _ in fired]
