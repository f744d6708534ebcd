"""What adding a budget would change: a new one, or one that exists for the same scope and period.

A budget is one per scope and period, so "adding" one that exists changes
it. The Budgets screen never does that silently: `find_existing` spots it
before anything is written, and `change_question` is the confirmation that
shows the old and the new amount and mode side by side, saying so in words
when a hard budget would become soft.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.markup import escape

from axtui.cost.budgets import BudgetInfo, Scope, parse_amount
from axtui.tui import fmt

__all__ = ["BudgetChange", "change_question", "describe_budget", "find_existing"]


@dataclass(frozen=True, slots=True)
class BudgetChange:
    """An add that would change the budget ``old``: the values the form asked for, nothing written yet."""

    old: BudgetInfo
    scope: str
    period: str
    amount: str
    limit_nanos: int
    hard: bool

    @property
    def same(self) -> bool:
        """Whether the form asks for exactly what the budget already is."""
        return self.limit_nanos == self.old.limit_nanos and self.hard == self.old.hard

    @property
    def weakens(self) -> bool:
        """Whether a hard budget (refusing calls) would become soft (alerting only)."""
        return self.old.hard and not self.hard


def describe_budget(info: BudgetInfo) -> str:
    """``#3 user:alice $10.00/day hard``, the amount as the Budgets table shows it."""
    per = " in total" if info.period == "total" else f"/{info.period}"
    return f"#{info.id} {info.scope} {fmt.usd_limit(info.limit_nanos)}{per} {'hard' if info.hard else 'soft'}"


def find_existing(budgets: Iterable[BudgetInfo], scope: str, period: str, amount: str,
                  hard: bool) -> BudgetChange | None:
    """The change an add of (``scope``, ``period``) would make to a budget that exists, or None for a new one.

    Raises:
        ValueError: the scope or the amount is malformed (the form shows the message).
    """
    key = str(Scope.parse(scope))
    nanos = parse_amount(amount)
    old = next((b for b in budgets if str(b.scope) == key and b.period == period), None)
    if old is None:
        return None
    return BudgetChange(old=old, scope=key, period=period, amount=amount, limit_nanos=nanos, hard=hard)


def _mode(hard: bool) -> str:
    return "hard (refuses calls once spent)" if hard else "soft (alerts only)"


def change_question(change: BudgetChange) -> str:
    """The confirmation of an add that changes an existing budget: old → new, amount and mode (Textual markup)."""
    old = change.old
    per = "in total" if old.period == "total" else f"per {old.period}"
    lines = [
        f"Budget #{old.id} already covers {escape(str(old.scope))} {per}.",
        "",
        f"  Amount  {fmt.usd_limit(old.limit_nanos)} → [b]{fmt.usd_limit(change.limit_nanos)}[/]",
        f"  Mode    {_mode(old.hard)} → [b]{_mode(change.hard)}[/]",
        "",
    ]
    if change.weakens:
        lines += [f"[b $warning]It becomes soft:[/] calls are no longer refused once "
                  f"{fmt.usd_limit(change.limit_nanos)} is spent.", ""]
    lines.append(f"Change budget #{old.id}?")
    return "\n".join(lines)
