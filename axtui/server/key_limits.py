"""A key's own limits: ``--rpm``/``--tpm`` become a rate limit, ``--budget`` a hard monthly budget.

Both are kept where every process reads them: the rate limit among the
rate limiter's per-subject limits (subject ``key:<id>``), the budget among
the budgets (scope ``key:<id>``). ``ax ratelimit`` and ``ax cost budget``
show and change them like any other.
"""

from __future__ import annotations

from axtui.clock import SYSTEM_CLOCK, Clock
from axtui.config import load_settings
from axtui.money import format_usd
from axtui.server.keys import KeyInfo
from axtui.store import Store

__all__ = ["apply_key_limits", "budget_timezone", "budgets_in_force", "check_key_limits"]

#: The period of a key's budget.
BUDGET_PERIOD = "month"


def check_key_limits(rpm: int | None, budget_nanos: int | None) -> None:
    """Fail before a key is made when a limit it asks for cannot be kept.

    Raises:
        InvalidRequest: a limit is not positive.
    """
    from axtui.errors import InvalidRequest

    if rpm is not None and rpm <= 0:
        raise InvalidRequest(f"--rpm {rpm}: give a positive number of requests per minute, e.g. --rpm 60",
                             param="rpm")
    if budget_nanos is not None and budget_nanos <= 0:
        raise InvalidRequest("--budget must be more than zero dollars, e.g. --budget 25", param="budget")


def budgets_in_force(store: Store) -> dict[str, int]:
    """Each key's monthly hard budget as it stands (``ax cost budget`` may have changed it since), by key id."""
    from axtui.cost.budgets import list_budgets

    return {b.scope.value: b.limit_nanos for b in list_budgets(store)
            if b.scope.kind == "key" and b.period == BUDGET_PERIOD and b.hard}


def budget_timezone() -> str:
    """The timezone budget periods start in (``[budgets] timezone``), read before anything is written:
    a config that cannot be read then changes nothing, rather than leaving a key or team half made.

    Raises:
        ConfigError: the config file cannot be read.
    """
    return load_settings().budgets.timezone


def apply_key_limits(
    store: Store,
    info: KeyInfo,
    *,
    tz: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    changed: frozenset[str] = frozenset({"rate", "budget"}),
) -> list[str]:
    """Store the key's rate limit and budget (periods in ``tz``, read by `budget_timezone` if not given);
    one line per limit applied, for people.

    Only the ``changed`` ones (``rate``, ``budget``) are stored: a key's budget raised since with
    ``ax cost budget set`` is not undone by a change of its rate limit.
    """
    rate = "rate" in changed and (info.rpm is not None or info.tpm is not None)
    budget = "budget" in changed and info.budget_nanos is not None
    zone = tz if tz is not None or not budget else budget_timezone()
    lines: list[str] = []
    if rate:
        lines.append(_apply_rpm(store, info, clock))
    if budget:
        assert info.budget_nanos is not None
        from axtui.cost.budgets import Scope, set_budget

        assert zone is not None
        stored, _ = set_budget(store, Scope("key", info.id), BUDGET_PERIOD, info.budget_nanos, hard=True,
                               now=clock.now(), tz=zone)
        lines.append(f"budget #{stored.id}: {format_usd(info.budget_nanos, nanos=True)} per {BUDGET_PERIOD} "
                     f"for key {info.id} (hard)")
    return lines


def _apply_rpm(store: Store, info: KeyInfo, clock: Clock) -> str:
    from axtui.store.tables_ratelimit import write_limit

    # A stored per-subject limit: every process's limiter picks it up within [ratelimit] poll_s.
    requests = f"{info.rpm}/minute" if info.rpm is not None else None
    tokens = f"{info.tpm}/minute" if info.tpm is not None else None
    write_limit(store, "key", info.id, requests=requests, tokens=tokens, algorithm=None, burst=None,
                now=clock.now())
    said = " and ".join(x for x in (requests and f"{info.rpm} requests/minute",
                                    tokens and f"{info.tpm} tokens/minute") if x)
    return f"rate limit: {said} for key {info.id}"
