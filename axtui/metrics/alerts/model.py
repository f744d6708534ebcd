"""Alert rules and events as plain dataclasses (what commands, the API and the bus carry)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["EVALUATED_EVERY_S", "SEVERITIES", "AlertEvent", "RuleInfo", "Severity"]

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")

#: An evaluator notes that it looked at the rules at most this often (a store write each time).
EVALUATED_EVERY_S = 15.0


@dataclass(slots=True)
class RuleInfo:
    """A stored alert rule with its current state."""

    id: int
    name: str
    rule: str
    severity: str
    webhook: str | None
    enabled: bool
    created_at: float
    updated_at: float
    state: str = "ok"
    state_since: float | None = None
    last_value: float | None = None
    last_fired_at: float | None = None
    last_resolved_at: float | None = None
    silenced_until: float | None = None
    acknowledged_at: float | None = None
    evaluated_at: float | None = None

    def stale(self, now: float, interval_s: float) -> bool:
        """Whether the stored state is old news: no evaluator has looked at the rule for a while.

        ``interval_s`` is the evaluation interval (``alerts.interval_s``).
        An ``ok`` rule is never stale: nothing is claimed about it.
        """
        if self.state == "ok" or not self.enabled:
            return False
        allowed = 3 * max(interval_s, EVALUATED_EVERY_S)
        return self.evaluated_at is None or now - self.evaluated_at > allowed

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(slots=True)
class AlertEvent:
    """One transition of a rule: stored, published on the bus (`AlertChanged`) and sent to webhooks.

    ``kind`` is ``pending``, ``firing``, ``resolved`` or ``cancelled``;
    ``threshold`` the rule's exact decimal threshold as text; ``labels`` the
    rule's ``where`` filters.
    """

    id: int
    ts: float
    rule_id: int | None
    rule_name: str
    rule: str
    severity: str
    kind: str
    value: float | None
    threshold: str
    labels: dict[str, str]
    message: str
    delivery: str = "none"
    attempts: int = 0
    delivery_error: str | None = None
    delivered_at: float | None = None

    @property
    def dedup_key(self) -> str:
        """The same for every delivery of one episode's transition (receivers may dedup on it)."""
        return f"ax-alert-{self.rule_id}-{self.kind}-{self.ts:.3f}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["dedup_key"] = self.dedup_key
        return data

    def webhook_payload(self) -> dict[str, Any]:
        """The body POSTed to webhooks (documented in the README)."""
        from datetime import UTC, datetime

        return {
            "type": "ax.alert",
            "event_id": self.id,
            "dedup_key": self.dedup_key,
            "state": self.kind,
            "rule_id": self.rule_id,
            "name": self.rule_name,
            "rule": self.rule,
            "severity": self.severity,
            "value": self.value,
            "threshold": self.threshold,
            "labels": self.labels,
            "message": self.message,
            "at": datetime.fromtimestamp(self.ts, UTC).isoformat().replace("+00:00", "Z"),
        }
