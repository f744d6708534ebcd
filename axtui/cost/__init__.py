"""Cost tracking: prices, exact call costs, budgets that hold, alerts, reports.

- `PriceSheet` (`axtui.cost.sheet`): the shipped price sheet, imported
  prices and config overrides; the engine's `PriceBook`.
- `itemize` / `cost_nanos` (`axtui.cost.calculator`): what a call costs.
- `BudgetBook` (`axtui.cost.enforcement`): the engine's `Budgets`.
- budget management and status (`axtui.cost.budgets`), alerts
  (`axtui.cost.alerts`), reports (`axtui.cost.reports`), rollups
  (`axtui.cost.rollups`), projections (`axtui.cost.projection`).
"""

from axtui.cost.calculator import cost_nanos, cost_usd, itemize
from axtui.cost.sheet import ModelPrice, PriceSheet, Rates, Tier

__all__ = ["ModelPrice", "PriceSheet", "Rates", "Tier", "cost_nanos", "cost_usd", "itemize"]
