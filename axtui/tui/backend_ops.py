"""What the local and demo backends read and write, through the subsystems' own functions.

Costs come from `axtui.cost.reports` (the rollups), budgets from
`axtui.cost.budgets`, rate limits from the `RateLimiter`, alert rules from
`axtui.metrics.alerts.storage`, routing from the config file and the
router, exports from `axtui.metrics.export`: the dashboard refuses the
same mistakes with the same messages as the CLI.

Every method blocks (the store, an event loop in another thread) and is
called from the screens' worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import typing
from collections.abc import Callable, Coroutine, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from axtui import locations
from axtui.clock import Clock
from axtui.config import RoutingConfig, Settings, load_settings
from axtui.cost.budgets import BudgetInfo
from axtui.errors import InvalidRequest
from axtui.metrics.alerts.model import RuleInfo
from axtui.metrics.alerts.sources import MetricSources
from axtui.metrics.snapshot import RecentCall
from axtui.routing.catalog import Catalog
from axtui.routing.explain import Explanation
from axtui.routing.health import HealthSnapshot
from axtui.store import Store
from axtui.tui.views import (
    AlertsView,
    BudgetsView,
    CostView,
    ExportResult,
    KeysView,
    RoutingView,
    SpendPoint,
    range_spec,
)
from axtui.types import CallRecord

if typing.TYPE_CHECKING:
    from axtui.server.keys import KeyInfo

__all__ = ["LoopThread", "StoreOps"]

T = TypeVar("T")


class LoopThread:
    """An event loop in a daemon thread, for the async subsystems a backend uses (the limiter)."""

    def __init__(self, name: str = "ax-dashboard-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        """Stop the loop and end the thread."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            with contextlib.suppress(RuntimeError):
                self.loop.close()


class StoreOps:
    """Costs, budgets, limits, alert rules, routing and exports over an open store.

    The host class provides ``store``, ``settings`` (effective, with the
    demo fleet filled in when used), ``catalog`` and ``clock``, and may
    override the hooks `after_budget_change`, `after_settings_saved`,
    `with_limiter` and `with_router`.
    """

    settings: Settings
    catalog: Catalog
    clock: Clock
    config_path: Path | None = None
    _loop_thread: LoopThread | None = None
    _limiter: Any = None
    _sources: MetricSources | None = None

    @property
    def store(self) -> Store:
        """The open store (the host class provides it)."""
        raise NotImplementedError

    # -- costs ----------------------------------------------------------------------------

    def costs(self, range_name: str, by: str) -> CostView:
        """Spend over the last ``range_name`` (1h, 24h, 7d, 30d) grouped ``by`` provider, model or user."""
        from axtui.cost.reports import breakdown, summary
        from axtui.cost.rollups import series

        seconds, grain, grain_s = range_spec(range_name)
        now = self.clock.now()
        since = now - seconds
        tz = self.settings.budgets.timezone
        total = summary(self.store, since, now, now=now, tz=tz, top=50)
        groups = breakdown(self.store, by, since, now, tz=tz)
        rows = self.store.run(lambda conn: series(conn, since, now, grain=grain))
        points = [SpendPoint(float(ts), t.cost_nanos, t.calls) for ts, t in rows]
        unknown = [(f"{m.provider}/{m.model}", m.unknown_price_calls) for m in total.top_models if m.unknown_price_calls]
        return CostView(range_name, by, since, now, total, groups, points, grain_s, unknown)

    def whatif(self, range_name: str, strategy: str | None, prices: str | None) -> dict[str, Any]:
        """The calls of the last ``range_name`` replayed under ``strategy`` and the price file ``prices``.

        Returns `axtui.cost.whatif.WhatIf.as_dict`'s shape (the what-if panel draws it).

        Raises:
            ConfigError: an unknown strategy or a bad price file.
        """
        from axtui.cost.whatif import load_policy, whatif

        seconds, _, _ = range_spec(range_name)
        now = self.clock.now()
        policy = load_policy(self.settings, strategy=strategy, prices=Path(prices).expanduser() if prices else None)
        described = {k: v for k, v in (("strategy", strategy), ("prices", prices)) if v}
        return whatif(self.store, self.settings, self.catalog, policy, now - seconds, now,
                      described=described).as_dict()

    # -- budgets --------------------------------------------------------------------------

    def budgets(self) -> BudgetsView:
        """Every budget with its spend and forecast, and every rate limit with what is used."""
        from axtui.cost.budgets import budget_status
        from axtui.tui.screens.budget_rows import unlimited_rows

        statuses = budget_status(self.store, self.clock.now(), tz=self.settings.budgets.timezone)

        async def read(limiter: Any) -> list[Any]:
            rows = await limiter.status()
            return [*rows, *unlimited_rows(limiter.stored_limits(), rows)]

        try:
            limits = self.with_limiter(read)
            error = None
        except Exception as exc:  # limits shown as unavailable; budgets still work
            limits, error = [], getattr(exc, "message", None) or str(exc)
        return BudgetsView(budgets=statuses, limits=limits, limits_error=error)

    def add_budget(self, scope: str, period: str, amount: str, hard: bool) -> BudgetInfo:
        """Create a budget (or change the one with the same scope and period).

        Raises:
            InvalidRequest: a malformed scope, period or amount; nothing is written.
        """
        from axtui.cost.budgets import Scope, parse_amount, set_budget

        try:
            parsed_scope = Scope.parse(scope)
            nanos = parse_amount(amount)
            info, _created = set_budget(self.store, parsed_scope, period, nanos, hard=hard, now=self.clock.now(),
                                        tz=self.settings.budgets.timezone)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        self.after_budget_change()
        return info

    def set_budget_amount(self, budget_id: int, amount: str) -> BudgetInfo:
        """Change a budget's limit to ``amount`` (``25``, ``$12.50``).

        Raises:
            InvalidRequest: not a positive amount; the budget keeps its old limit.
        """
        from axtui.cost.budgets import BudgetNotFound, parse_amount, update_budget

        try:
            nanos = parse_amount(amount)
            info = update_budget(self.store, budget_id, limit_nanos=nanos, now=self.clock.now())
        except (ValueError, BudgetNotFound) as exc:
            raise InvalidRequest(_amount_message(amount, exc)) from None
        self.after_budget_change()
        return info

    def toggle_hard(self, budget_id: int) -> BudgetInfo:
        """Make a soft budget hard (refusing calls) or a hard one soft (alerting only)."""
        from axtui.cost.budgets import BudgetNotFound, get_budget, update_budget

        try:
            current = get_budget(self.store, budget_id)
            info = update_budget(self.store, budget_id, hard=not current.hard, now=self.clock.now())
        except BudgetNotFound as exc:
            raise InvalidRequest(str(exc)) from None
        self.after_budget_change()
        return info

    def delete_budget(self, budget_id: int) -> BudgetInfo:
        """Delete a budget (its alert history stays)."""
        from axtui.cost.budgets import BudgetNotFound, delete_budget

        try:
            info = delete_budget(self.store, budget_id)
        except BudgetNotFound as exc:
            raise InvalidRequest(str(exc)) from None
        self.after_budget_change()
        return info

    def after_budget_change(self) -> None:
        """Hook: make a budget change hold in a running engine at once."""

    # -- rate limits ----------------------------------------------------------------------

    def with_limiter(self, fn: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        """Run ``fn(limiter)`` on an event loop and return its result (a limiter of our own here)."""
        if self._loop_thread is None:
            self._loop_thread = LoopThread()
        if self._limiter is None:
            from axtui.ratelimit.factory import build_limiter

            settings = self.settings

            async def make() -> Any:
                return build_limiter(settings, store=self.store, clock=self.clock)

            self._limiter = self._loop_thread.run(make())
        return self._loop_thread.run(fn(self._limiter))

    def set_limit(self, subject: str, requests: str | None, tokens: str | None) -> Any:
        """Store a per-subject limit; it applies at once here and within a second in other processes.

        Raises:
            InvalidRequest: a malformed subject or limit; nothing is written.
        """
        req = requests.strip() if requests and requests.strip() else None
        tok = tokens.strip() if tokens and tokens.strip() else None
        if req is None and tok is None:
            raise InvalidRequest("give a request limit (60/minute) or a token limit (100000/minute), or both")
        return self.with_limiter(lambda limiter: limiter.set_limit(subject.strip(), req, tok))

    def delete_limit(self, subject: str) -> bool:
        """Remove a subject's stored limit (the defaults apply again)."""
        return bool(self.with_limiter(lambda limiter: limiter.delete_limit(subject)))

    def reset_limit(self, subject: str) -> Any:
        """Forget what a subject used: its quota is full again."""
        return self.with_limiter(lambda limiter: limiter.reset(subject))

    # -- keys and teams -------------------------------------------------------------------

    def keys(self) -> KeysView:
        """Every key and team with this month's spend and budget use, as `ax keys list` and `ax teams list`."""
        from axtui.governance.standing import standings
        from axtui.governance.teams import list_teams
        from axtui.server.keys import list_keys

        now = self.clock.now()
        tz = self.settings.budgets.timezone
        return KeysView(keys=list_keys(self.store), teams=list_teams(self.store),
                        key_standing=standings(self.store, "key", now, tz),
                        team_standing=standings(self.store, "team", now, tz), now=now)

    def revoke_key(self, key_id: str) -> KeyInfo:
        """Revoke a key through `axtui.server.key_admin` (audited as the local user, via the dashboard)."""
        from axtui.server.key_admin import revoke
        from axtui.store.audit import cli_actor

        return revoke(self.store, key_id, actor=cli_actor(), via="dashboard", clock=self.clock)

    def rotate_key(self, key_id: str, grace: str | None) -> tuple[str, KeyInfo]:
        """Rotate a key through `axtui.server.key_admin`; returns the new secret (shown once) and the key."""
        from axtui.server.key_admin import rotate
        from axtui.store.audit import cli_actor

        return rotate(self.store, key_id, grace, actor=cli_actor(), via="dashboard", clock=self.clock)

    # -- alerts ---------------------------------------------------------------------------

    def alerts(self) -> AlertsView:
        """Every rule with its state, the latest events, and budget threshold alerts."""
        from axtui.cost.alerts import alert_events
        from axtui.metrics.alerts.storage import list_events, list_rules

        rules = list_rules(self.store)
        events = list_events(self.store, limit=100)
        events.reverse()
        return AlertsView(rules=rules, events=events, budget_alerts=alert_events(self.store, limit=30),
                          now=self.clock.now(), values=self.rule_values(rules))

    def rule_values(self, rules: list[RuleInfo]) -> dict[int, float | None]:
        """What each enabled rule measures now (the stored value is only written when its state changes).

        A rule whose value cannot be read here (several ``where`` filters
        nobody watches, an unreadable store) is left out: the screen shows
        the stored value for it.
        """
        from axtui.errors import AxError
        from axtui.metrics.alerts.grammar import parse_rule
        from axtui.metrics.alerts.sources import MetricSources

        metrics = getattr(self, "metrics", None)
        if metrics is None:
            return {}
        if self._sources is None:
            self._sources = MetricSources(metrics, self.store, self.settings)
        now = self.clock.now()
        out: dict[int, float | None] = {}
        for info in rules:
            if not info.enabled:
                continue
            try:
                rule = parse_rule(info.rule)
                if len(rule.filters) > 1 and self._sources.is_live(rule):
                    continue  # only a watched filter set has numbers; the evaluator's stored value stands
                value = self._sources.current(rule) if self._sources.is_live(rule) else self._sources.slow(rule, now)
            except (AxError, ValueError, ArithmeticError):
                continue
            out[info.id] = None if value is None else float(value)
        return out

    def add_rule(self, text: str, name: str | None, severity: str) -> RuleInfo:
        """Add an alert rule in the CLI's grammar.

        Raises:
            RuleSyntaxError: it does not parse (the message points at the column).
            InvalidRequest: a bad name or severity, or the same rule exists.
        """
        from axtui.metrics.alerts.storage import add_rule

        return add_rule(self.store, text, now=self.clock.now(), name=name or None, severity=severity)

    def update_rule(self, rule_id: int, text: str, name: str | None, severity: str) -> RuleInfo:
        """Change a rule's condition, name or severity (a changed condition restarts it at ok)."""
        from axtui.metrics.alerts.storage import update_rule

        return update_rule(self.store, rule_id, now=self.clock.now(), text=text, name=name or None, severity=severity)

    def remove_rule(self, rule_id: int) -> RuleInfo:
        """Delete a rule (its events stay)."""
        from axtui.metrics.alerts.storage import remove_rule

        return remove_rule(self.store, rule_id)

    def acknowledge_rule(self, rule_id: int) -> RuleInfo:
        """Mark a rule's current episode as seen."""
        from axtui.metrics.alerts.storage import acknowledge_rule

        return acknowledge_rule(self.store, rule_id, self.clock.now())

    def silence_rule(self, rule_id: int, seconds: float | None) -> RuleInfo:
        """Stop a rule's notifications for ``seconds`` (None lifts the silence)."""
        from axtui.metrics.alerts.storage import silence_rule

        return silence_rule(self.store, rule_id, None if seconds is None else self.clock.now() + seconds)

    # -- routing --------------------------------------------------------------------------

    def file_settings(self) -> Settings:
        """The settings as the config file has them (what saving writes back)."""
        return load_settings(self.config_path) if self.config_path is not None else load_settings()

    def saved_config_path(self) -> Path:
        """The config file routing edits are saved to."""
        return self.config_path if self.config_path is not None else locations.config_path()

    def with_router(self, fn: Callable[[Any], T]) -> T:
        """Call ``fn(router)`` with a router whose health is replayed from the call log."""
        from axtui.cost.sheet import PriceSheet
        from axtui.routing.build import build_router

        router = build_router(self.catalog, self.settings, clock=self.clock, prices=PriceSheet.load(self.settings.prices),
                              store=self.store)
        return fn(router)

    def routing(self) -> RoutingView:
        """Deployments with health and weights, rules in order, A/B tests and their results."""
        from axtui.routing.abreport import ab_report

        health = self.deployment_health_list()
        routing = self.settings.routing
        reports = {}
        for test in routing.ab_tests:
            reports[test.name] = ab_report(self.store, test.name, routing, since=self.clock.now() - 86_400)
        weights = {d.id: d.weight for d in self.catalog.deployments}
        return RoutingView(strategy=routing.strategy, health=health, weights=weights, rules=list(routing.rules),
                           ab_tests=list(routing.ab_tests), reports=reports, config_path=self.saved_config_path(),
                           models=self.catalog.names())

    def deployment_health_list(self) -> list[HealthSnapshot]:
        """Every deployment's health snapshot (replayed from the call log here)."""
        from axtui.routing.history import health_from_store

        return health_from_store(self.store, self.catalog, self.settings.routing, self.clock)

    def explain(self, model: str, user: str, tokens: int | None) -> Explanation:
        """Which deployment a call of ``model`` by ``user`` would get, and why.

        Raises:
            UnknownModel: nothing serves ``model`` (the message lists what does).
        """
        from axtui.routing.explain import explain

        return self.with_router(lambda router: explain(router, model, user=user or "anonymous", tokens=tokens))

    def save_routing(self, routing: RoutingConfig, weights: dict[str, float]) -> Path:
        """Validate and save the routing section and deployment weights to the config file.

        Raises:
            ConfigError: the new settings are invalid or name something nobody serves;
                nothing is written.
        """
        from axtui.routing.build import save_routing

        path = self.saved_config_path()
        new = save_routing(path, routing, weights, self.catalog)
        self.settings = self.settings.model_copy(update={"routing": routing})
        for dep_id, weight in weights.items():
            dep = self.catalog.get(dep_id)
            if dep is not None:
                dep.weight = weight
        self.after_settings_saved(new)
        return path

    def after_settings_saved(self, settings: Settings) -> None:
        """Hook: hand saved settings to a running engine."""

    # -- calls ----------------------------------------------------------------------------

    def call_record(self, request_id: str, ts: float) -> CallRecord | None:
        """The stored record of the call ``request_id`` that started at ``ts`` (None until it is written)."""
        import dataclasses

        from sqlalchemy import select
        from sqlmodel import SQLModel

        import axtui.store  # noqa: F401 - registers the calls table in the metadata

        if not request_id:
            return None
        table = SQLModel.metadata.tables["calls"]
        query = select(table).where(table.c.ts.between(ts - 1, ts + 1), table.c.request_id == request_id).limit(1)
        row = self.store.run(lambda conn: conn.execute(query).first())
        if row is None:
            return None
        m = row._mapping
        names = {f.name for f in dataclasses.fields(CallRecord)}
        values = {k: m[k] for k in names if k in m and k != "tags"}
        return CallRecord(**values, tags=tuple(t for t in (m["tags"] or "").split(",") if t))

    # -- export ---------------------------------------------------------------------------

    def export(self, what: str, fmt: str, path: Path, since: float | None, until: float | None) -> ExportResult:
        """Write ``what`` (calls, costs, alerts, budgets) as ``fmt`` to ``path``, with the headless exporter.

        Raises:
            InvalidRequest: an unknown kind or format, or a path that cannot be written.
        """
        from axtui.metrics.export import ExportQuery, What, export_to_path

        path = Path(path).expanduser()
        try:
            locations.private_dir(path.parent)
        except OSError as exc:
            raise InvalidRequest(f"cannot create the folder {path.parent}: {exc.strerror}; choose another path") \
                from None
        kinds = typing.get_args(What)
        if what not in kinds:
            raise InvalidRequest(f"cannot export {what!r}; choose one of {', '.join(kinds)}")
        query = ExportQuery(what=typing.cast(What, what), since=since, until=until, now=self.clock.now(),
                            tz=self.settings.budgets.timezone)
        try:
            rows = export_to_path(self.store, path, fmt, query)
        except OSError as exc:
            raise InvalidRequest(f"cannot write {path}: {exc.strerror}; choose another path") from None
        return ExportResult(path=path, rows=rows, what=what, fmt=fmt)

    def call_rows(self, calls: Sequence[RecentCall]) -> list[list[Any]]:
        """``calls`` as ``ax monitor export`` rows: the stored calls, read as that command reads them.

        A call not written yet (the recorder writes in batches) keeps what the live log carried.
        """
        from axtui.metrics.export_rows import CALL_COLUMNS, call_rows
        from axtui.tui.export_view import live_call_row

        rid = CALL_COLUMNS.index("request_id")
        wanted = {c.request_id for c in calls if c.request_id}
        stored: dict[str, list[Any]] = {}
        if wanted:
            since = min(c.ts for c in calls)
            until = max(c.ts for c in calls) + 1  # exclusive, as in the export's query
            with self.store.connect() as conn:
                for row in call_rows(conn, since, until, None, None):
                    if row[rid] in wanted:
                        stored[row[rid]] = row
        return [stored.get(c.request_id) or live_call_row(c) for c in calls]

    def close_ops(self) -> None:
        """Release the limiter and its loop."""
        if self._loop_thread is not None:
            if self._limiter is not None:
                with contextlib.suppress(Exception):
                    self._loop_thread.run(self._limiter.aclose(), timeout=5)
            self._loop_thread.stop()
            self._loop_thread = None
            self._limiter = None


def _amount_message(amount: str, exc: Exception) -> str:
    text = str(exc)
    if not amount.strip():
        return "the amount is empty; type a positive number of dollars, like 25 or 12.50"
    try:
        if Decimal(amount.strip().lstrip("$").replace(",", "")) <= 0:
            return f"{amount!r} is not more than zero; a budget needs a positive amount, like 25 or 12.50"
    except ArithmeticError:
        pass
    return text
