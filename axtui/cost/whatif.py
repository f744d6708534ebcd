"""``ax cost whatif``: recorded spend beside what another policy would have spent.

The front-ends (the CLI command, the dashboard's Costs screen) come here:
`load_policy` reads the alternative (a strategy, a rules file, a price
file, a cache policy) and `whatif` reads the recorded calls from the
store and replays them (`axtui.routing.whatif`, where the replay itself
lives and is documented).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from axtui.config import ROUTING_STRATEGIES, RoutingConfig, Settings
from axtui.cost.litellm import parse_litellm
from axtui.cost.sheet import PriceSheet, read_price_file
from axtui.errors import ConfigError
from axtui.routing.catalog import Catalog
from axtui.routing.whatif import WhatIfPolicy, WhatIfReport, replay_calls
from axtui.routing.whatif_store import load_failures, load_recorded_calls
from axtui.store import Store

__all__ = ["WhatIf", "load_policy", "load_prices", "load_rules", "whatif"]


@dataclass(slots=True)
class WhatIf:
    """A replay's report and what it covered."""

    report: WhatIfReport
    since: float
    until: float
    calls: int
    truncated: bool
    policy: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {"since": self.since, "until": self.until, "calls": self.calls, "truncated": self.truncated,
                "policy": self.policy, **self.report.as_dict()}


def load_rules(path: Path, current: RoutingConfig) -> RoutingConfig:
    """A routing section from a TOML file: a ``[routing]`` table, or its keys at the top level.

    Keys the file leaves out keep their current values (aliases too).

    Raises:
        ConfigError: the file is unreadable or its routing section invalid; the message names the file.
    """
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable TOML rules file ({exc}); give a file with a [routing] table "
                          "or [[rules]] entries") from None
    section = doc.get("routing", doc)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: 'routing' must be a table of routing settings")
    try:
        return RoutingConfig.model_validate({**current.model_dump(), **section})
    except ValueError as exc:
        raise ConfigError(f"{path}: invalid routing settings: {exc}") from None


def load_prices(path: Path, settings: Settings) -> PriceSheet:
    """The shipped prices with ``path``'s replacing them, then the config's ``[prices]`` overrides.

    ``path`` is a price file in ax's format or LiteLLM's cost map.

    Raises:
        ConfigError: the file is missing, unreadable or holds no prices.
    """
    if not path.is_file():
        raise ConfigError(f"{path}: no such price file; give a JSON price file (ax's format or LiteLLM's cost map)")
    try:
        _, prices = read_price_file(path, "what-if")
    except ConfigError:
        try:
            data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
            prices = parse_litellm(data).prices
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"{path}: neither ax's price file nor LiteLLM's cost map ({exc})") from None
    if not prices:
        raise ConfigError(f"{path}: holds no prices per token; give a file with at least one model's prices")
    sheet = PriceSheet.load(settings.prices, include_user=False)
    return PriceSheet([*sheet.entries(), *prices], settings.prices, sheet.info)


def load_policy(settings: Settings, *, strategy: str | None = None, rules: Path | None = None,
                prices: Path | None = None, cache: Literal["on", "off"] | None = None,
                threshold: float | None = None) -> WhatIfPolicy:
    """The policy to replay under, from the options of ``ax cost whatif``.

    Raises:
        ConfigError: an unknown strategy, a bad rules or price file, a threshold outside (0, 1].
    """
    if strategy is not None and strategy not in ROUTING_STRATEGIES:
        raise ConfigError(f"unknown routing strategy {strategy!r}; use one of: {', '.join(ROUTING_STRATEGIES)}")
    if threshold is not None and not 0 < threshold <= 1:
        raise ConfigError(f"--threshold {threshold:g} is not a similarity; give a number above 0 and at most 1")
    return WhatIfPolicy(
        strategy=strategy,
        routing=load_rules(rules, settings.routing) if rules is not None else None,
        prices=load_prices(prices, settings) if prices is not None else None,
        cache=cache,
        threshold=threshold,
        cache_ttl_s=float(settings.cache.ttl_s),
    )


def whatif(store: Store, settings: Settings, catalog: Catalog, policy: WhatIfPolicy, since: float, until: float,
           *, described: dict[str, Any] | None = None) -> WhatIf:
    """Replay the calls recorded in ``[since, until)`` under ``policy``.

    Args:
        store: where the calls were recorded.
        settings: the settings in force (routing section, prices, typical output).
        catalog: the deployments and aliases served.
        policy: what to change (see `load_policy`).
        since, until: the period, epoch seconds.
        described: the policy as the user gave it, kept in the result.
    """
    calls, truncated = load_recorded_calls(store, since, until)
    failures = load_failures(store, since, until)
    if settings.routing.rules or policy.routing is not None:
        # Rules name deployments and aliases: they must be served here.
        from axtui.routing.router import check_references

        problems = check_references(policy.routing or settings.routing, catalog)
        if problems:
            raise ConfigError("the rules name what this gateway does not serve:\n  " + "\n  ".join(problems))
    report = replay_calls(calls, catalog, settings.routing, PriceSheet.load(settings.prices), policy,
                          failures=failures, typical_output=settings.budgets.typical_output_tokens)
    if truncated:
        report.notes.append(f"only the newest {len(calls):,} calls of the period were replayed")
    return WhatIf(report, since, until, len(calls), truncated, dict(described or {}))
