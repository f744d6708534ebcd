"""Monitoring tables: alert rules and their events.

- ``monitor_alert_rules``: one row per rule, with its canonical text (see
  `axtui.metrics.alerts.grammar`), severity, optional webhook, and its
  current state (``ok``, ``pending`` or ``firing``) so that every process
  and every command sees the same state. A state change is written with a
  compare-and-set on ``state``, so two evaluators (two gateway workers)
  never both announce the same transition.
- ``monitor_alert_events``: every transition of every rule, with what was
  measured and how the webhook delivery went. Events keep the rule's name
  and text, so they outlive the rule.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["AlertEventRow", "AlertRuleRow"]


class AlertRuleRow(SQLModel, table=True):
    """An alert rule and its current state.

    ``rule`` is the canonical text, unique so a rule cannot be added twice.
    Times are epoch seconds. ``silenced_until`` stops notifications (the
    state still changes and events are still stored); ``acknowledged_at``
    marks a firing episode as seen.
    """

    __tablename__ = "monitor_alert_rules"
    __table_args__ = (UniqueConstraint("rule", name="uq_monitor_alert_rules_rule"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    rule: str = Field(max_length=1024)
    severity: str = Field(default="warning", max_length=16)
    webhook: str | None = Field(default=None, max_length=2048)
    enabled: bool = True
    created_at: float
    updated_at: float
    state: str = Field(default="ok", max_length=16)
    state_since: float | None = None
    last_value: float | None = None
    last_fired_at: float | None = None
    last_resolved_at: float | None = None
    silenced_until: float | None = None
    acknowledged_at: float | None = None
    #: When an evaluator last looked at the rule (every 15 s at most); the stored state is stale once
    #: no process has for a while.
    evaluated_at: float | None = None


class AlertEventRow(SQLModel, table=True):
    """One transition of an alert rule.

    ``kind`` is ``pending``, ``firing``, ``resolved`` or ``cancelled`` (a
    pending rule whose condition cleared before it fired). ``threshold`` is
    the rule's exact decimal threshold; ``labels`` its ``where`` clause
    (``provider=openai,user=alice``). ``delivery`` is ``none`` (no webhook
    for this event), ``pending``, ``ok``, ``failed`` or ``silenced``.
    """

    __tablename__ = "monitor_alert_events"
    __table_args__ = (
        Index("ix_monitor_alert_events_ts", "ts"),
        Index("ix_monitor_alert_events_rule_ts", "rule_id", "ts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ts: float
    rule_id: int | None = None
    rule_name: str = Field(max_length=128)
    rule: str = Field(max_length=1024)
    severity: str = Field(max_length=16)
    kind: str = Field(max_length=16)
    value: float | None = None
    threshold: str = Field(max_length=64)
    labels: str = Field(default="", max_length=1024)
    message: str = Field(sa_column=Column(Text, nullable=False))
    delivery: str = Field(default="none", max_length=16)
    attempts: int = 0
    delivery_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    delivered_at: float | None = None
