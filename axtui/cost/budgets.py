"""Budgets: what they are, how to create and change them, where they stand.

A budget caps spending over a scope (everything, a provider, a model, a
user or an API key) for a period (a calendar day, week or month in the
configured time zone, or all time). A hard budget refuses calls that would
exceed it; a soft one only alerts. Budgets live in the store, so every
process and replica sees the same ones; their spend is kept in shared
per-period counters (see `axtui.cost.enforcement`).

The functions here take a `Store` and return plain dataclasses; the CLI,
the dashboard and the server call them.

Every change (`set_budget`, `update_budget`, `delete_budget`) also moves
the budgets' change marker (`axtui.store.markers`) once it is committed:
gateways on this machine read the budgets again before their next call,
so a change applies to every call that starts after it returns.
Processes on other machines read them every ``budgets.refresh_s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from sqlalchemy import select
from sqlalchemy.engine import Connection

from axtui.cost.periods import PERIODS, period_bounds
from axtui.cost.projection import BudgetForecast, forecast_budget, run_rate
from axtui.cost.rollups import first_spend, totals_by
from axtui.money import format_usd, parse_usd, usd_to_nanos
from axtui.store import Store
from axtui.store.audit import record_change
from axtui.store.markers import ChangeMarker
from axtui.store.tables_cost import Budget, BudgetHold, BudgetWindow, insert_or_ignore
from axtui.types import Caller, Deployment
from axtui.validation import name_problem

__all__ = [
    "SCOPE_KINDS",
    "BudgetInfo",
    "BudgetNotFound",
    "BudgetStatus",
    "Scope",
    "budget_marker",
    "budget_status",
    "delete_budget",
    "get_budget",
    "list_budgets",
    "parse_amount",
    "parse_thresholds",
    "scope_spend",
    "seed_window",
    "set_budget",
    "trailing_rate",
    "update_budget",
]

SCOPE_KINDS = ("global", "provider", "model", "user", "key", "team")
_BUDGETS = Budget.__table__  # type: ignore[attr-defined]
_WINDOWS = BudgetWindow.__table__  # type: ignore[attr-defined]
_HOLDS = BudgetHold.__table__  # type: ignore[attr-defined]


class BudgetNotFound(LookupError):
    """No budget has that id."""


@dataclass(frozen=True, slots=True)
class Scope:
    """What a budget covers: ``global``, or ``provider|model|user|key|team`` and a name."""

    kind: str
    value: str = "*"

    @classmethod
    def parse(cls, text: str) -> Scope:
        """Parse ``global``, ``provider:openai``, ``model:gpt-4o``, ``user:alice`` or ``key:k_1``.

        Raises:
            ValueError: the scope is malformed; the message lists the forms.
        """
        text = text.strip()
        if text in ("global", "*", ""):
            return cls("global")
        kind, sep, value = text.partition(":")
        kind, value = kind.strip().lower(), value.strip()
        if not sep or kind not in SCOPE_KINDS[1:] or not value:
            raise ValueError(
                f"unknown scope {text!r}; use global, provider:NAME, model:NAME, user:NAME, key:NAME or team:NAME"
            )
        if len(value) > 256:
            raise ValueError(f"scope {text[:40]!r}…: the name is longer than 256 characters")
        if (problem := name_problem(value)) is not None:
            raise ValueError(f"scope {text[:60]!r}: the name {problem}")
        return cls(kind, value)

    def __str__(self) -> str:
        return "global" if self.kind == "global" else f"{self.kind}:{self.value}"

    def matches(self, caller: Caller, deployment: Deployment) -> bool:
        """Whether a call by ``caller`` to ``deployment`` counts against this scope."""
        if self.kind == "global":
            return True
        if self.kind == "provider":
            return deployment.provider == self.value
        if self.kind == "model":
            return self.value in (deployment.model, deployment.upstream_model, deployment.id)
        if self.kind == "user":
            return caller.user == self.value
        if self.kind == "team":
            return caller.team is not None and caller.team == self.value
        return caller.key is not None and caller.key == self.value


@dataclass(frozen=True, slots=True)
class BudgetInfo:
    """One budget. ``thresholds`` None means the configured defaults; so does ``webhook``."""

    id: int
    scope: Scope
    period: str
    limit_nanos: int
    hard: bool
    thresholds: tuple[int, ...] | None
    webhook: str | None
    created_at: float
    updated_at: float

    def __hash__(self) -> int:
        # Equal budgets have equal ids. The generated hash of every field (the scope's too) cost
        # more than the lookups it serves: each call settles its cost in a dict keyed by budget.
        return hash(self.id)

    @property
    def limit_usd(self) -> Decimal:
        """The limit in exact dollars."""
        return Decimal(self.limit_nanos).scaleb(-9).normalize()

    def describe(self) -> str:
        """``#3 user:alice $10.00/day hard``."""
        per = " in total" if self.period == "total" else f"/{self.period}"
        return f"#{self.id} {self.scope} {format_usd(self.limit_nanos, nanos=True)}{per} {'hard' if self.hard else 'soft'}"


def _info(row: object) -> BudgetInfo:
    r = row._mapping  # type: ignore[attr-defined]
    return BudgetInfo(
        id=r["id"],
        scope=Scope(r["scope_kind"], r["scope_value"]),
        period=r["period"],
        limit_nanos=int(r["limit_nanos"]),
        hard=bool(r["hard"]),
        thresholds=parse_thresholds(r["thresholds"]) if r["thresholds"] else None,
        webhook=r["webhook"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def parse_amount(text: str) -> int:
    """A budget amount typed by a person (``25``, ``$12.50``) in nano-dollars.

    Raises:
        ValueError: not a positive amount, or below a nano-dollar.
    """
    value = parse_usd(text)
    nanos = usd_to_nanos(value)
    if nanos <= 0:
        raise ValueError(f"{text!r} is less than a nano-dollar; budgets start at $0.000000001")
    if nanos >= 2**62:
        raise ValueError(f"{text!r} is too large for a budget")
    return nanos


def parse_thresholds(text: str) -> tuple[int, ...]:
    """``50,80,100`` as sorted percentages.

    Raises:
        ValueError: a value is not a whole percentage above 0 and at most 1000.
    """
    out = set()
    for part in text.replace("%", "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise ValueError(f"threshold {part!r} is not a whole percentage; write them like 50,80,100") from None
        if not 0 < value <= 1000:
            raise ValueError(f"threshold {value} is out of range; percentages go from 1 to 1000")
        out.add(value)
    if not out:
        raise ValueError("no thresholds given; write them like 50,80,100")
    return tuple(sorted(out))


# -- CRUD --------------------------------------------------------------------------------------


def list_budgets(store: Store) -> list[BudgetInfo]:
    """Every budget, oldest first."""
    return store.run(lambda conn: [_info(r) for r in conn.execute(select(_BUDGETS).order_by(_BUDGETS.c.id))])


def get_budget(store: Store, budget_id: int) -> BudgetInfo:
    """The budget with ``budget_id``.

    Raises:
        BudgetNotFound: no such budget.
    """
    row = store.run(lambda conn: conn.execute(select(_BUDGETS).where(_BUDGETS.c.id == budget_id)).first())
    if row is None:
        raise BudgetNotFound(f"there is no budget #{budget_id}; `ax cost budget list` shows the ids")
    return _info(row)


def scope_spend(conn: Connection, scope: Scope, since: float, now: float) -> int:
    """Recorded spend of ``scope`` from ``since`` (minute-aligned) up to ``now``, from the rollups."""
    dim, provider, value = _rollup_filter(scope)
    found = totals_by(conn, since, now, dim=dim, provider=provider, value=value, measures="money", open_end=True)
    return sum(t.cost_nanos for t in found.values())


def _rollup_filter(scope: Scope) -> tuple[str, str | None, str | None]:
    if scope.kind == "team":
        return "team", None, scope.value
    if scope.kind == "global":
        return "all", None, None
    if scope.kind == "provider":
        return "all", scope.value, None
    return scope.kind, None, scope.value


def set_budget(
    store: Store,
    scope: Scope,
    period: str,
    limit_nanos: int,
    *,
    hard: bool = False,
    now: float,
    tz: str = "UTC",
) -> tuple[BudgetInfo, bool]:
    """Create the budget for ``scope`` and ``period``, or change its limit if it exists.

    The current period's counter starts from what the scope already spent
    in it, so a budget set at noon counts the morning. Returns the budget
    and whether it was created.

    Raises:
        ValueError: an unknown period or a limit that is not positive.
    """
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}; use day, week, month or total")
    if limit_nanos <= 0:
        raise ValueError("a budget's limit must be more than zero dollars")
    start, _end = period_bounds(period, now, tz)

    def work(conn: Connection) -> tuple[int, bool]:
        existing = conn.execute(
            select(_BUDGETS.c.id).where(
                _BUDGETS.c.scope_kind == scope.kind, _BUDGETS.c.scope_value == scope.value, _BUDGETS.c.period == period
            )
        ).scalar()
        if existing is not None:
            conn.execute(
                _BUDGETS.update().where(_BUDGETS.c.id == existing).values(limit_nanos=limit_nanos, hard=hard, updated_at=now)
            )
            return int(existing), False
        key = conn.execute(
            _BUDGETS.insert().values(
                scope_kind=scope.kind, scope_value=scope.value, period=period, limit_nanos=limit_nanos, hard=hard,
                created_at=now, updated_at=now,
            )
        ).inserted_primary_key
        assert key is not None
        new_id = int(key[0])
        seed_window(conn, new_id, scope, start, now)
        return new_id, True

    prior = next((b for b in list_budgets(store) if b.scope == scope and b.period == period), None)
    budget_id, created = store.run(work)
    budget_marker(store).moved()
    info = get_budget(store, budget_id)
    record_change(store, "budget.set", f"budget:{info.id}", _audit_view(prior) if prior else None, _audit_view(info))
    return info, created


def budget_marker(store: Store) -> ChangeMarker:
    """The marker every change of ``store``'s budgets replaces (see the module docstring)."""
    return ChangeMarker(store, "budgets", "budgets.refresh_s")


def _audit_view(info: BudgetInfo) -> dict[str, object]:
    """A budget as the audit trail keeps it."""
    return {"id": info.id, "scope": str(info.scope), "period": info.period, "limit_nanos": info.limit_nanos,
            "hard": info.hard, "thresholds": list(info.thresholds) if info.thresholds else None,
            "webhook": info.webhook}


def seed_window(conn: Connection, budget_id: int, scope: Scope, period_start: int, now: float) -> None:
    """Create a budget's counter for a period, starting from the scope's recorded spend in it."""
    exists = conn.execute(
        select(_WINDOWS.c.budget_id).where(_WINDOWS.c.budget_id == budget_id, _WINDOWS.c.period_start == period_start)
    ).first()
    if exists is None:
        spent = scope_spend(conn, scope, period_start, now)
        insert_or_ignore(
            conn,
            _WINDOWS,
            {"budget_id": budget_id, "period_start": period_start, "spent_nanos": spent, "reserved_nanos": 0,
             "updated_at": now},
        )


_UNSET = object()


def update_budget(
    store: Store,
    budget_id: int,
    *,
    limit_nanos: int | None = None,
    hard: bool | None = None,
    thresholds: Sequence[int] | object | None = _UNSET,
    webhook: str | object | None = _UNSET,
    now: float,
) -> BudgetInfo:
    """Change a budget; ``thresholds`` / ``webhook`` set to None go back to the configured defaults.

    Raises:
        BudgetNotFound: no such budget.
    """
    values: dict[str, object] = {"updated_at": now}
    before = get_budget(store, budget_id)
    if limit_nanos is not None:
        if limit_nanos <= 0:
            raise ValueError("a budget's limit must be more than zero dollars")
        values["limit_nanos"] = limit_nanos
    if hard is not None:
        values["hard"] = hard
    if thresholds is not _UNSET:
        values["thresholds"] = None if thresholds is None else ",".join(str(t) for t in cast(Sequence[int], thresholds))
    if webhook is not _UNSET:
        values["webhook"] = webhook
    changed = store.run(lambda conn: conn.execute(_BUDGETS.update().where(_BUDGETS.c.id == budget_id).values(**values)))
    if not changed.rowcount:
        raise BudgetNotFound(f"there is no budget #{budget_id}; `ax cost budget list` shows the ids")
    budget_marker(store).moved()
    after = get_budget(store, budget_id)
    record_change(store, "budget.update", f"budget:{budget_id}", _audit_view(before), _audit_view(after))
    return after


def delete_budget(store: Store, budget_id: int) -> BudgetInfo:
    """Delete a budget and its counters (its alert history stays).

    Raises:
        BudgetNotFound: no such budget.
    """
    info = get_budget(store, budget_id)

    def work(conn: Connection) -> None:
        conn.execute(_WINDOWS.delete().where(_WINDOWS.c.budget_id == budget_id))
        conn.execute(_HOLDS.delete().where(_HOLDS.c.budget_id == budget_id))
        conn.execute(_BUDGETS.delete().where(_BUDGETS.c.id == budget_id))

    store.run(work)
    budget_marker(store).moved()
    record_change(store, "budget.delete", f"budget:{budget_id}", _audit_view(info), None)
    return info


# -- status ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Where a budget stands now, and where it is heading.

    ``spent_nanos`` is settled spend this period; ``reserved_nanos`` the
    estimates of calls under way. ``over`` is true once spend reaches the
    limit.
    """

    budget: BudgetInfo
    period_start: int
    period_end: int | None
    spent_nanos: int
    reserved_nanos: int
    forecast: BudgetForecast

    @property
    def used(self) -> Decimal:
        """Spent as a fraction of the limit (1 = all of it)."""
        return Decimal(self.spent_nanos) / Decimal(self.budget.limit_nanos)

    @property
    def over(self) -> bool:
        """Whether the budget is used up."""
        return self.spent_nanos >= self.budget.limit_nanos

    @property
    def remaining_nanos(self) -> int:
        """What may still be spent this period (never negative)."""
        return max(0, self.budget.limit_nanos - self.spent_nanos)


def trailing_rate(conn: Connection, scope: Scope, now: float, window_s: float) -> tuple[Decimal, float]:
    """The scope's spend per second over the trailing window, and the window used.

    The window is shortened to the first minute with spend in it, so a
    fresh start is not averaged over hours of nothing.
    """
    dim, provider, value = _rollup_filter(scope)
    lo = now - window_s
    found = totals_by(conn, lo, now, dim=dim, provider=provider, value=value, measures="money", open_end=True)
    total = sum(t.cost_nanos for t in found.values())
    if not total:
        return Decimal(0), window_s
    first = first_spend(conn, lo, now, dim=dim, provider=provider, value=value)
    used = window_s if first is None else min(window_s, max(0.0, now - first))
    return run_rate(total, used), used


def budget_status(store: Store, now: float, *, tz: str = "UTC") -> list[BudgetStatus]:
    """Every budget's standing at ``now``, with its forecast at the current run-rate.

    Spend is the larger of the budget's counter and the scope's recorded
    spend in the period.
    """
    budgets = list_budgets(store)

    def work(conn: Connection) -> list[BudgetStatus]:
        out = []
        for b in budgets:
            start, end = period_bounds(b.period, now, tz)
            row = conn.execute(
                select(_WINDOWS.c.spent_nanos, _WINDOWS.c.reserved_nanos).where(
                    _WINDOWS.c.budget_id == b.id, _WINDOWS.c.period_start == start
                )
            ).first()
            # The counter is what enforcement saw; the rollups what was recorded. Each may miss
            # some spend for a moment (a call settled but not yet written, or made before a
            # process saw the budget), so the larger is the better reading.
            recorded = scope_spend(conn, b.scope, start, now)
            spent, reserved = (max(int(row[0]), recorded), int(row[1])) if row else (recorded, 0)
            rate, _ = trailing_rate(conn, b.scope, now, 3600.0 if b.period == "day" else 86400.0)
            forecast = forecast_budget(
                spent_nanos=spent, limit_nanos=b.limit_nanos, rate_per_s=rate, now=now,
                period_end=float(end) if end is not None else None,
            )
            out.append(BudgetStatus(b, start, end, spent, max(0, reserved), forecast))
        return out

    return store.run(work)
