"""The alert evaluator: every few seconds, every rule, on the live windows.

Each evaluation reads the rules from the store (so rules added by the CLI
or another process are picked up), measures each one (`MetricSources`),
advances its state machine (`axtui.metrics.alerts.state`), and stores
every transition as an event with a compare-and-set on the rule's state,
so when several processes evaluate the same rules only one announces each
transition. A stored transition is then delivered:

- to the log (firing at warning, or error for critical rules; the rest at info),
- to the event bus as `AlertChanged` (the dashboard shows it),
- to the rule's webhook (or ``alerts.webhook``) for ``firing`` and
  ``resolved`` transitions, in the background, with retries; the outcome
  is written back to the event. A silenced rule's events are stored and
  published but not sent.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from axtui.aio import cancel_and_wait
from axtui.bus import AlertChanged, EventBus
from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import Settings
from axtui.metrics.alerts import storage
from axtui.metrics.alerts.grammar import AlertRule, RuleSyntaxError, format_duration, format_number, parse_rule
from axtui.metrics.alerts.model import EVALUATED_EVERY_S, AlertEvent, RuleInfo
from axtui.metrics.alerts.sources import MetricSources
from axtui.metrics.alerts.state import Policy, RuleState, Transition, step
from axtui.metrics.live import LIVE_DIMENSIONS, LiveMetrics
from axtui.metrics.snapshot import AlertSummary
from axtui.store import Store
from axtui.webhooks import WebhookSender, webhook_host, webhook_policy

__all__ = ["AlertEvaluator", "describe_value"]

log = logging.getLogger("axtui.alerts")

_NOTIFY = ("firing", "resolved")


def describe_value(rule: AlertRule, value: float | Decimal | None) -> str:
    """A measured value in the metric's unit, for messages."""
    if value is None:
        return "no data"
    unit = rule.spec.unit
    v = float(value)
    if unit == "ratio":
        return f"{v * 100:.3g}%"
    if unit == "ms":
        return f"{v:.0f} ms"
    if unit == "usd":
        return f"${Decimal(str(value)):.4f}".rstrip("0").rstrip(".") if v < 100 else f"${v:,.2f}"
    if unit == "pct":
        return f"{v:.1f}%"
    return f"{v:.4g}"


def _message(info: RuleInfo, rule: AlertRule, t: Transition) -> str:
    shown = describe_value(rule, t.value)
    cond = f"{rule.op} {format_number(rule.threshold)}"
    where = (" where " + ",".join(f"{k}={v}" for k, v in rule.where)) if rule.where else ""
    if t.kind == "firing":
        held = f" for {format_duration(rule.for_s)}" if rule.for_s else ""
        return f"[{info.severity}] {info.name}: {rule.metric} is {shown} ({cond}{held}){where}"
    if t.kind == "resolved":
        return f"resolved: {info.name}: {rule.metric} is {shown} (threshold {cond}){where}"
    if t.kind == "pending":
        return f"pending: {info.name}: {rule.metric} is {shown} ({cond}); fires if it holds for {format_duration(rule.for_s)}"
    return f"cancelled: {info.name}: {rule.metric} is {shown}, clear before firing{where}"


class AlertEvaluator:
    """Evaluates the stored rules on a timer and delivers their transitions.

    Args:
        store: where rules and events live.
        live: the live windows rules read.
        settings: ``alerts`` (interval, window, hysteresis, cooldown, webhook) and ``budgets``.
        bus: where ``alert`` events are published (None: not published).
        clock: the time source.
        sources: metric readers (default: live windows, spend rollups, budgets).
        sender: the webhook sender (default: one built from ``settings.alerts``).
    """

    def __init__(
        self,
        store: Store,
        live: LiveMetrics,
        settings: Settings,
        *,
        bus: EventBus | None = None,
        clock: Clock = SYSTEM_CLOCK,
        sources: MetricSources | None = None,
        sender: WebhookSender | None = None,
    ) -> None:
        cfg = settings.alerts
        self.store = store
        self.live = live
        self.settings = settings
        self.bus = bus
        self.clock = clock
        self.sources = sources or MetricSources(live, store, settings)
        self.sender = sender or WebhookSender(
            timeout_s=cfg.webhook_timeout_s, attempts=cfg.webhook_attempts, clock=clock,
            policy=webhook_policy(settings.webhooks),
        )  # fmt: skip
        self.policy = Policy(cfg.cooldown_s, cfg.hysteresis, cfg.resolve_after_s)
        self.evaluations = 0
        self.last_error: str | None = None
        self._states: dict[tuple[int, str], RuleState] = {}
        self._rules: dict[int, RuleInfo] = {}
        self._parsed: dict[str, AlertRule | None] = {}
        self._watched: set[tuple[tuple[str, str], ...]] = set()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._noted_at: float | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Evaluate every ``alerts.interval_s`` on the running loop until `aclose`."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ax-alert-evaluator")
        return self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.evaluate_once()
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a store hiccup must not end alerting
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("alert evaluation failed (will retry): %s", self.last_error)
            # The cadence is real time; what is measured uses the clock. (A fake
            # clock's sleep moves time itself, and a background loop would spin it.)
            await asyncio.sleep(self.settings.alerts.interval_s)

    async def aclose(self, timeout: float = 10.0) -> None:
        """Stop evaluating; wait up to ``timeout`` for deliveries in flight, then close."""
        await cancel_and_wait(self._task)
        self._task = None
        if self._deliveries:
            _done, pending = await asyncio.wait(set(self._deliveries), timeout=timeout)
            for task in pending:
                task.cancel()
        await self.sender.aclose()
        for filters in self._watched:
            self.live.unwatch(dict(filters))
        self._watched.clear()

    async def drain(self) -> None:
        """Wait for every webhook delivery started so far (tests and shutdown)."""
        while self._deliveries:
            await asyncio.gather(*set(self._deliveries), return_exceptions=True)

    # -- one evaluation ----------------------------------------------------------------------

    async def evaluate_once(self) -> list[AlertEvent]:
        """Measure every enabled rule once; store and announce the transitions."""
        now = self.clock.now()
        rules = await asyncio.to_thread(storage.list_rules, self.store)
        self._forget_removed(rules)
        todo: list[tuple[RuleInfo, AlertRule]] = []
        for info in rules:
            rule = self._parse(info)
            if rule is not None and info.enabled:
                todo.append((info, rule))
        self._sync_watches([r for _, r in todo])
        if self.sources.shared is not None and any(self.sources.is_live(r) for _, r in todo):
            try:
                await asyncio.to_thread(self.sources.refresh)
            except Exception as exc:  # the store may be busy: measure on what was read before
                log.warning("alerts: reading the shared live metrics failed (will retry): %s", exc)
        slow = [(i, r) for i, r in todo if not self.sources.is_live(r)]
        slow_values = await asyncio.to_thread(self._slow_values, slow, now) if slow else {}
        changes: list[tuple[RuleInfo, AlertRule, Transition]] = []
        for info, rule in todo:
            value = slow_values[info.id] if info.id in slow_values else self.sources.current(rule)
            t = step(rule, self._state(info), value, now, self.policy)
            if t is not None:
                changes.append((info, rule, t))
        self.evaluations += 1
        if todo and (self._noted_at is None or now - self._noted_at >= EVALUATED_EVERY_S):
            # So a command can tell a state that is being kept current from one left by a process that exited.
            await asyncio.to_thread(storage.mark_evaluated, self.store, [i.id for i, _ in todo], now)
            self._noted_at = now
        if not changes:
            return []
        events = await asyncio.to_thread(self._store, changes, now)
        for event, info in events:
            self._announce(event, info)
        return [e for e, _ in events]

    def _slow_values(self, slow: list[tuple[RuleInfo, AlertRule]], now: float) -> dict[int, Decimal | float | None]:
        out: dict[int, Decimal | float | None] = {}
        for info, rule in slow:
            try:
                out[info.id] = self.sources.slow(rule, now)
            except Exception as exc:  # one unreadable source must not stop the other rules
                log.warning("alert rule %s (%s): cannot read %s: %s", info.id, info.name, rule.metric, exc)
                out[info.id] = None
        return out

    def _parse(self, info: RuleInfo) -> AlertRule | None:
        if info.rule not in self._parsed:
            try:
                self._parsed[info.rule] = parse_rule(info.rule)
            except RuleSyntaxError as exc:
                # Written by a newer ax, or edited by hand: skip it, say so once.
                log.error("alert rule %s (%s) is not valid here and is skipped: %s", info.id, info.name, exc.message)
                self._parsed[info.rule] = None
        return self._parsed[info.rule]

    def _state(self, info: RuleInfo) -> RuleState:
        key = (info.id, info.rule)
        st = self._states.get(key)
        if st is None or st.state != info.state:
            # First sight, or another process (or a command) moved the rule: adopt the stored state.
            st = self._states[key] = RuleState(
                state=info.state,  # type: ignore[arg-type]
                since=info.state_since,
                last_fired=info.last_fired_at,
                last_resolved=info.last_resolved_at,
                value=info.last_value,
            )
        return st

    def _forget_removed(self, rules: list[RuleInfo]) -> None:
        current = {(r.id, r.rule) for r in rules}
        for key in [k for k in self._states if k not in current]:
            del self._states[key]
        self._rules = {r.id: r for r in rules}

    def _sync_watches(self, rules: list[AlertRule]) -> None:
        wanted = {
            r.where
            for r in rules
            if self.sources.is_live(r) and len(r.where) > 1 and all(d in LIVE_DIMENSIONS for d, _ in r.where)
        }
        for filters in wanted - self._watched:
            self.live.watch(dict(filters))
        for filters in self._watched - wanted:
            self.live.unwatch(dict(filters))
        self._watched = wanted

    def _store(
        self, changes: list[tuple[RuleInfo, AlertRule, Transition]], now: float
    ) -> list[tuple[AlertEvent, RuleInfo]]:
        def work(conn: object) -> list[tuple[AlertEvent, RuleInfo]]:
            out = []
            for info, rule, t in changes:
                delivery = "none"
                if t.kind in _NOTIFY and self._webhook(info):
                    silenced = info.silenced_until is not None and info.silenced_until > now
                    delivery = "silenced" if silenced else "pending"
                event = storage.record_transition(conn, info, rule, t, _message(info, rule, t), delivery)  # type: ignore[arg-type]
                if event is not None:
                    out.append((event, info))
            return out

        return self.store.run(work)

    def _webhook(self, info: RuleInfo) -> str | None:
        return info.webhook or self.settings.alerts.webhook

    # -- delivery ----------------------------------------------------------------------------

    def _announce(self, event: AlertEvent, info: RuleInfo) -> None:
        if event.kind == "firing":
            level = logging.ERROR if info.severity == "critical" else logging.WARNING
        else:
            level = logging.INFO
        log.log(level, "alert %s", event.message)
        if self.bus is not None:
            self.bus.publish(AlertChanged(event))
        url = self._webhook(info)
        if event.delivery == "pending" and url:
            task = asyncio.get_running_loop().create_task(self._deliver(event, url), name=f"ax-webhook-{event.id}")
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, event: AlertEvent, url: str) -> None:
        result = await self.sender.deliver(url, event.webhook_payload())
        event.delivery = "ok" if result.ok else "failed"
        event.attempts = result.attempts
        event.delivery_error = result.error
        event.delivered_at = self.clock.now() if result.ok else None
        if not result.ok:
            log.warning("alert webhook to %s failed after %d attempt(s): %s", webhook_host(url), result.attempts,
                        result.error)
        try:
            await asyncio.to_thread(
                storage.set_delivery,
                self.store,
                event.id,
                status=event.delivery,
                attempts=result.attempts,
                error=result.error,
                at=event.delivered_at,
            )
        except Exception as exc:  # the outcome is logged above; losing its record is not fatal
            log.warning("could not record the delivery of alert event %s: %s", event.id, exc)

    # -- reading ---------------------------------------------------------------------------

    def active(self) -> list[AlertSummary]:
        """Rules that are pending or firing now, firing first."""
        out = []
        for (rule_id, _), st in self._states.items():
            info = self._rules.get(rule_id)
            if info is None or st.state == "ok":
                continue
            out.append(AlertSummary(rule_id, info.name, info.severity, st.state, st.since or 0.0, st.value, info.rule))
        out.sort(key=lambda a: (a.state != "firing", a.since))
        return out
