"""Alert rules and events in the store: add, list, change, remove; transitions.

Every function takes an open `Store`. Rules are validated here (grammar,
severity, webhook URL), so the CLI, the server's ``/api/alerts`` and the
dashboard refuse the same mistakes with the same messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from axtui.errors import InvalidRequest
from axtui.metrics.alerts.grammar import AlertRule, parse_rule
from axtui.metrics.alerts.model import SEVERITIES, AlertEvent, RuleInfo
from axtui.metrics.alerts.state import Transition
from axtui.store import Store
from axtui.store.audit import record_change
from axtui.store.tables_monitor import AlertEventRow, AlertRuleRow

__all__ = [
    "RuleExists",
    "acknowledge_rule",
    "add_rule",
    "get_rule",
    "iter_events",
    "list_events",
    "list_rules",
    "mark_evaluated",
    "record_transition",
    "remove_rule",
    "set_delivery",
    "silence_rule",
    "update_rule",
    "validate_webhook",
]

class RuleExists(InvalidRequest):
    """The same rule is stored already (the server answers 409)."""

    status_code = 409


RULES = AlertRuleRow.__table__  # type: ignore[attr-defined]
EVENTS = AlertEventRow.__table__  # type: ignore[attr-defined]
_NAME_MAX = 128


def validate_webhook(url: str | None) -> str | None:
    """An http(s) URL with a host that is not a link-local or metadata address, or None.

    Loopback and private addresses are accepted here and checked at each
    delivery against ``[webhooks]`` (the operator may allow them later);
    names are checked on what they resolve to, at delivery.

    Raises:
        InvalidRequest: anything else, with an example of a valid URL. The
            message names the host only: the URL may hold a token.
    """
    if url is None or url == "":
        return None
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
        host = parts.hostname if parts.scheme in ("http", "https") else None
    except ValueError:
        host = None
    if not host:
        raise InvalidRequest(
            "the webhook is not an http(s) URL with a host; write it like https://hooks.example.com/ax",
            param="webhook",
        )
    from axtui.webhooks import refused_always

    refused = refused_always(host)
    if refused is not None:
        raise InvalidRequest(f"the webhook's host {host} is refused: {refused}", param="webhook")
    return url


def _severity(value: str) -> str:
    if value not in SEVERITIES:
        raise InvalidRequest(f"severity {value!r} is not one of {', '.join(SEVERITIES)}", param="severity")
    return value


def _info(row: Any) -> RuleInfo:
    m = row._mapping
    return RuleInfo(**{k: m[k] for k in RuleInfo.__dataclass_fields__})


def _event(row: Any) -> AlertEvent:
    m = dict(row._mapping)
    labels = m.pop("labels") or ""
    m["labels"] = json.loads(labels) if labels else {}
    return AlertEvent(**{k: m[k] for k in AlertEvent.__dataclass_fields__})


def labels_text(rule: AlertRule) -> str:
    """The ``where`` clause of a rule as stored in events (JSON, so any value survives)."""
    return json.dumps(dict(rule.where), separators=(",", ":"), sort_keys=True) if rule.where else ""


def _plain(name: str) -> None:
    """Refuse a rule name holding a control character: names are printed in terminals (`ax alerts`, the
    dashboard), where an escape sequence would run."""
    bad = next((c for c in name if ord(c) < 32 or 127 <= ord(c) < 160), None)
    if bad is not None:
        raise InvalidRequest(f"a rule's name holds the control character {bad!r}; give plain text", param="name")


def add_rule(
    store: Store,
    text: str,
    *,
    now: float,
    name: str | None = None,
    severity: str = "warning",
    webhook: str | None = None,
    enabled: bool = True,
) -> RuleInfo:
    """Parse and store a rule.

    Raises:
        RuleSyntaxError: the rule does not parse (names the column).
        InvalidRequest: bad severity, name or webhook, or the same rule exists.
    """
    rule = parse_rule(text)
    canonical = str(rule)
    name = (name or canonical).strip()
    if not name:
        raise InvalidRequest("a rule's name cannot be empty; leave --name out to use the rule itself", param="name")
    _plain(name)
    if len(name) > _NAME_MAX:
        if name == canonical:
            name = name[: _NAME_MAX - 1] + "…"
        else:
            raise InvalidRequest(f"a rule's name has at most {_NAME_MAX} characters", param="name")
    row = {
        "name": name,
        "rule": canonical,
        "severity": _severity(severity),
        "webhook": validate_webhook(webhook),
        "enabled": enabled,
        "created_at": now,
        "updated_at": now,
        "state": "ok",
    }

    def work(conn: Connection) -> int:
        existing = conn.execute(select(RULES.c.id).where(RULES.c.rule == canonical)).scalar()
        if existing is not None:
            raise RuleExists(
                f"the rule {canonical!r} already exists (id {existing}); remove it first to replace it"
            )
        return int(conn.execute(insert(RULES).values(**row)).inserted_primary_key[0])  # type: ignore[index]

    try:
        rule_id = store.run(work)
    except IntegrityError:
        raise RuleExists(f"the rule {canonical!r} already exists") from None
    found = get_rule(store, rule_id)
    assert found is not None
    record_change(store, "alert_rule.add", f"alert_rule:{rule_id}", None, _audit_view(found))
    return found


def mark_evaluated(store: Store, rule_ids: list[int], at: float) -> None:
    """Note that an evaluator looked at these rules at ``at`` (their stored state is current)."""
    if rule_ids:
        store.run(lambda conn: conn.execute(update(RULES).where(RULES.c.id.in_(rule_ids)).values(evaluated_at=at)))


def _audit_view(info: RuleInfo) -> dict[str, Any]:
    """A rule's settings as the audit trail keeps them (its live state is not a change)."""
    return {"id": info.id, "name": info.name, "rule": info.rule, "severity": info.severity, "webhook": info.webhook,
            "enabled": info.enabled, "silenced_until": info.silenced_until}


def get_rule(store: Store, rule_id: int) -> RuleInfo | None:
    """The rule with ``rule_id``, or None."""
    with store.connect() as conn:
        row = conn.execute(select(RULES).where(RULES.c.id == rule_id)).first()
    return _info(row) if row is not None else None


def _require(store: Store, rule_id: int) -> RuleInfo:
    found = get_rule(store, rule_id)
    if found is None:
        raise InvalidRequest(
            f"there is no alert rule with id {rule_id}; `ax monitor alerts list` shows them", param="id"
        )
    return found


def list_rules(store: Store) -> list[RuleInfo]:
    """Every rule, by id."""
    with store.connect() as conn:
        return [_info(r) for r in conn.execute(select(RULES).order_by(RULES.c.id))]


def remove_rule(store: Store, rule_id: int) -> RuleInfo:
    """Delete a rule (its events stay).

    Raises:
        InvalidRequest: no rule has that id.
    """
    info = _require(store, rule_id)
    store.run(lambda conn: conn.execute(delete(RULES).where(RULES.c.id == rule_id)))
    record_change(store, "alert_rule.remove", f"alert_rule:{rule_id}", _audit_view(info), None)
    return info


def update_rule(
    store: Store,
    rule_id: int,
    *,
    now: float,
    text: str | None = None,
    name: str | None = None,
    severity: str | None = None,
    webhook: str | bool | None = False,
    enabled: bool | None = None,
) -> RuleInfo:
    """Change a rule; a changed condition restarts its state at ok.

    ``webhook=False`` (the default) leaves the webhook as it is; None removes it.

    Raises:
        RuleSyntaxError: the new rule does not parse.
        InvalidRequest: no such rule, or a bad value.
    """
    current = _require(store, rule_id)
    values: dict[str, Any] = {"updated_at": now}
    if text is not None:
        canonical = str(parse_rule(text))
        if canonical != current.rule:
            values.update(rule=canonical, state="ok", state_since=now, last_value=None)
            if current.name == current.rule and name is None:
                values["name"] = canonical[:_NAME_MAX]
    if name is not None:
        if not name.strip() or len(name) > _NAME_MAX:
            raise InvalidRequest(f"a rule's name has 1 to {_NAME_MAX} characters", param="name")
        _plain(name)
        values["name"] = name.strip()
    if severity is not None:
        values["severity"] = _severity(severity)
    if webhook is not False:
        values["webhook"] = validate_webhook(webhook)  # type: ignore[arg-type]
    if enabled is not None:
        values["enabled"] = enabled
    try:
        store.run(lambda conn: conn.execute(update(RULES).where(RULES.c.id == rule_id).values(**values)))
    except IntegrityError:
        raise InvalidRequest(f"the rule {values.get('rule')!r} already exists") from None
    after = _require(store, rule_id)
    record_change(store, "alert_rule.update", f"alert_rule:{rule_id}", _audit_view(current), _audit_view(after))
    return after


def silence_rule(store: Store, rule_id: int, until: float | None) -> RuleInfo:
    """Stop notifications of a rule until ``until`` (None lifts the silence)."""
    before = _require(store, rule_id)
    store.run(lambda conn: conn.execute(update(RULES).where(RULES.c.id == rule_id).values(silenced_until=until)))
    after = _require(store, rule_id)
    record_change(store, "alert_rule.silence", f"alert_rule:{rule_id}", _audit_view(before), _audit_view(after))
    return after


def acknowledge_rule(store: Store, rule_id: int, at: float) -> RuleInfo:
    """Mark the rule's current episode as seen."""
    _require(store, rule_id)
    store.run(lambda conn: conn.execute(update(RULES).where(RULES.c.id == rule_id).values(acknowledged_at=at)))
    return _require(store, rule_id)


def record_transition(
    conn: Connection,
    info: RuleInfo,
    rule: AlertRule,
    t: Transition,
    message: str,
    delivery: str,
) -> AlertEvent | None:
    """Store a transition if the rule is still in the state it left (compare-and-set).

    Returns the stored event, or None when another evaluator (another
    process) has already moved the rule: that one announces it, this one
    does not, so a transition is delivered once.
    """
    values: dict[str, Any] = {"state": t.state, "state_since": t.at, "last_value": t.value}
    if t.kind == "firing":
        values.update(last_fired_at=t.at, acknowledged_at=None)
    elif t.kind == "resolved":
        values["last_resolved_at"] = t.at
    moved = conn.execute(
        update(RULES).where(RULES.c.id == info.id, RULES.c.state == t.previous).values(**values)
    ).rowcount
    if moved != 1:
        return None
    threshold = format(rule.threshold, "f")
    row = {
        "ts": t.at,
        "rule_id": info.id,
        "rule_name": info.name,
        "rule": info.rule,
        "severity": info.severity,
        "kind": t.kind,
        "value": t.value,
        "threshold": threshold,
        "labels": labels_text(rule),
        "message": message,
        "delivery": delivery,
        "attempts": 0,
    }
    event_id = int(conn.execute(insert(EVENTS).values(**row)).inserted_primary_key[0])  # type: ignore[index]
    return AlertEvent(
        id=event_id,
        ts=t.at,
        rule_id=info.id,
        rule_name=info.name,
        rule=info.rule,
        severity=info.severity,
        kind=t.kind,
        value=t.value,
        threshold=threshold,
        labels=dict(rule.where),
        message=message,
        delivery=delivery,
    )


def set_delivery(
    store: Store, event_id: int, *, status: str, attempts: int, error: str | None, at: float | None
) -> None:
    """Record how a webhook delivery went."""
    store.run(
        lambda conn: conn.execute(
            update(EVENTS)
            .where(EVENTS.c.id == event_id)
            .values(delivery=status, attempts=attempts, delivery_error=error, delivered_at=at)
        )
    )


def _events_query(since: float | None, until: float | None, rule_id: int | None) -> Any:
    q = select(EVENTS)
    if since is not None:
        q = q.where(EVENTS.c.ts >= since)
    if until is not None:
        q = q.where(EVENTS.c.ts < until)
    if rule_id is not None:
        q = q.where(EVENTS.c.rule_id == rule_id)
    return q


def list_events(
    store: Store,
    *,
    since: float | None = None,
    until: float | None = None,
    rule_id: int | None = None,
    limit: int | None = None,
) -> list[AlertEvent]:
    """Events, oldest first (the newest ``limit`` when given)."""
    q = _events_query(since, until, rule_id).order_by(EVENTS.c.ts.desc(), EVENTS.c.id.desc())
    if limit is not None:
        q = q.limit(limit)
    with store.connect() as conn:
        rows = [_event(r) for r in conn.execute(q)]
    rows.reverse()
    return rows


def iter_events(conn: Connection, *, since: float | None = None, until: float | None = None) -> Iterator[AlertEvent]:
    """Events oldest first, streamed from an open connection (for exports)."""
    q = _events_query(since, until, None).order_by(EVENTS.c.ts, EVENTS.c.id)
    for row in conn.execution_options(yield_per=2000).execute(q):
        yield _event(row)
