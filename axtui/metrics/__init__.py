"""Monitoring: live windows, history, alert rules, exports, Prometheus.

The public front. Heavy parts load on first use, so headless commands that
only export (``ax monitor export``) stay quick.

- `attach_monitoring` (`Monitoring`): live metrics + alert evaluator +
  Prometheus on a running gateway.
- `LiveMetrics`, `Snapshot`: the live windows and what a screen draws.
- `axtui.metrics.history`: per-minute/hour history from the rollups.
- `axtui.metrics.alerts`: the rule grammar, the evaluator, rules and events in the store.
- `axtui.metrics.export`: CSV/JSON/JSONL exports.
- `axtui.metrics.prometheus`: the ``GET /metrics`` exposition.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from axtui.metrics.live import LiveMetrics
    from axtui.metrics.monitoring import Monitoring, attach_monitoring
    from axtui.metrics.snapshot import AlertSummary, RecentCall, Series, Snapshot, Stats

__all__ = [
    "AlertSummary",
    "LiveMetrics",
    "Monitoring",
    "RecentCall",
    "Series",
    "Snapshot",
    "Stats",
    "attach_monitoring",
]

_WHERE = {
    "AlertSummary": "axtui.metrics.snapshot",
    "LiveMetrics": "axtui.metrics.live",
    "Monitoring": "axtui.metrics.monitoring",
    "RecentCall": "axtui.metrics.snapshot",
    "Series": "axtui.metrics.snapshot",
    "Snapshot": "axtui.metrics.snapshot",
    "Stats": "axtui.metrics.snapshot",
    "attach_monitoring": "axtui.metrics.monitoring",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'axtui.metrics' has no attribute {name!r}")
    return getattr(import_module(module), name)
