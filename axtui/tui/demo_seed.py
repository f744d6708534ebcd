"""What a fresh demo database starts with: budgets, limits, alert rules, keys and a team.

Seeded once, through the same functions the CLI uses, only into a demo
database that has none of its own yet; the user's changes in the demo are
kept from one run to the next.
"""

from __future__ import annotations

import logging
from typing import Any

from axtui.config import Settings
from axtui.store import Store

__all__ = ["DEMO_ALERT_RULES", "DEMO_BUDGETS", "DEMO_KEYS", "DEMO_LIMITS", "DEMO_TEAM", "seed_demo", "seed_keys"]

log = logging.getLogger(__name__)

#: (scope, period, dollars, hard)
DEMO_BUDGETS: tuple[tuple[str, str, str, bool], ...] = (
    ("global", "day", "25", False),
    ("provider:anthropic", "day", "5", False),
    ("user:user-3", "day", "0.40", True),
)

#: (subject, requests, tokens)
DEMO_LIMITS: tuple[tuple[str, str | None, str | None], ...] = (
    ("user:user-5", "40/minute", None),
    ("user:user-2", None, "60000/minute"),
)

#: (rule, name, severity)
DEMO_ALERT_RULES: tuple[tuple[str, str, str], ...] = (
    # The fleet's azure has a bad spell two minutes in every ten (3x slower, 30 % 503s): these fire then.
    ("p95_latency_ms > 4000 for 30s where provider=azure", "azure slow", "warning"),
    ("error_rate > 0.15 for 20s where provider=azure", "azure failing", "critical"),
    ("error_rate > 0.05 for 1m", "errors above 5%", "critical"),
    ("budget_used_pct >= 80", "a budget is 80% used", "warning"),
    ("cache_hit_rate < 0.2 for 2m", "cache hit rate low", "info"),
)


def seed_demo(store: Store, settings: Settings, now: float) -> None:
    """Add the demo's budgets, limits and alert rules to a demo store that has none.

    Each kind is seeded only when the store has none of it, so a user who
    deleted the demo's budgets does not get them back.
    """
    from axtui.cost.budgets import Scope, list_budgets, parse_amount, set_budget
    from axtui.metrics.alerts.storage import add_rule, list_rules
    from axtui.store.tables_ratelimit import read_limits, write_limit

    if not list_budgets(store):
        for scope, period, amount, hard in DEMO_BUDGETS:
            set_budget(store, Scope.parse(scope), period, parse_amount(amount), hard=hard, now=now,
                       tz=settings.budgets.timezone)
    if not read_limits(store):
        from axtui.ratelimit.parse import parse_rate
        from axtui.ratelimit.rules import parse_subject

        for subject, requests, tokens in DEMO_LIMITS:
            scope, name = parse_subject(subject)
            write_limit(store, scope, name, requests=parse_rate(requests).text if requests else None,
                        tokens=parse_rate(tokens).text if tokens else None, algorithm=None, burst=None, now=now)
    if not list_rules(store):
        for rule, name, severity in DEMO_ALERT_RULES:
            add_rule(store, rule, now=now, name=name, severity=severity)
    seed_keys(store, now)


#: The demo's team: (name, members, monthly budget in dollars).
DEMO_TEAM = ("red", ("user-1", "user-2"), "40")
#: The demo's keys: (user, name, policy as `ax keys create` takes it).
DEMO_KEYS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("user-1", "laptop", {"team": "red", "models": "gpt-4o*,claude-*", "expires": "90d"}),
    ("user-2", "ci", {"team": "red", "rpm": 60, "budget": "10"}),
    ("user-3", "notebook", {"models": "gpt-4o-mini", "expires": "30d", "tpm": 20000}),
    ("user-4", "old script", {}),
)


def seed_keys(store: Store, now: float) -> None:
    """Add the demo's team and keys (one of them revoked) to a demo store that has no keys."""
    from axtui.clock import FakeClock
    from axtui.governance.teams import add_user, create_team, list_teams
    from axtui.server import key_admin
    from axtui.server.keys import list_keys

    if list_keys(store):
        return
    clock = FakeClock(now)
    name, members, budget = DEMO_TEAM
    if not any(t.name == name for t in list_teams(store)):
        from axtui.cost.budgets import parse_amount

        create_team(store, name, budget_nanos=parse_amount(budget), period="month", hard=False, rpm=600, tpm=None,
                    models=None, actor="demo", via="dashboard", clock=clock)
        for user in members:
            add_user(store, name, user, actor="demo", via="dashboard", clock=clock)
    for user, label, policy in DEMO_KEYS:
        _secret, info, _ = key_admin.create(store, user, {**policy, "name": label}, actor="demo", via="dashboard",
                                            clock=clock)
        if label == "old script":
            key_admin.revoke(store, info.id, actor="demo", via="dashboard", clock=clock)
