"""Alert rules: the grammar, the state machine, the evaluator, rules and events in the store.

- `parse_rule` / `AlertRule` / `RuleSyntaxError` (`grammar`): the rule language.
- `step` / `RuleState` / `Policy` (`state`): pending → firing → resolved.
- `AlertEvaluator` (`evaluator`): evaluates the stored rules on the live windows.
- `add_rule`, `list_rules`, `remove_rule`, `list_events`, … (`storage`).
- `WebhookSender` (`delivery`): JSON POST with retries.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from axtui.metrics.alerts.grammar import METRICS, AlertRule, RuleSyntaxError, parse_rule
from axtui.metrics.alerts.model import SEVERITIES, AlertEvent, RuleInfo

__all__ = [
    "METRICS",
    "SEVERITIES",
    "AlertEvaluator",
    "AlertEvent",
    "AlertRule",
    "RuleInfo",
    "RuleSyntaxError",
    "WebhookSender",
    "parse_rule",
]


def __getattr__(name: str) -> Any:
    # The evaluator and the sender pull in aiohttp; load them only when used.
    if name == "AlertEvaluator":
        return import_module("axtui.metrics.alerts.evaluator").AlertEvaluator
    if name == "WebhookSender":
        return import_module("axtui.metrics.alerts.delivery").WebhookSender
    raise AttributeError(f"module 'axtui.metrics.alerts' has no attribute {name!r}")
